"""Every cicd.*, vcs.* and error.* attribute the builder emits is defined by the OTel registry.

The registry is the YAML copied unchanged from open-telemetry/semantic-conventions into
``tests/data/semconv`` (provenance and licence in ``tests/data/README.md``). The test fails loudly
when a file is missing: silently skipping would let undefined names through.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from core_fixtures import SCENARIOS
from semconv_registry import (
    CHECKED_NAMESPACES,
    REGISTRY_DIR,
    REGISTRY_FILES,
    RUN_SPAN,
    TASK_SPAN,
    Registry,
    load_registry,
    value_problem,
)

from processor.core import semconv as sc
from processor.core.spans import AttributeValue, SpanKind, SpanRecord


@pytest.fixture(scope="module")
def registry() -> Registry:
    """Load the vendored conventions; fail the test if a file is missing."""
    directory = REGISTRY_DIR
    missing = REGISTRY_FILES - {path.name for path in directory.glob("*.yaml")}
    if missing:
        pytest.fail(f"{directory} lacks {sorted(missing)}", pytrace=False)
    return load_registry(directory)


def checked_attributes(span: SpanRecord) -> Iterator[tuple[str, AttributeValue]]:
    """Yield the span's (and its events') attributes in the registry's namespaces."""
    sources = [span.attributes, *(event.attributes for event in span.events)]
    for attributes in sources:
        for key, value in attributes.items():
            if key.startswith(CHECKED_NAMESPACES):
                yield key, value


def scenario_spans() -> Iterator[tuple[str, SpanRecord]]:
    """Yield (scenario, span) for every span of every builder scenario."""
    for name, build in SCENARIOS.items():
        for span in build():
            yield name, span


def _problems(registry: Registry, spans: Sequence[SpanRecord]) -> list[str]:
    problems = []
    for span in spans:
        for key, value in checked_attributes(span):
            definition = registry.attributes.get(key)
            if definition is None:
                problems.append(f"{span.path or '<root>'}: {key} is not in the registry")
                continue
            problem = value_problem(definition, value)
            if problem:
                problems.append(f"{span.path or '<root>'}: {key}: {problem}")
    return problems


# --- the checker itself ----------------------------------------------------------------------


def test_registry_is_found_beside_the_repository(registry: Registry) -> None:
    """The registry loads with the CI/CD, VCS and error attributes and the CI/CD spans."""
    assert {"cicd.pipeline.result", "vcs.repository.name", "error.type"} <= set(registry.attributes)
    assert {RUN_SPAN, TASK_SPAN} <= set(registry.spans)


def test_checker_rejects_an_undefined_key(registry: Registry) -> None:
    """A made-up cicd.* key is reported (the check can fail)."""
    span = SpanRecord("", None, "RUN x", 0, 1, attributes={"cicd.pipeline.colour": "blue"})
    assert _problems(registry, [span]) == ["<root>: cicd.pipeline.colour is not in the registry"]


def test_checker_rejects_an_undefined_enum_value(registry: Registry) -> None:
    """A value outside an enum's members is reported (the check can fail)."""
    span = SpanRecord("", None, "RUN x", 0, 1, attributes={sc.CICD_PIPELINE_RESULT: "aborted"})
    assert len(_problems(registry, [span])) == 1


# --- what the builder emits ------------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_emitted_keys_and_values_are_defined(registry: Registry, scenario: str) -> None:
    """Every cicd./vcs./error. key emitted is defined, with a value of its registry type/enum."""
    assert _problems(registry, SCENARIOS[scenario]()) == []


def test_semconv_module_names_only_defined_attributes(registry: Registry) -> None:
    """Every cicd./vcs./error. name declared in processor.core.semconv is in the registry."""
    declared = {
        value
        for name, value in vars(sc).items()
        if name.isupper() and isinstance(value, str) and value.startswith(CHECKED_NAMESPACES)
    }
    assert declared - set(registry.attributes) == set()


