"""The vendored OpenTelemetry semantic-convention registry, loaded for the tests that check names.

Shared by tests/core/test_semconv_registry.py (spans) and the metrics tests. The registry is the
YAML copied unchanged from open-telemetry/semantic-conventions into ``tests/data/semconv``
(provenance and licence in ``tests/data/README.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from processor.core import semconv as sc
from processor.core.spans import AttributeValue

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
CUSTOM_ERROR_TYPES = sc.CUSTOM_ERROR_TYPES
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
