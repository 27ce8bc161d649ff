"""Lay a job's JUnit results out as spans under the container that ran the tests: pure.

Tree (below the chosen container ``C``)::

    C/junit/<file>/<suite>              <suite name>   one per <testsuite> (nested ones nested)
    C/junit/<file>/<suite>/<case>       <case name>    one per test case that ran

The container: JUnit files are uploaded by Prow's sidecar from ``$ARTIFACTS``, which every job
container shares, so the files do not say who wrote them. The container named ``test`` (what Prow
calls a single-container job's container) is chosen; otherwise the job container that ran longest;
without any, the pod (or the root).

Times: a suite's ``timestamp`` places it when it falls inside the container; otherwise suites are
laid end to end from the container's start. Cases follow each other from their suite's start in
file order, by their ``time``. Whenever the next item would run past its parent's end it opens a
new *lane* at the parent's start: durations that add up to more than the parent's wall time were
parallel (``go test -p``, Ginkgo's parallel nodes). Every span whose start is inferred this way
carries ``prow.timing.estimated``; :func:`~processor.core.spans.fit_inside_parents` then keeps every
child inside its parent, as everywhere else.

Volume: skipped cases are counted on their suite, never emitted. At most ``max_spans`` test spans
per job: failed cases first, then the slowest, each with the suites above it; suites that still fit
follow. Every suite says how many of its cases were left out; the root says how many suites were.

IDs: each path segment is the escaped name, with ``#2``, ``#3``, ... for repeated names under the
same parent in file order, so reprocessing the same files yields the same span IDs.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from processor.core import semconv as sc
from processor.core.junit import CaseOutcome, JunitResults, TestCase, TestSuite
from processor.core.redact import cap, scrub
from processor.core.spans import AttributeValue, SpanRecord

TEST_CONTAINER = "test"
SIDECAR = "sidecar"
MAX_SPAN_NAME_CHARS = 200
MAX_FAILURE_CHARS = 1024
_TIMESTAMP_SLACK_NS = 2_000_000_000
"""A suite's timestamp may precede its container's truncated startedAt by up to this."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ROUNDING_NS = 1_000_000


@dataclass(slots=True)
class _Placed:
    """A suite or case with its path, place in time and lane, before selection."""

    path: str
    parent: str
    start_ns: int
    end_ns: int
    estimated: bool
    lane: int = 0
    suite: TestSuite | None = None
    case: TestCase | None = None
    file: str = ""
    ancestors: tuple[str, ...] = ()
    children: list[_Placed] = field(default_factory=list)
    failed: bool = False


def add_test_spans(records: Sequence[SpanRecord], junit: JunitResults | None) -> list[SpanRecord]:
    """Return ``records`` with the JUnit test spans appended and the root annotated.

    ``records`` lists parents before children, root first; ``junit`` is ``None`` when test spans
    are turned off. Nothing changes for a job without JUnit files.
    """
    if junit is None or not records or records[0].parent is not None:
        return list(records)
    if not (junit.files or junit.unreadable or junit.too_large):
        return list(records)
    container = _test_container(records)
    placed = _layout(container, junit)
    kept = _select(placed, junit.max_spans)
    spans = [_span(item, kept) for item in _walk(placed) if item.path in kept]
    root = records[0]
    attributes = dict(root.attributes)
    attributes[sc.PROW_JUNIT_FILES] = len(junit.files)
    attributes[sc.PROW_JUNIT_UNREADABLE] = len(junit.unreadable)
    attributes[sc.PROW_JUNIT_TOO_LARGE] = len(junit.too_large)
    dropped = sum(1 for item in _walk(placed) if item.suite and item.path not in kept)
    if dropped:
        attributes[sc.PROW_JUNIT_SUITES_OMITTED] = dropped
    return [replace(root, attributes=attributes), *records[1:], *spans]


def _test_container(records: Sequence[SpanRecord]) -> SpanRecord:
    """Choose the span the tests ran in (see the module docstring for why this one)."""
    containers = [
        record
        for record in records
        if record.path.startswith("pod/container/")
        and record.attributes.get(sc.PROW_CONTAINER_NAME) != SIDECAR
    ]
    named = [record for record in containers if record.path == f"pod/container/{TEST_CONTAINER}"]
    if named:
        return named[0]
    if containers:
        return max(containers, key=lambda record: (record.end_ns - record.start_ns, record.path))
    pod = [record for record in records if record.path == "pod"]
    return pod[0] if pod else records[0]


