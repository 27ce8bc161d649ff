"""Golden traces: every lifecycle the corpus knows, rendered span by span and compared to a file.

The rendering keeps everything a backend would store (tree, kinds, times relative to the root,
status, attributes, events), so any change to what prowtrace emits shows up as a reviewable diff.
Regenerate after an intended change with ``PROWTRACE_UPDATE_GOLDEN=1 scripts/test -k golden``.
Each scenario also gets assertions of the behaviour that matters, so a golden file that was
regenerated carelessly still cannot hide a regression of those.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from opentelemetry.trace import StatusCode
from support.oracle import expected_spans, orphans

from processor.core import semconv as sc
from processor.export.otlp_json import AttributeValue, DecodedSpan
from processor.synthetic import Scenario, SyntheticJob, generate, stream, write_mirror

GOLDEN = Path(__file__).parents[1] / "golden"
UPDATE = os.environ.get("PROWTRACE_UPDATE_GOLDEN") == "1"
STATUS = {StatusCode.UNSET: "", StatusCode.OK: " OK", StatusCode.ERROR: " ERROR"}


def _trace(scenario: Scenario, tmp_path: Path) -> tuple[SyntheticJob, list[DecodedSpan]]:
    job = next(generate(1, seed=11, scenarios=[scenario]))
    write_mirror([job], tmp_path)
    spans = list(expected_spans(stream([job]), tmp_path).values())
    return job, spans


def render(spans: list[DecodedSpan]) -> str:
    """Return the trace as indented text, times relative to the root.

    Children in start order, ties in the order prowtrace emitted them (the artifacts' order), as
    ``prowtrace show`` draws them.
    """
    if not spans:
        return "(no spans)\n"
    by_parent: dict[str | None, list[DecodedSpan]] = {}
    for span in spans:
        by_parent.setdefault(span.parent_span_id, []).append(span)
    origin = min(span.start_ns for span in spans)
    lines: list[str] = []

    def walk(span: DecodedSpan, depth: int) -> None:
        pad = "  " * depth
        start = (span.start_ns - origin) / 1e6
        duration = (span.end_ns - span.start_ns) / 1e6
        status = STATUS[span.status_code]
        message = f" {span.status_message!r}" if span.status_message else ""
        lines.append(
            f"{pad}{span.name} [{span.kind.name}] +{start:.3f}ms "
            f"{duration:.3f}ms{status}{message} id={span.span_id}"
        )
        attributes = span.attributes
        lines.extend(f"{pad}  | {key} = {_listed(attributes[key])!r}" for key in sorted(attributes))
        for event in span.events:
            at = (event.time_ns - origin) / 1e6
            shown = ", ".join(f"{k}={_listed(v)!r}" for k, v in sorted(event.attributes.items()))
            lines.append(f"{pad}  @ +{at:.3f}ms {event.name} {shown}")
        for child in sorted(by_parent.get(span.span_id, []), key=lambda s: s.start_ns):
            walk(child, depth + 1)

    roots = [span for span in spans if not span.parent_span_id]
    roots += orphans({s.key: s for s in spans})
    for root in sorted(roots, key=lambda s: s.start_ns):
        walk(root, 0)
    return "\n".join(lines) + "\n"


def _listed(value: AttributeValue) -> AttributeValue | list[AttributeValue]:
    """Show an array attribute as a list, the way the golden files were first written."""
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("scenario", list(Scenario), ids=lambda s: s.value)
def test_trace_matches_golden_file(scenario: Scenario, tmp_path: Path) -> None:
    """The scenario's trace renders exactly as its reviewed golden file."""
    _, spans = _trace(scenario, tmp_path)
    golden = GOLDEN / f"{scenario.value}.txt"
    text = render(spans)
    if UPDATE:
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden.name}: run with PROWTRACE_UPDATE_GOLDEN=1"
    assert text == golden.read_text()


def _root(spans: list[DecodedSpan]) -> DecodedSpan:
    (root,) = [span for span in spans if not span.parent_span_id]
    return root


def _named(spans: list[DecodedSpan], prefix: str) -> list[DecodedSpan]:
    return [span for span in spans if span.name.startswith(prefix)]


def test_every_traced_scenario_is_one_tree_rooted_at_the_uid(tmp_path: Path) -> None:
    """For every job that ran: one root, whose IDs follow tracing.sh, and no orphan spans."""
    for scenario in Scenario:
        job, spans = _trace(scenario, tmp_path / scenario.value)
        if not spans:
            continue
        trace = job.uid.replace("-", "")
        root = _root(spans)
        assert (root.trace_id, root.span_id) == (trace, trace[:16]), scenario
        assert orphans({span.key: span for span in spans}) == [], scenario


def test_presubmit_with_extra_refs_names_the_change_and_the_extra_repository(
    tmp_path: Path,
) -> None:
    """A presubmit's root carries its pull request and lists the extra repositories."""
    _, spans = _trace(Scenario.PRESUBMIT_SUCCESS, tmp_path)
    root = _root(spans)
    assert root.attributes[sc.CICD_PIPELINE_RESULT] == "success"
    assert str(root.attributes[sc.VCS_CHANGE_ID]).isdigit()
    assert root.attributes[sc.PROW_EXTRA_REPOS]
    assert len(_named(spans, "clone/")) == 2


