"""Test spans from JUnit results: placement, lanes, volume cap, IDs, scrubbing, real files."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from core_fixtures import PUBLISH, TOKEN, full_artifacts, instant, podinfo_doc, traceable

from processor.core import facts
from processor.core import semconv as sc
from processor.core.build import job_spans, to_ns
from processor.core.ids import identity_from_uid
from processor.core.junit import (
    CaseOutcome,
    JunitFile,
    JunitResults,
    TestCase,
    TestSuite,
    parse_junit,
)
from processor.core.spans import SpanRecord, identify
from processor.synthetic.junit import kubernetes_e2e_junit

REAL = Path(__file__).parents[1] / "data" / "real-junit" / "files"
TEST_START = instant("2020-05-07T00:52:41Z")
TEST_END = instant("2020-05-07T01:05:30Z")
CONTAINER = "pod/container/test"


def spans_for(
    *files: JunitFile,
    max_spans: int = 1000,
    unreadable: tuple[str, ...] = (),
    too_large: tuple[str, ...] = (),
) -> list[SpanRecord]:
    """Build the failed run's spans with these JUnit files."""
    junit = JunitResults(
        files=files, unreadable=unreadable, too_large=too_large, max_spans=max_spans
    )
    return job_spans(traceable("failure"), replace(full_artifacts(), junit=junit), PUBLISH)


def suite(name: str, *cases: TestCase, seconds: float | None = None, skipped: int = 0) -> TestSuite:
    """Return a suite of ``cases``."""
    return TestSuite(name=name, seconds=seconds, timestamp=None, cases=cases, skipped=skipped)


def case(name: str, seconds: float, *, failed: bool = False, message: str = "") -> TestCase:
    """Return a case that passed, or failed with ``message``."""
    outcome = CaseOutcome.FAILED if failed else CaseOutcome.PASSED
    return TestCase(name=name, classname="pkg", seconds=seconds, outcome=outcome, message=message)


def junit_spans(records: list[SpanRecord]) -> list[SpanRecord]:
    """Return the test spans only."""
    return [record for record in records if "/junit/" in record.path]


def by_name(records: list[SpanRecord], name: str) -> SpanRecord:
    """Return the one test span called ``name``."""
    (found,) = [record for record in junit_spans(records) if record.name == name]
    return found


def inside_parents(records: list[SpanRecord]) -> bool:
    """Every span lies within its parent."""
    placed = {record.path: record for record in records}
    return all(
        placed[r.parent].start_ns <= r.start_ns <= r.end_ns <= placed[r.parent].end_ns
        for r in records
        if r.parent is not None
    )


def test_no_junit_changes_nothing() -> None:
    """With test spans off, or no files found, the trace is exactly what it was."""
    before = job_spans(traceable("failure"), full_artifacts(), PUBLISH)
    assert spans_for() == before


def test_suites_hang_under_the_test_container() -> None:
    """A file's suites are children of container/test, their cases children of the suite."""
    records = spans_for(JunitFile("artifacts/junit.xml", (suite("pkg/a", case("TestA", 2)),)))
    assert by_name(records, "pkg/a").parent == CONTAINER
    assert by_name(records, "TestA").parent == by_name(records, "pkg/a").path


def test_cases_run_one_after_another_from_the_suite_start() -> None:
    """Cases whose times fit the suite's follow each other in file order, marked estimated."""
    records = spans_for(
        JunitFile("artifacts/junit.xml", (suite("s", case("a", 2), case("b", 3), seconds=5),))
    )
    first, second = by_name(records, "a"), by_name(records, "b")
    assert (first.start_ns, second.start_ns) == (to_ns(TEST_START), first.end_ns)
    assert second.attributes[sc.PROW_TIMING_ESTIMATED] is True


def test_cases_longer_than_their_suite_go_into_lanes() -> None:
    """Four 5 s cases in a 10 s suite ran two at a time: two lanes, none leaving the suite."""
    cases = [case(f"c{i}", 5) for i in range(4)]
    records = spans_for(JunitFile("artifacts/junit.xml", (suite("s", *cases, seconds=10),)))
    placed = [by_name(records, f"c{i}") for i in range(4)]
    suite_span = by_name(records, "s")
    assert {span.attributes.get(sc.PROW_TEST_LANE, 0) for span in placed} == {0, 1}
    assert all(suite_span.start_ns <= s.start_ns and s.end_ns <= suite_span.end_ns for s in placed)