def _segment(name: str, seen: dict[str, int]) -> str:
    """Escape ``name`` into one path segment, numbering repeats under the same parent."""
    escaped = name.replace("%", "%25").replace("/", "%2F").replace("#", "%23") or "%"
    seen[escaped] = seen.get(escaped, 0) + 1
    count = seen[escaped]
    return escaped if count == 1 else f"{escaped}#{count}"


def _ns(seconds: float | None) -> int:
    return round((seconds or 0.0) * 1_000_000_000)


def _instant_ns(instant: datetime) -> int:
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _wall_ns(suite: TestSuite) -> int:
    """Return a suite's duration: its ``time``, else what its contents add up to.

    A ``time`` shorter than one of its own cases (rounded, or written before the case ended) is
    stretched to that case: nothing inside a suite can take longer than the suite.
    """
    parts = [*(_ns(case.seconds) for case in suite.cases), *map(_wall_ns, suite.suites)]
    if suite.seconds is not None:
        return max(_ns(suite.seconds), *parts, 0)
    return sum(parts)


class _Lanes:
    """Place items end to end from ``start``; one that would pass ``end`` opens a new lane."""

    def __init__(self, start_ns: int, end_ns: int) -> None:
        self._start = start_ns
        self._end = end_ns
        # Writers round each time (go-junit-report to the millisecond): sums may overshoot a bit.
        self._slack = _ROUNDING_NS + (end_ns - start_ns) // 100
        self._free: list[tuple[int, int]] = [(start_ns, 0)]
        self.count = 1

    def place(self, duration_ns: int) -> tuple[int, int]:
        """Return the start and lane of an item lasting ``duration_ns``."""
        free, lane = heapq.heappop(self._free)
        if free + duration_ns > self._end + self._slack and free > self._start:
            heapq.heappush(self._free, (free, lane))
            free, lane = self._start, self.count
            self.count += 1
        heapq.heappush(self._free, (free + duration_ns, lane))
        return free, lane


def _layout(container: SpanRecord, junit: JunitResults) -> list[_Placed]:
    """Place every suite and case of every file in time (before any is left out)."""
    top: list[_Placed] = []
    lanes = _Lanes(container.start_ns, container.end_ns)
    files_seen: dict[str, int] = {}
    for junit_file in junit.files:
        file_path = f"{container.path}/junit/{_segment(junit_file.name, files_seen)}"
        seen: dict[str, int] = {}
        for suite in junit_file.suites:
            path = f"{file_path}/{_segment(suite.name, seen)}"
            top.append(
                _place_suite(
                    suite,
                    path,
                    container,
                    lanes,
                    file=junit_file.name,
                    ancestors=(),
                    parent_path=None,
                )
            )
    return top


def _place_suite(  # noqa: PLR0913 - one suite's place: where, in what, among what
    suite: TestSuite,
    path: str,
    parent: SpanRecord | _Placed,
    lanes: _Lanes,
    *,
    file: str,
    ancestors: tuple[str, ...],
    parent_path: str | None,
) -> _Placed:
    wall = _wall_ns(suite)
    stamped = _instant_ns(suite.timestamp) if suite.timestamp else None
    if stamped is not None and (parent.start_ns - _TIMESTAMP_SLACK_NS <= stamped <= parent.end_ns):
        start, lane, estimated = stamped, 0, False
    else:
        (start, lane), estimated = lanes.place(wall), True
    placed = _Placed(
        path=path,
        parent=parent_path if parent_path is not None else parent.path,
        start_ns=start,
        end_ns=start + wall,
        estimated=estimated,
        lane=lane,
        suite=suite,
        file=file,
        ancestors=ancestors,
    )
    inner = _Lanes(start, start + wall)
    seen: dict[str, int] = {}
    for case in suite.cases:
        case_start, case_lane = inner.place(_ns(case.seconds))
        placed.children.append(
            _Placed(
                path=f"{path}/{_segment(case.name, seen)}",
                parent=path,
                start_ns=case_start,
                end_ns=case_start + _ns(case.seconds),
                estimated=True,
                lane=case_lane,
                case=case,
                file=file,
                ancestors=(*ancestors, path),
                failed=case.outcome is not CaseOutcome.PASSED,
            )
        )
    for nested in suite.suites:
        placed.children.append(
            _place_suite(
                nested,
                f"{path}/{_segment(nested.name, seen)}",
                placed,
                inner,
                file=file,
                ancestors=(*ancestors, path),
                parent_path=path,
            )
        )
    placed.failed = any(child.failed for child in placed.children)
    return placed