def test_postsubmit_failure_is_an_error_with_a_failed_test_task(tmp_path: Path) -> None:
    """A failed postsubmit: ERROR root, error.type test_failed, the test task failed too."""
    _, spans = _trace(Scenario.POSTSUBMIT_FAILURE, tmp_path)
    root = _root(spans)
    assert root.status_code is StatusCode.ERROR
    assert root.attributes[sc.ERROR_TYPE] == sc.ERROR_TEST_FAILED
    (test,) = _named(spans, "container/test")
    assert test.attributes[sc.CICD_PIPELINE_TASK_RUN_RESULT] == "failure"


def test_periodic_without_refs_has_no_repository_facts(tmp_path: Path) -> None:
    """A periodic with no refs: no vcs.* attributes and no clone spans, but a full pod tree."""
    _, spans = _trace(Scenario.PERIODIC_SUCCESS, tmp_path)
    assert not any(key.startswith("vcs.") for key in _root(spans).attributes)
    assert _named(spans, "clone/") == []
    assert _named(spans, "container/test")


def test_batch_lists_its_pulls_without_claiming_one_change(tmp_path: Path) -> None:
    """A batch tests several pull requests: all listed, none singled out as vcs.change.id."""
    _, spans = _trace(Scenario.BATCH_SUCCESS, tmp_path)
    root = _root(spans)
    pulls = root.attributes[sc.PROW_PULLS]
    assert isinstance(pulls, tuple)
    assert len(pulls) > 1
    assert sc.VCS_CHANGE_ID not in root.attributes


def test_aborted_while_pending_is_a_cancellation_without_an_error(tmp_path: Path) -> None:
    """Aborted before its containers ran: result cancellation, status not ERROR."""
    _, spans = _trace(Scenario.ABORTED_WHILE_PENDING, tmp_path)
    root = _root(spans)
    assert root.attributes[sc.CICD_PIPELINE_RESULT] == "cancellation"
    assert root.status_code is not StatusCode.ERROR
    assert sc.ERROR_TYPE not in root.attributes


@pytest.mark.parametrize("scenario", [Scenario.ERROR_BEFORE_PENDING, Scenario.ERROR_EMPTY_JOB])
def test_error_before_pending_emits_no_spans(scenario: Scenario, tmp_path: Path) -> None:
    """A job that never ran (no artifact path in any message) yields no spans at all."""
    _, spans = _trace(scenario, tmp_path)
    assert spans == []


def test_clone_failure_marks_the_failed_git_command(tmp_path: Path) -> None:
    """A clone failure: error.type clone_failed, and the failing git command span is ERROR."""
    _, spans = _trace(Scenario.CLONE_FAILURE, tmp_path)
    assert _root(spans).attributes[sc.ERROR_TYPE] == sc.ERROR_CLONE_FAILED
    failed = [
        span
        for span in spans
        if span.name.startswith("git") and span.status_code is StatusCode.ERROR
    ]
    assert failed


def test_missing_podinfo_estimates_the_pod_from_started_and_finished(tmp_path: Path) -> None:
    """Without podinfo.json the pod's spans are rebuilt from started/finished and marked so."""
    _, spans = _trace(Scenario.MISSING_PODINFO, tmp_path)
    (pod,) = _named(spans, "pod")
    assert pod.attributes[sc.PROW_TIMING_ESTIMATED] is True
    (test,) = _named(spans, "container/test")
    assert test.attributes[sc.PROW_TIMING_ESTIMATED] is True


def test_tot_build_id_takes_pending_time_from_prowjob(tmp_path: Path) -> None:
    """A tot (non-snowflake) build ID carries no time: the queue ends at pendingTime."""
    _, spans = _trace(Scenario.TOT_BUILD_ID, tmp_path)
    (queue,) = _named(spans, "queue")
    assert queue.attributes[sc.PROW_TIMING_SOURCE] == "prowjob"


def test_snowflake_build_id_gives_the_pending_instant_to_the_millisecond(tmp_path: Path) -> None:
    """A snowflake build ID dates the end of the queue more finely than prowjob.json's seconds."""
    _, spans = _trace(Scenario.POSTSUBMIT_SUCCESS, tmp_path)
    (queue,) = _named(spans, "queue")
    assert queue.attributes[sc.PROW_TIMING_SOURCE] == "snowflake"
    assert queue.end_ns % 1_000_000_000 != 0


def test_container_still_running_at_abort_ends_with_the_job(tmp_path: Path) -> None:
    """Aborted while running: the unfinished test container lasts until the job ended."""
    _, spans = _trace(Scenario.ABORTED_WHILE_RUNNING, tmp_path)
    root = _root(spans)
    (test,) = _named(spans, "container/test")
    assert test.end_ns == root.end_ns
    assert test.attributes[sc.PROW_TIMING_ESTIMATED] is True
    assert test.attributes[sc.CICD_PIPELINE_TASK_RUN_RESULT] == "cancellation"
