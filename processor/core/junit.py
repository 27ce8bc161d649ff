"""Decode JUnit XML result files into test suite and case facts, safely and in bounded memory.

Prow jobs upload JUnit files next to their other artifacts (Spyglass's JUnit lens shows every
``artifacts/junit*.xml``). The writers seen in Prow differ in shape, and all are accepted: a
``<testsuites>`` wrapper or a bare ``<testsuite>``, suites nested in suites (PHPUnit style), suite
``timestamp`` with a zone, without one, or Go's zero time, ``time`` in seconds (``2.065e-05``,
``whatever``), failures as ``<failure>`` or ``<error>``, skips as ``<skipped>`` (Ginkgo's pending
specs too).

The file is parsed by ``defusedxml``'s SAX parser (expat) with DTDs forbidden, so no entity
expansion (billion laughs), no external entity and no network access can happen. No element tree
is built: a streaming handler keeps only the facts, and the text of ``<system-out>`` and
``<system-err>`` is never held, so memory stays proportional to the cases kept, not to the file.
Skipped cases are only counted. Anything malformed raises :class:`JunitError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from xml.sax import SAXException
from xml.sax.handler import ContentHandler
from xml.sax.xmlreader import AttributesImpl

import defusedxml.sax
from defusedxml import DefusedXmlException

MAX_DEPTH = 64
"""Deeper element nesting is refused: no JUnit writer nests more than a few levels."""
MAX_NAME_CHARS = 512
"""Suite and case names are cut here when read (Ginkgo names can be long, not this long)."""
MAX_MESSAGE_CHARS = 1024
"""At most this much of a failure's text is kept: what a span shows (after scrubbing) at most."""
MAX_CASES = 10_000
"""Cases kept per file by default; more are only counted (memory must not follow a file's size)."""
DEFAULT_MAX_TEST_SPANS = 1000
"""Enough for every failure and the slow tail of a Kubernetes e2e run (thousands of cases)."""
_EARLIEST_TIMESTAMP = datetime(1971, 1, 1, tzinfo=UTC)
"""Older timestamps are placeholders (gotestsum and Ginkgo write Go's zero time 0001-01-01)."""


class JunitError(ValueError):
    """The file is not JUnit XML prowtrace can read; the message says why."""


class CaseOutcome(StrEnum):
    """How a test case ended, from the element it holds (none: it passed)."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class TestCase:
    """One test case that ran (skipped cases are only counted on their suite)."""

    __test__ = False  # not a pytest test class, whatever its name

    name: str
    classname: str
    seconds: float
    outcome: CaseOutcome = CaseOutcome.PASSED
    message: str = ""
    """The failure's ``message`` attribute and the start of its text (unscrubbed)."""


@dataclass(frozen=True, slots=True)
class TestSuite:
    """One ``<testsuite>``: its cases in file order, nested suites, and what it skipped."""

    __test__ = False

    name: str
    seconds: float | None
    timestamp: datetime | None
    cases: tuple[TestCase, ...] = ()
    suites: tuple[TestSuite, ...] = ()
    skipped: int = 0
    dropped: int = 0
    """Cases that ran but were not kept: the file had more than its case budget."""


@dataclass(frozen=True, slots=True)
class JunitFile:
    """The suites of one JUnit file; ``name`` is its path inside the job's folder."""

    name: str
    suites: tuple[TestSuite, ...]


@dataclass(frozen=True, slots=True)
class JunitResults:
    """What a job's JUnit files gave: the parsed ones, and the names of those that were not."""

    files: tuple[JunitFile, ...] = ()
    unreadable: tuple[str, ...] = ()
    """Files that are not well-formed JUnit XML (or are hostile: DTDs, entities)."""
    too_large: tuple[str, ...] = ()
    """Files over the per-file limit, or past the per-job total, that were not read."""
    max_spans: int = DEFAULT_MAX_TEST_SPANS
    """How many test spans the job may have (the deployment's setting, carried to the layout)."""


def parse_junit(data: bytes, name: str, max_cases: int = MAX_CASES) -> JunitFile:
    """Decode one JUnit file; raise :class:`JunitError` if it cannot be read as one.

    At most ``max_cases`` cases that ran are kept (in file order); later ones are counted on
    their suite as ``dropped``, so a file's memory is bounded whatever it holds.
    """
    try:
        return _parse(data, name, max_cases)
    except JunitError as first:
        # Test output pasted into failures is not always UTF-8 (go-junit-report copies raw bytes
        # into documents that declare UTF-8): read such a file with the bad bytes replaced.
        if not _is_utf8(data) and not first.args[0].startswith(f"{name}: refused"):
            return _parse(data.decode("utf-8", "replace").encode(), name, max_cases)
        raise


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _parse(data: bytes, name: str, max_cases: int) -> JunitFile:
    target = _Collector(name, max_cases)
    try:
        defusedxml.sax.parseString(data, target, forbid_dtd=True)
    except DefusedXmlException as error:
        raise JunitError(f"{name}: refused: {type(error).__name__}") from None
    except SAXException as error:
        raise JunitError(f"{name}: not well-formed XML ({error})") from None
    if target.root is None:
        raise JunitError(f"{name}: the root element is neither <testsuites> nor <testsuite>")
    return JunitFile(name=name, suites=tuple(target.root))


