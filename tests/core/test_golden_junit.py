"""Golden test spans: every JUnit fixture, through the oracle, rendered and compared to a file.

One synthetic failing presubmit carries each fixture as ``artifacts/junit_fixture.xml`` in place
of its own JUnit file; the oracle (the in-process pipeline) traces it, and the root's JUnit
counts and everything below the test container are rendered one span a line. Fixtures: every
real file in tests/data/real-junit, a Kubernetes-e2e-sized Ginkgo file (5,000 specs, generated),
and hostile ones, generated here (billion laughs, external entity, 50 MiB, truncated, non-UTF-8,
deep nesting). Regenerate after an intended change with ``PROWTRACE_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry.trace import StatusCode
from support.oracle import expected_spans

from processor.core import semconv as sc
from processor.export.otlp_json import DecodedSpan
from processor.synthetic import Scenario, generate, mirror_path, stream, write_mirror
from processor.synthetic.junit import kubernetes_e2e_junit

GOLDEN = Path(__file__).parents[1] / "golden" / "junit"
REAL = Path(__file__).parents[1] / "data" / "real-junit" / "files"
UPDATE = os.environ.get("PROWTRACE_UPDATE_GOLDEN") == "1"
FIXTURE = "artifacts/junit_fixture.xml"


def _billion_laughs(_: Path) -> bytes:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    return f'<?xml version="1.0"?><!DOCTYPE t [{entities}]><testsuite name="&lol9;"/>'.encode()


def _external_entity(_: Path) -> bytes:
    return (
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<testsuite name="&x;"><testcase name="t"/></testsuite>'
    )


def _truncated(_: Path) -> bytes:
    data = (REAL / "go-junit-report-v2_subtests.xml").read_bytes()
    return data[: len(data) // 2]


def _non_utf8(_: Path) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><testsuite name="caf\xe9" time="2">'
        b'<testcase name="TestLatin\xff" time="1"><failure message="got \xe9">x</failure>'
        b'</testcase><testcase name="TestOK" time="1"/></testsuite>'
    )


def _deep(_: Path) -> bytes:
    depth = 10_000
    return b"<testsuites>" + b"<testsuite>" * depth + b"</testsuite>" * depth + b"</testsuites>"


def _e2e(_: Path) -> bytes:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    return kubernetes_e2e_junit("golden", cases=5000, start=start, seconds=300, failures=2)


HOSTILE: dict[str, Callable[[Path], bytes]] = {
    "hostile-billion-laughs": _billion_laughs,
    "hostile-external-entity": _external_entity,
    "hostile-truncated": _truncated,
    "hostile-non-utf8": _non_utf8,
    "hostile-deep-nesting": _deep,
    "kubernetes-e2e-5000": _e2e,
}
FIXTURES = [path.stem for path in sorted(REAL.glob("*.xml"))] + [*HOSTILE, "hostile-50mib"]


def _write_fixture(name: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if name == "hostile-50mib":  # written in pieces: never 50 MiB in memory, never committed
        with target.open("wb") as out:
            out.write(b"<testsuite>")
            for _ in range(50):
                out.write(b"<testcase/>" * (1024 * 1024 // 11))
            out.write(b"</testsuite>")
    elif name in HOSTILE:
        target.write_bytes(HOSTILE[name](target))
    else:
        target.write_bytes((REAL / f"{name}.xml").read_bytes())


def traced(name: str, tmp_path: Path) -> list[DecodedSpan]:
    """Trace the failing presubmit with fixture ``name`` as its only JUnit file."""
    job = next(generate(1, seed=11, scenarios=[Scenario.PRESUBMIT_FAILURE]))
    write_mirror([job], tmp_path)
    folder = mirror_path(tmp_path, job.gcs_path)
    for path in folder.glob("artifacts/*"):
        path.unlink()
    _write_fixture(name, folder / FIXTURE)
    return list(expected_spans(stream([job]), tmp_path).values())


def render(spans: list[DecodedSpan]) -> str:
    """Render the root's JUnit counts and the test spans, one a line, times from the container."""
    root = next(span for span in spans if not span.parent_span_id)
    container = next(span for span in spans if span.name == "container/test")
    lines = [
        f"root | {key} = {root.attributes[key]!r}"
        for key in sorted(root.attributes)
        if key.startswith("prow.junit.")
    ]
    children: dict[str | None, list[DecodedSpan]] = {}
    for span in spans:
        children.setdefault(span.parent_span_id, []).append(span)

    def walk(span: DecodedSpan, depth: int) -> None:
        for child in sorted(children.get(span.span_id, []), key=lambda s: (s.start_ns, s.name)):
            start = (child.start_ns - container.start_ns) / 1e6
            duration = (child.end_ns - child.start_ns) / 1e6
            status = (
                f" ERROR {child.status_message!r}" if child.status_code is StatusCode.ERROR else ""
            )
            shown = " ".join(
                f"{key}={child.attributes[key]!r}"
                for key in sorted(child.attributes)
                if key not in {sc.TEST_CASE_NAME, sc.TEST_SUITE_NAME}
            )
            lines.append(
                f"{'  ' * depth}{child.name} +{start:.3f}ms {duration:.3f}ms{status} "
                f"id={child.span_id} {shown}"
            )
            walk(child, depth + 1)

    walk(container, 0)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_matches_golden_file(name: str, tmp_path: Path) -> None:
    """The fixture's test spans render exactly as their reviewed golden file."""
    text = render(traced(name, tmp_path))
    golden = GOLDEN / f"{name}.txt"
    if UPDATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden.name}: run with PROWTRACE_UPDATE_GOLDEN=1"
    assert text == golden.read_text()


@pytest.mark.parametrize("name", [n for n in FIXTURES if n.startswith("hostile-")])
def test_hostile_fixture_never_fails_the_trace(name: str, tmp_path: Path) -> None:
    """Each hostile file leaves the rest of the trace intact and is counted on the root."""
    spans = traced(name, tmp_path)
    root = next(span for span in spans if not span.parent_span_id)
    counts = (root.attributes[sc.PROW_JUNIT_UNREADABLE], root.attributes[sc.PROW_JUNIT_TOO_LARGE])
    assert any(span.name == "container/test" for span in spans)
    assert counts == (
        (0, 0) if name == "hostile-non-utf8" else (0, 1) if "50mib" in name else (1, 0)
    )