def test_suite_timestamp_inside_the_container_places_it() -> None:
    """A timestamp within the container's run is used as is, not marked estimated."""
    later = TEST_START + timedelta(seconds=60)
    stamped = replace(suite("s", case("a", 1), seconds=1), timestamp=later)
    records = spans_for(JunitFile("artifacts/junit.xml", (stamped,)))
    span = by_name(records, "s")
    assert span.start_ns == to_ns(TEST_START + timedelta(seconds=60))
    assert sc.PROW_TIMING_ESTIMATED not in span.attributes


def test_suite_timestamp_outside_the_container_is_not_trusted() -> None:
    """A timestamp hours off (a local-time zone-less stamp) falls back to an estimated place."""
    early = TEST_START - timedelta(hours=5)
    stamped = replace(suite("s", case("a", 1), seconds=1), timestamp=early)
    span = by_name(spans_for(JunitFile("artifacts/junit.xml", (stamped,))), "s")
    assert span.start_ns == to_ns(TEST_START)
    assert span.attributes[sc.PROW_TIMING_ESTIMATED] is True


def test_children_stay_inside_parents_even_when_junit_overstates_time() -> None:
    """A suite claiming a day inside a 13-minute container is cut to the container."""
    records = spans_for(
        JunitFile("artifacts/junit.xml", (suite("s", case("a", 86400), seconds=86400),))
    )
    assert inside_parents(records)
    assert by_name(records, "s").end_ns == to_ns(TEST_END)


def test_failed_case_carries_error_status_and_scrubbed_message() -> None:
    """A failure is an ERROR span whose description has no secret and a bounded length."""
    message = f"clone with token={TOKEN} failed\n" + "x" * 10_000
    records = spans_for(
        JunitFile("artifacts/junit.xml", (suite("s", case("a", 1, failed=True, message=message)),))
    )
    span = by_name(records, "a")
    assert span.error is not None
    assert TOKEN not in span.error
    assert "REDACTED" in span.error
    assert len(span.error) <= 1024
    assert span.attributes[sc.TEST_CASE_RESULT_STATUS] == sc.CASE_STATUS_FAIL
    assert span.attributes[sc.ERROR_TYPE] == sc.ERROR_TEST_FAILED


def test_suite_of_a_failed_case_fails() -> None:
    """The suite's run status says failure and the count of failed cases."""
    records = spans_for(
        JunitFile("artifacts/junit.xml", (suite("s", case("a", 1, failed=True), case("b", 1)),))
    )
    span = by_name(records, "s")
    assert span.attributes[sc.TEST_SUITE_RUN_STATUS] == sc.SUITE_STATUS_FAILURE
    assert span.attributes[sc.PROW_TEST_SUITE_FAILED] == 1


def test_skipped_cases_are_counted_not_emitted() -> None:
    """Skips appear only as the suite's count."""
    records = spans_for(JunitFile("artifacts/junit.xml", (suite("s", case("a", 1), skipped=7),)))
    assert by_name(records, "s").attributes[sc.PROW_TEST_SUITE_SKIPPED] == 7
    assert len(junit_spans(records)) == 2


def test_repeated_names_get_distinct_stable_paths() -> None:
    """Two cases and two files of the same name get #2 paths; a rebuild gives the same IDs."""
    one = JunitFile("artifacts/junit_01.xml", (suite("e2e", case("same", 1), case("same", 1)),))
    two = JunitFile("artifacts/junit_02.xml", (suite("e2e", case("same", 1)),))
    records = spans_for(one, two)
    paths = [record.path for record in junit_spans(records)]
    identity = identity_from_uid("8d6e3f2a-1b4c-4d5e-9f60-7a8b9c0d1e2f")
    first = [span.span_id for span in identify(identity, records)]
    again = [span.span_id for span in identify(identity, spans_for(one, two))]
    assert len(set(paths)) == len(paths) == 5
    assert any(path.endswith("/same#2") for path in paths)
    assert first == again


def test_slashes_in_names_cannot_collide() -> None:
    """Suite ``a/b`` with case ``c`` and suite ``a`` with case ``b/c`` are different spans."""
    records = spans_for(
        JunitFile("artifacts/junit.xml", (suite("a/b", case("c", 1)), suite("a", case("b/c", 1))))
    )
    paths = [record.path for record in junit_spans(records)]
    assert len(set(paths)) == 4


def test_cap_keeps_failures_then_the_slowest() -> None:
    """Past the cap, every failure stays, then the longest cases; the suite counts the rest."""
    cases = [case(f"c{i:03}", float(i)) for i in range(200)]
    cases[3] = case("failing", 0.1, failed=True)
    records = spans_for(JunitFile("artifacts/junit.xml", (suite("s", *cases),)), max_spans=11)
    kept = {record.name for record in junit_spans(records)} - {"s"}
    assert len(junit_spans(records)) == 11
    assert kept == {"failing"} | {f"c{i:03}" for i in range(191, 200)}
    assert by_name(records, "s").attributes[sc.PROW_TEST_SUITE_OMITTED] == 190


