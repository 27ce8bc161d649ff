"""Parsing JUnit XML: every real file in tests/data/real-junit, and hostile ones, safely."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from core_fixtures import PUBLISH, full_artifacts, traceable

from processor.core.build import job_spans
from processor.core.junit import (
    MAX_DEPTH,
    MAX_MESSAGE_CHARS,
    CaseOutcome,
    JunitError,
    JunitFile,
    JunitResults,
    TestSuite,
    parse_junit,
)
from processor.synthetic.junit import kubernetes_e2e_junit

REAL = Path(__file__).parents[1] / "data" / "real-junit" / "files"

# (file, suites, cases that ran, skipped, failed or errored): SOURCES.md's table, whose counts
# are of <testcase> elements and of the <failure>/<error>/<skipped> children they hold.
REAL_COUNTS = [
    ("go-junit-report-v2_pass-fail-skip.xml", 3, 3, 2, 1),
    ("go-junit-report-v2_subtests.xml", 1, 10, 1, 4),
    ("go-junit-report-v2_build-errors.xml", 5, 5, 0, 3),
    ("go-junit-report-v1_build-errors.xml", 5, 5, 0, 3),
    ("go-junit-report-v2_real-run_securosys-hcvault.xml", 1, 292, 0, 0),
    ("gotestsum_junitxml-report-golden.xml", 5, 55, 5, 13),
    ("ginkgo-v1_k8s-e2e-conformance_2017-run.xml", 1, 147, 494, 0),
    ("ginkgo-v1_k8s-e2e-failure-with-system-out_sonobuoy-testdata.xml", 1, 2, 2, 1),
    ("ginkgo-v2_junit-reporter-golden_snapshot-extract.xml", 1, 4, 1, 2),
    ("pytest_horovod-spark_failure.xml", 1, 4, 1, 1),
    ("pytest_horovod-gloo-standalone.xml", 1, 80, 17, 0),
    ("nested-testsuite-in-testsuite.xml", 4, 5, 0, 0),
    ("ci-operator_junit_operator_multi-observers.xml", 1, 9, 0, 1),
    ("kubetest_junit_runner_kettle-standard.xml", 1, 8, 0, 1),
]


def every_suite(suites: tuple[TestSuite, ...]) -> list[TestSuite]:
    """Flatten nested suites, parents first."""
    found: list[TestSuite] = []
    for suite in suites:
        found.append(suite)
        found.extend(every_suite(suite.suites))
    return found


def real(name: str) -> JunitFile:
    """Parse one vendored real file."""
    return parse_junit((REAL / name).read_bytes(), f"artifacts/{name}")


def test_every_vendored_file_is_counted_here() -> None:
    """The table below covers every file in tests/data/real-junit (none is left untested)."""
    assert sorted(row[0] for row in REAL_COUNTS) == sorted(p.name for p in REAL.glob("*.xml"))


@pytest.mark.parametrize(
    ("name", "suites", "ran", "skipped", "failed"), REAL_COUNTS, ids=[r[0] for r in REAL_COUNTS]
)
def test_real_file_parses_to_its_counts(
    name: str, suites: int, ran: int, skipped: int, failed: int
) -> None:
    """Each real file yields the suites, ran cases, skips and failures SOURCES.md counts."""
    flat = every_suite(real(name).suites)
    assert len(flat) == suites
    assert sum(len(suite.cases) for suite in flat) == ran
    assert sum(suite.skipped for suite in flat) == skipped
    cases = [case for suite in flat for case in suite.cases]
    assert sum(case.outcome is not CaseOutcome.PASSED for case in cases) == failed


def test_suite_timestamp_with_offset_is_kept_as_an_instant() -> None:
    """go-junit-report's ``+01:00`` timestamp is converted, not read as UTC."""
    suite = real("go-junit-report-v2_real-run_securosys-hcvault.xml").suites[0]
    assert suite.timestamp == datetime(2023, 11, 28, 13, 52, 29, tzinfo=UTC)


def test_zone_less_timestamp_is_taken_as_utc() -> None:
    """A pytest naive local timestamp (microseconds included) is read as UTC."""
    suite = real("pytest_horovod-spark_failure.xml").suites[0]
    assert suite.timestamp == datetime(2020, 9, 4, 16, 18, 4, 966371, tzinfo=UTC)


def test_go_zero_time_is_no_timestamp() -> None:
    """The gotestsum and Ginkgo 0001-01-01 placeholder does not place a suite."""
    suites = every_suite(real("gotestsum_junitxml-report-golden.xml").suites)
    assert {suite.timestamp for suite in suites} == {None}


def test_unparsable_time_is_zero() -> None:
    """ci-operator's ``time="whatever"`` reads as no duration rather than failing the file."""
    suite = real("ci-operator_junit_operator_multi-observers.xml").suites[0]
    assert {case.seconds for case in suite.cases} == {0.0}


def test_exponent_times_are_read() -> None:
    """A kubetest time like ``2.065e-05`` is a number of seconds."""
    cases = real("kubetest_junit_runner_kettle-standard.xml").suites[0].cases
    assert any(case.seconds == pytest.approx(2.065e-05) for case in cases)