def test_semconv_enum_constants_are_defined_values(registry: Registry) -> None:
    """The enum values the module declares are members of their attributes' enums."""
    members = registry.attributes
    assert sc.ACTION_RUN in members[sc.CICD_PIPELINE_ACTION_NAME].members
    assert {sc.RUN_STATE_PENDING, sc.RUN_STATE_EXECUTING} <= members[
        sc.CICD_PIPELINE_RUN_STATE
    ].members
    assert sc.REF_TYPE_BRANCH in members[sc.VCS_REF_BASE_TYPE].members
    assert sc.TASK_TYPE_TEST in members[sc.CICD_PIPELINE_TASK_TYPE].members
    results = {
        sc.RESULT_SUCCESS,
        sc.RESULT_FAILURE,
        sc.RESULT_ERROR,
        sc.RESULT_TIMEOUT,
        sc.RESULT_CANCELLATION,
    }
    assert results <= members[sc.CICD_PIPELINE_RESULT].members
    assert results <= members[sc.CICD_PIPELINE_TASK_RUN_RESULT].members
    assert set(sc.VCS_PROVIDERS.values()) <= members[sc.VCS_PROVIDER_NAME].members
    assert sc.ERROR_OTHER in members[sc.ERROR_TYPE].members


def test_every_custom_error_type_is_declared_and_documented() -> None:
    """Each ERROR_* value of the module is in CUSTOM_ERROR_TYPES and the README lists it."""
    declared = {
        value
        for name, value in vars(sc).items()
        if name.startswith("ERROR_") and name != "ERROR_TYPE"
    }
    assert declared - {sc.ERROR_OTHER} == sc.CUSTOM_ERROR_TYPES
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert {value for value in declared if f"`{value}`" not in readme} == set()


@pytest.mark.parametrize("scenario", sorted(set(SCENARIOS) - {"pending"}))
def test_root_satisfies_the_pipeline_run_span(registry: Registry, scenario: str) -> None:
    """The root is a SERVER span with every required attribute, and error.type on failure/error."""
    definition = registry.spans[RUN_SPAN]
    root = SCENARIOS[scenario]()[0]
    assert root.kind is SpanKind(definition.kind)
    assert definition.required - set(root.attributes) == set()
    if root.attributes[sc.CICD_PIPELINE_RESULT] in {sc.RESULT_FAILURE, sc.RESULT_ERROR}:
        assert definition.conditional - set(root.attributes) == set()


@pytest.mark.parametrize("scenario", sorted(set(SCENARIOS) - {"pending"}))
def test_root_name_is_action_and_pipeline(scenario: str) -> None:
    """The root is named ``{action} {pipeline}`` from its own attributes."""
    root = SCENARIOS[scenario]()[0]
    action = root.attributes[sc.CICD_PIPELINE_ACTION_NAME]
    assert root.name == f"{action} {root.attributes[sc.CICD_PIPELINE_NAME]}"


def test_every_task_span_satisfies_the_task_span(registry: Registry) -> None:
    """Task spans are INTERNAL with every required task attribute, error.type on failure/error."""
    definition = registry.spans[TASK_SPAN]
    tasks = [
        (name, span)
        for name, span in scenario_spans()
        if any(key.startswith("cicd.pipeline.task.") for key in span.attributes)
    ]
    assert tasks, "no scenario emitted a task span"
    for name, span in tasks:
        assert span.kind is SpanKind(definition.kind), (name, span.path)
        assert definition.required - set(span.attributes) == set(), (name, span.path)
        result = span.attributes[sc.CICD_PIPELINE_TASK_RUN_RESULT]
        if result in {sc.RESULT_FAILURE, sc.RESULT_ERROR}:
            assert definition.conditional - set(span.attributes) == set(), (name, span.path)


def test_no_error_type_on_success(registry: Registry) -> None:
    """``error.type`` is not set on spans that completed successfully (registry guidance)."""
    assert registry.attributes[sc.ERROR_TYPE].type == "enum"
    offenders = [
        (name, span.path)
        for name, span in scenario_spans()
        if sc.ERROR_TYPE in span.attributes
        and sc.RESULT_SUCCESS
        in {
            span.attributes.get(sc.CICD_PIPELINE_RESULT),
            span.attributes.get(sc.CICD_PIPELINE_TASK_RUN_RESULT),
        }
    ]
    assert offenders == []
