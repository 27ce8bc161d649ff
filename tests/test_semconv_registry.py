"""Every cicd.*, vcs.* and error.* attribute the builder emits is defined by the OTel registry.

The registry is the YAML copied unchanged from open-telemetry/semantic-conventions into
``tests/data/semconv`` (provenance and licence in ``tests/data/README.md``). The test fails loudly
when a file is missing: silently skipping would let undefined names through.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from core_fixtures import SCENARIOS

from processor.core import semconv as sc
from processor.core.spans import AttributeValue, SpanKind, SpanRecord

CHECKED_NAMESPACES = ("cicd.", "vcs.", "error.", "test.")
RUN_SPAN = "span.cicd.pipeline.run.server"
TASK_SPAN = "span.cicd.pipeline.task.internal"
REGISTRY_FILES = {
    "cicd-registry.yaml",
    "cicd-spans.yaml",
    "error-registry.yaml",
    "vcs-registry.yaml",
    "test-registry.yaml",
}
CUSTOM_ERROR_TYPES = {
    sc.ERROR_TEST_FAILED,
    sc.ERROR_CLONE_FAILED,
    sc.ERROR_OOM_KILLED,
    sc.ERROR_TIMEOUT,
    sc.ERROR_PROW,
}
"""error.type values prowtrace documents (the registry asks instrumentations to list their own)."""


REGISTRY_DIR = Path(__file__).parent / "data" / "semconv"
"""The vendored registry (tests/data/README.md says where it came from and how to refresh it)."""


@dataclass(frozen=True, slots=True)
class RegistryAttribute:
    """One attribute definition: its type name, and the values an enum defines."""

    key: str
    type: str
    members: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SpanDefinition:
    """A span definition: its kind and the attributes by requirement level."""

    kind: str
    required: frozenset[str]
    conditional: frozenset[str]


@dataclass(frozen=True, slots=True)
class Registry:
    """The loaded conventions."""

    attributes: Mapping[str, RegistryAttribute]
    spans: Mapping[str, SpanDefinition]


def _groups(directory: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(directory.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        yield from document.get("groups", [])


def _attribute(entry: dict[str, Any]) -> RegistryAttribute:
    kind = entry["type"]
    if isinstance(kind, dict):
        members = frozenset(str(member["value"]) for member in kind["members"])
        return RegistryAttribute(entry["id"], "enum", members)
    return RegistryAttribute(entry["id"], str(kind))


def _span(group: dict[str, Any]) -> SpanDefinition:
    required: set[str] = set()
    conditional: set[str] = set()
    for entry in group.get("attributes", []):
        level = entry.get("requirement_level")
        if level == "required":
            required.add(entry["ref"])
        elif isinstance(level, dict) and "conditionally_required" in level:
            conditional.add(entry["ref"])
    return SpanDefinition(group["span_kind"], frozenset(required), frozenset(conditional))


def load_registry(directory: Path) -> Registry:
    """Read attribute and span definitions from every YAML file in ``directory``."""
    attributes: dict[str, RegistryAttribute] = {}
    spans: dict[str, SpanDefinition] = {}
    for group in _groups(directory):
        if group.get("type") == "span":
            spans[group["id"]] = _span(group)
            continue
        for entry in group.get("attributes", []):
            if "id" in entry:
                attributes[entry["id"]] = _attribute(entry)
    return Registry(attributes, spans)


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


def value_problem(definition: RegistryAttribute, value: AttributeValue) -> str:
    """Say what is wrong with ``value`` for ``definition`` ("" if nothing)."""
    if definition.type == "enum":
        if not isinstance(value, str):
            return f"enum value {value!r} is not a string"
        if value in definition.members:
            return ""
        if definition.key == sc.ERROR_TYPE and value in CUSTOM_ERROR_TYPES:
            return ""
        return f"{value!r} is not one of {sorted(definition.members)}"
    expected: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "int": int,
        "double": (int, float),
        "boolean": bool,
    }
    if definition.type == "string[]":
        ok = isinstance(value, tuple) and all(isinstance(item, str) for item in value)
    elif definition.type in expected:
        ok = isinstance(value, expected[definition.type]) and (
            definition.type == "boolean" or not isinstance(value, bool)
        )
    else:
        return f"unhandled registry type {definition.type!r}"
    return "" if ok else f"{value!r} is not of registry type {definition.type}"


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