def test_failure_keeps_message_and_text() -> None:
    """go-junit-report's ``message="Failed"`` is joined with the text that says what failed."""
    data = (
        b'<testsuite name="p"><testcase name="TestX" time="1">'
        b'<failure message="Failed">x_test.go:9: want 1, got 2</failure></testcase></testsuite>'
    )
    case = parse_junit(data, "junit.xml").suites[0].cases[0]
    assert case.message == "Failed: x_test.go:9: want 1, got 2"


def test_failure_text_is_bounded() -> None:
    """A failure with megabytes of output keeps only its start."""
    data = (
        b'<testsuite><testcase name="t"><failure>'
        + b"x" * (MAX_MESSAGE_CHARS * 50)
        + b"</failure></testcase></testsuite>"
    )
    case = parse_junit(data, "junit.xml").suites[0].cases[0]
    assert len(case.message) == MAX_MESSAGE_CHARS


def test_billion_laughs_is_refused() -> None:
    """Entity expansion never happens: a file with a DTD is refused outright."""
    laughs = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    )
    data = f'<?xml version="1.0"?><!DOCTYPE t [{laughs}]><testsuite name="&lol9;"/>'.encode()
    with pytest.raises(JunitError, match="refused"):
        parse_junit(data, "junit.xml")


def test_external_entity_is_refused(tmp_path: Path) -> None:
    """An external entity naming a local file is never resolved."""
    secret = tmp_path / "secret"
    secret.write_text("SECRET-CONTENT")
    data = (
        f'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<testsuite name="&x;"/>'
    ).encode()
    with pytest.raises(JunitError, match="refused"):
        parse_junit(data, "junit.xml")


def test_truncated_file_is_an_error() -> None:
    """A file cut off mid-element (upload interrupted) is reported, not half-read."""
    data = (REAL / "go-junit-report-v2_subtests.xml").read_bytes()
    with pytest.raises(JunitError, match="not well-formed"):
        parse_junit(data[: len(data) // 2], "junit.xml")


def test_non_utf8_bytes_are_replaced() -> None:
    """Raw Latin-1 bytes from test output in a UTF-8 document do not lose the file."""
    data = b'<testsuite name="caf\xe9"><testcase name="t\xff" time="1"/></testsuite>'
    suite = parse_junit(data, "junit.xml").suites[0]
    assert (suite.name, suite.cases[0].name) == ("caf\ufffd", "t\ufffd")


def test_declared_latin1_is_decoded() -> None:
    """A file that declares ISO-8859-1 is decoded as such."""
    data = b'<?xml version="1.0" encoding="ISO-8859-1"?><testsuite name="caf\xe9"/>'
    assert parse_junit(data, "junit.xml").suites[0].name == "café"


def test_deep_nesting_is_refused() -> None:
    """Nesting past MAX_DEPTH is an error, with no recursion on the way."""
    depth = 100_000
    data = b"<testsuites>" + b"<testsuite>" * depth + b"</testsuite>" * depth + b"</testsuites>"
    with pytest.raises(JunitError, match="nested deeper"):
        parse_junit(data, "junit.xml")
    assert depth > MAX_DEPTH


def test_other_root_is_an_error() -> None:
    """Well-formed XML that is not JUnit (an HTML report named junit.xml) is unreadable."""
    with pytest.raises(JunitError, match="root element"):
        parse_junit(b"<html><body>report</body></html>", "junit.xml")


def test_parsing_memory_does_not_follow_file_size() -> None:
    """A 7,000-case Ginkgo file is parsed without holding anything near its size."""
    data = kubernetes_e2e_junit(
        "memory", cases=7000, start=datetime(2026, 1, 1, tzinfo=UTC), seconds=3600
    )
    tracemalloc.start()
    try:
        parsed = parse_junit(data, "junit_01.xml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    ran = len(parsed.suites[0].cases)
    assert ran > 0
    assert peak < len(data) / 2, (peak, len(data))


def test_kubernetes_e2e_fixture_is_deterministic_and_large() -> None:
    """The generated e2e file is the same every time and has thousands of cases."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    first = kubernetes_e2e_junit("k", cases=5000, start=start, seconds=timedelta(hours=1).seconds)
    again = kubernetes_e2e_junit("k", cases=5000, start=start, seconds=timedelta(hours=1).seconds)
    suite = parse_junit(first, "junit_01.xml").suites[0]
    assert first == again
    assert len(suite.cases) + suite.skipped == 5000


def test_cases_past_the_budget_are_counted_not_kept() -> None:
    """A file with more cases than its budget keeps the first ones and counts the rest."""
    data = b"<testsuite>" + b'<testcase name="c" time="1"/>' * 50 + b"</testsuite>"
    suite = parse_junit(data, "junit.xml", max_cases=20).suites[0]
    assert (len(suite.cases), suite.dropped) == (20, 30)


def test_nesting_up_to_the_limit_lays_out_quickly() -> None:
    """Suites nested MAX_DEPTH - 2 deep without times parse and lay out (no repeated descent)."""
    depth = MAX_DEPTH - 2
    data = (
        b"<testsuites>"
        + b'<testsuite name="s"><testcase name="c" time="1"/>' * depth
        + b"</testsuite>" * depth
        + b"</testsuites>"
    )
    parsed = parse_junit(data, "junit.xml")
    junit = JunitResults(files=(parsed,))
    artifacts = replace(full_artifacts(), junit=junit)
    records = job_spans(traceable("failure"), artifacts, PUBLISH)
    assert sum(1 for record in records if "/junit/" in record.path) == 2 * depth