@dataclass(slots=True)
class _OpenSuite:
    name: str
    seconds: float | None
    timestamp: datetime | None
    cases: list[TestCase] = field(default_factory=list)
    suites: list[TestSuite] = field(default_factory=list)
    skipped: int = 0
    dropped: int = 0

    def close(self) -> TestSuite:
        return TestSuite(
            name=self.name,
            seconds=self.seconds,
            timestamp=self.timestamp,
            cases=tuple(self.cases),
            suites=tuple(self.suites),
            skipped=self.skipped,
            dropped=self.dropped,
        )


@dataclass(slots=True)
class _OpenCase:
    name: str
    classname: str
    seconds: float
    outcome: CaseOutcome = CaseOutcome.PASSED
    skipped: bool = False
    message: str = ""
    text: list[str] = field(default_factory=list)
    text_chars: int = 0


class _Collector(ContentHandler):
    """A SAX handler that keeps suite and case facts and drops everything else."""

    def __init__(self, name: str, max_cases: int) -> None:
        super().__init__()
        self._name = name
        self._budget = max_cases
        self._depth = 0
        self._suites: list[_OpenSuite] = []
        self._case: _OpenCase | None = None
        self._case_depth = 0
        self._in_outcome = False
        self._top: list[TestSuite] = []
        self._root_tag = ""

    @property
    def root(self) -> list[TestSuite] | None:
        return self._top if self._root_tag in {"testsuites", "testsuite"} else None

    def startElement(self, tag: str, attrib: AttributesImpl) -> None:  # noqa: N802 - SAX's name
        """Open an element: a suite, a case, or what a case ended with."""
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise JunitError(f"{self._name}: elements nested deeper than {MAX_DEPTH}")
        local = tag.rpartition(":")[2]
        if self._depth == 1:
            self._root_tag = local
        if local == "testsuite" and self._case is None:
            self._suites.append(
                _OpenSuite(
                    name=attrib.get("name", "")[:MAX_NAME_CHARS],
                    seconds=_seconds(attrib.get("time")),
                    timestamp=_timestamp(attrib.get("timestamp")),
                )
            )
        elif local == "testcase" and self._suites and self._case is None:
            self._case_depth = self._depth
            self._case = _OpenCase(
                name=attrib.get("name", "")[:MAX_NAME_CHARS],
                classname=attrib.get("classname", "")[:MAX_NAME_CHARS],
                seconds=_seconds(attrib.get("time")) or 0.0,
            )
        elif self._case is not None and self._depth == self._case_depth + 1:
            self._outcome_start(local, attrib)

    def _outcome_start(self, local: str, attrib: AttributesImpl) -> None:
        case = self._case
        assert case is not None  # noqa: S101 - only called inside a case
        if local == "skipped":
            case.skipped = True
        elif local in {"failure", "error"} and case.outcome is CaseOutcome.PASSED:
            case.outcome = CaseOutcome.FAILED if local == "failure" else CaseOutcome.ERROR
            case.message = attrib.get("message", "")[:MAX_MESSAGE_CHARS]
            self._in_outcome = True

    def characters(self, text: str) -> None:
        """Keep text only inside a failure or error, and only its start."""
        case = self._case
        if self._in_outcome and case is not None and case.text_chars < MAX_MESSAGE_CHARS:
            case.text.append(text[: MAX_MESSAGE_CHARS - case.text_chars])
            case.text_chars += len(case.text[-1])

    def endElement(self, tag: str) -> None:  # noqa: N802 - SAX's name
        """Close an element."""
        self._depth -= 1
        local = tag.rpartition(":")[2]
        if local in {"failure", "error"}:
            self._in_outcome = False
        elif local == "testcase" and self._case is not None and self._depth < self._case_depth:
            self._close_case(self._case)
            self._case = None
        elif local == "testsuite" and self._suites and self._case is None:
            suite = self._suites.pop().close()
            (self._suites[-1].suites if self._suites else self._top).append(suite)

    def _close_case(self, case: _OpenCase) -> None:
        suite = self._suites[-1]
        if case.skipped and case.outcome is CaseOutcome.PASSED:
            suite.skipped += 1
            return
        if self._budget <= 0:
            suite.dropped += 1
            return
        self._budget -= 1
        # go-junit-report's message is just "Failed"; the text says what failed. Keep both.
        attribute, text = case.message.strip(), "".join(case.text).strip()
        message = (
            f"{attribute}: {text}"
            if attribute and text and attribute not in text
            else (text or attribute)
        )
        suite.cases.append(
            TestCase(
                name=case.name,
                classname=case.classname,
                seconds=case.seconds,
                outcome=case.outcome,
                message=message[:MAX_MESSAGE_CHARS],
            )
        )


def _seconds(value: str | None) -> float | None:
    """Read a ``time`` attribute in seconds; ``None`` when absent or not a finite number ≥ 0."""
    if value is None:
        return None
    try:
        seconds = float(value.strip().replace(",", ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _timestamp(value: str | None) -> datetime | None:
    """Read a suite ``timestamp``: ISO 8601, naive ones taken as UTC; placeholders are ``None``."""
    if not value:
        return None
    try:
        instant = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant if instant >= _EARLIEST_TIMESTAMP else None