def test_suites_left_out_are_counted_on_the_root() -> None:
    """When even the suites do not fit, the root says how many were left out."""
    suites = tuple(suite(f"s{i}", case("a", 1)) for i in range(10))
    records = spans_for(JunitFile("artifacts/junit.xml", suites), max_spans=4)
    assert records[0].attributes[sc.PROW_JUNIT_SUITES_OMITTED] == 8


def test_root_counts_unreadable_and_oversized_files() -> None:
    """The root says how many files were read, could not be read, or were too large."""
    records = spans_for(unreadable=("artifacts/junit_bad.xml",), too_large=("a/junit_x.xml",))
    root = records[0]
    assert (
        root.attributes[sc.PROW_JUNIT_FILES],
        root.attributes[sc.PROW_JUNIT_UNREADABLE],
        root.attributes[sc.PROW_JUNIT_TOO_LARGE],
    ) == (0, 1, 1)


def test_without_a_test_container_the_longest_job_container_is_chosen() -> None:
    """A pod whose container is not called ``test`` gets the suites under its job container."""
    podinfo = podinfo_doc()
    for status in podinfo["pod"]["status"]["containerStatuses"]:
        if status["name"] == "test":
            status["name"] = "e2e"
    for container in podinfo["pod"]["spec"]["containers"]:
        if container["name"] == "test":
            container["name"] = "e2e"
    artifacts = replace(
        full_artifacts(),
        podinfo=facts.parse_podinfo(json.dumps(podinfo).encode()),
        junit=JunitResults(files=(JunitFile("artifacts/junit.xml", (suite("s"),)),)),
    )
    records = job_spans(traceable("failure"), artifacts, PUBLISH)
    assert by_name(records, "s").parent == "pod/container/e2e"


@pytest.mark.parametrize("path", sorted(REAL.glob("*.xml")), ids=lambda p: p.name)
def test_every_real_file_gives_sane_spans(path: Path) -> None:
    """Each real JUnit file yields unique paths, all inside parents, every failure an error."""
    parsed = parse_junit(path.read_bytes(), f"artifacts/{path.name}")
    records = spans_for(parsed)
    tests = junit_spans(records)
    failing = [r for r in tests if r.attributes.get(sc.TEST_CASE_RESULT_STATUS) == "fail"]
    assert tests
    assert len({r.path for r in records}) == len(records)
    assert inside_parents(records)
    assert all(r.error for r in failing)
    assert all(len(r.name) <= 200 for r in tests)


def test_kubernetes_e2e_sized_run_is_capped_with_every_failure() -> None:
    """7,000 specs over 4 parallel nodes: at most 1,000 spans, all failures, lanes used."""
    data = kubernetes_e2e_junit(
        "cap", cases=7000, start=TEST_START, seconds=600, nodes=4, failures=5
    )
    records = spans_for(parse_junit(data, "artifacts/junit_01.xml"))
    tests = junit_spans(records)
    failing = [r for r in tests if r.attributes.get(sc.TEST_CASE_RESULT_STATUS) == "fail"]
    assert len(tests) == 1000
    assert len(failing) == 5
    assert {r.attributes.get(sc.PROW_TEST_LANE, 0) for r in tests} >= {0, 1, 2, 3}
    assert inside_parents(records)


def test_timestamps_are_utc_datetimes() -> None:
    """The fixture's stamps are UTC (a guard for the helper above)."""
    assert TEST_START.tzinfo is UTC
    assert datetime(2020, 5, 7, 0, 52, 41, tzinfo=UTC) == TEST_START


def test_cases_dropped_at_parse_count_as_omitted() -> None:
    """A suite whose file had more cases than the budget says so in its counts."""
    dropped = replace(suite("s", case("a", 1)), dropped=5)
    span = by_name(spans_for(JunitFile("artifacts/junit.xml", (dropped,))), "s")
    assert (
        span.attributes[sc.PROW_TEST_SUITE_CASES],
        span.attributes[sc.PROW_TEST_SUITE_OMITTED],
    ) == (
        6,
        5,
    )


def test_a_suite_shorter_than_its_longest_case_is_stretched_to_it() -> None:
    """A suite ``time`` of 1 s around a 5 s case lasts 5 s, so the case keeps its duration."""
    records = spans_for(JunitFile("artifacts/junit.xml", (suite("s", case("a", 5), seconds=1),)))
    span = by_name(records, "a")
    assert span.end_ns - span.start_ns == 5_000_000_000