def _walk(items: Sequence[_Placed]) -> Iterator[_Placed]:
    """Yield suites before their contents, in file order."""
    for item in items:
        yield item
        yield from _walk(item.children)


def _select(top: Sequence[_Placed], limit: int) -> set[str]:
    """Choose the paths to emit: failures, then the slowest cases, each with its suites."""
    kept: set[str] = set()
    everything = list(_walk(top))
    order = {item.path: index for index, item in enumerate(everything)}

    def rank(item: _Placed) -> tuple[bool, int, int]:
        return (not item.failed, item.start_ns - item.end_ns, order[item.path])

    for item in sorted((item for item in everything if item.case), key=rank):
        needed = [path for path in (*item.ancestors, item.path) if path not in kept]
        if len(kept) + len(needed) <= limit:
            kept.update(needed)
    for item in sorted((item for item in everything if item.suite), key=rank):
        needed = [path for path in (*item.ancestors, item.path) if path not in kept]
        if len(kept) + len(needed) <= limit:
            kept.update(needed)
    return kept


def _span(item: _Placed, kept: set[str]) -> SpanRecord:
    attributes: dict[str, AttributeValue] = {}
    if item.estimated:
        attributes[sc.PROW_TIMING_ESTIMATED] = True
    if item.lane:
        attributes[sc.PROW_TEST_LANE] = item.lane
    if item.suite is not None:
        return _suite_span(item, item.suite, attributes, kept)
    case = item.case
    assert case is not None  # noqa: S101 - a placed item is a suite or a case
    name = scrub(case.name, MAX_SPAN_NAME_CHARS) or "(unnamed)"
    attributes[sc.TEST_CASE_NAME] = scrub(case.name)
    attributes[sc.TEST_CASE_RESULT_STATUS] = (
        sc.CASE_STATUS_FAIL if item.failed else sc.CASE_STATUS_PASS
    )
    if case.classname:
        attributes[sc.PROW_TEST_CASE_CLASSNAME] = scrub(case.classname)
    error = None
    if item.failed:
        attributes[sc.ERROR_TYPE] = sc.ERROR_TEST_FAILED
        error = scrub(case.message, MAX_FAILURE_CHARS) or f"test {case.outcome.value}"
    return SpanRecord(
        path=item.path,
        parent=item.parent,
        name=cap(name, MAX_SPAN_NAME_CHARS),
        start_ns=item.start_ns,
        end_ns=item.end_ns,
        attributes=attributes,
        error=error,
    )


def _suite_span(
    item: _Placed, suite: TestSuite, attributes: dict[str, AttributeValue], kept: set[str]
) -> SpanRecord:
    cases = [child for child in item.children if child.case]
    failed = sum(1 for child in cases if child.failed)
    failed_below = sum(1 for child in _walk(item.children) if child.case and child.failed)
    name = suite.name or item.file
    attributes[sc.TEST_SUITE_NAME] = scrub(name)
    if failed_below:
        status = sc.SUITE_STATUS_FAILURE
    elif not cases and not item.children and suite.skipped:
        status = sc.SUITE_STATUS_SKIPPED
    else:
        status = sc.SUITE_STATUS_SUCCESS
    attributes[sc.TEST_SUITE_RUN_STATUS] = status
    attributes[sc.PROW_TEST_SUITE_FILE] = scrub(item.file)
    attributes[sc.PROW_TEST_SUITE_CASES] = len(cases) + suite.dropped
    attributes[sc.PROW_TEST_SUITE_FAILED] = failed
    attributes[sc.PROW_TEST_SUITE_SKIPPED] = suite.skipped
    attributes[sc.PROW_TEST_SUITE_OMITTED] = suite.dropped + sum(
        1 for child in cases if child.path not in kept
    )
    return SpanRecord(
        path=item.path,
        parent=item.parent,
        name=cap(scrub(name, MAX_SPAN_NAME_CHARS), MAX_SPAN_NAME_CHARS) or "(unnamed suite)",
        start_ns=item.start_ns,
        end_ns=item.end_ns,
        attributes=attributes,
        error=f"{failed_below} failed test case(s)" if failed_below else None,
    )
