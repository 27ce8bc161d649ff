"""The waterfall layout shared by both views: grouping, nesting, orphans, repeats, durations."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.trace import SpanKind, StatusCode
from show_fixture import E2E_UID, UNIT_UID, fixture_spans

from processor.export.otlp_json import DecodedSpan, spans_from_sdk
from processor.tools.waterfall import (
    Tone,
    TraceView,
    build_trace_views,
    format_duration,
    unique_spans,
    visible_text,
)

TRACE = "0af7651916cd43dd8448eb211c80319c"
MS = 1_000_000
SECOND = 1_000_000_000


def _span(
    span_id: str, parent: str | None, start_s: float = 0, end_s: float = 1, name: str = ""
) -> DecodedSpan:
    return DecodedSpan(
        trace_id=TRACE,
        span_id=span_id.rjust(16, "0"),
        parent_span_id=parent.rjust(16, "0") if parent else None,
        name=name or f"span {span_id}",
        kind=SpanKind.INTERNAL,
        start_ns=round(start_s * SECOND),
        end_ns=round(end_s * SECOND),
    )


def _fixture_views() -> list[TraceView]:
    return build_trace_views(spans_from_sdk(fixture_spans()))


def _names(view: TraceView) -> list[tuple[int, str]]:
    return [(row.depth, row.span.name) for row in view.rows]


def test_durations_read_like_people_write_them() -> None:
    """Durations use the largest sensible unit: 850µs, 850ms, 12.3s, 4m05s, 2h03m."""
    assert format_duration(850_000) == "850µs"
    assert format_duration(850 * MS) == "850ms"
    assert format_duration(12_300 * MS) == "12.3s"
    assert format_duration(245 * SECOND) == "4m05s"
    assert format_duration((2 * 3600 + 3 * 60) * SECOND) == "2h03m"


def test_durations_round_into_the_next_unit() -> None:
    """Values that round up past a unit's limit move to the next unit."""
    assert format_duration(999_700_000) == "1.0s"
    assert format_duration(59_960 * MS) == "1m00s"
    assert format_duration(999_999) == "1ms"


def test_zero_and_negative_durations_show_zero() -> None:
    """A span that ends before it starts shows 0s rather than a negative time."""
    assert format_duration(0) == "0s"
    assert format_duration(-5 * SECOND) == "0s"


def test_spans_group_into_traces_earliest_first() -> None:
    """Each trace ID becomes one view, ordered by start time."""
    views = _fixture_views()

    assert [view.trace_id for view in views] == [
        E2E_UID.replace("-", ""),
        UNIT_UID.replace("-", ""),
    ]


def test_rows_nest_by_parent_in_start_order() -> None:
    """Children follow their parent one level deeper, ordered by start time."""
    rows = _names(_fixture_views()[1])

    assert rows == [
        (0, "RUN pull-kubernetes-unit"),
        (1, "queue"),
        (1, "pod pull-kubernetes-unit-0b9d7e21"),
        (2, "init/clonerefs"),
        (2, "container/test"),
    ]


def test_git_commands_sit_under_their_clone() -> None:
    """The deepest spans (git commands) are at depth 4: job > pod > clonerefs > clone > git."""
    rows = _names(_fixture_views()[0])

    assert (3, "clone kubernetes/kubernetes") in rows
    assert (4, "git fetch https://github.com/kubernetes/kubernetes.git --tags --prune") in rows


def test_last_child_flags_drive_tree_guides() -> None:
    """Each row records, per level, whether it is the last of its siblings."""
    rows = _fixture_views()[1].rows

    assert [row.last_at_level for row in rows] == [
        (),
        (False,),
        (True,),
        (True, False),
        (True, True),
    ]


def test_the_title_is_the_server_root_and_its_result() -> None:
    """The title comes from the SERVER root span; the result from cicd.pipeline.result."""
    view = _fixture_views()[0]

    assert view.title == "RUN ci-kubernetes-e2e"
    assert view.result == "failure"
    assert view.outcome is Tone.BAD


def test_the_result_falls_back_to_the_root_status() -> None:
    """Without cicd.pipeline.result the root span's status is the result."""
    root = replace(_span("1", None), status_code=StatusCode.OK)

    view = build_trace_views([root])[0]

    assert (view.result, view.outcome) == ("ok", Tone.GOOD)


def test_key_attributes_are_the_present_ones_in_order() -> None:
    """Only the key attributes a trace has are listed, in the fixed order."""
    view = _fixture_views()[1]

    assert [key for key, _ in view.key_attributes] == [
        "cicd.pipeline.name",
        "cicd.pipeline.result",
        "cicd.pipeline.run.url.full",
        "vcs.repository.name",
        "vcs.change.id",
        "prow.job.type",
        "prow.build_id",
    ]
    assert dict(view.key_attributes)["vcs.change.id"] == "128734"


def test_orphans_are_kept_under_the_orphan_section() -> None:
    """A span whose parent is not in the file is laid out as an orphan, with its children."""
    spans = [_span("1", None), _span("2", "9", 1, 2), _span("3", "2", 1.5, 2)]

    view = build_trace_views(spans)[0]

    assert [row.span.span_id[-1] for row in view.rows] == ["1"]
    assert [(row.depth, row.span.span_id[-1]) for row in view.orphan_rows] == [(0, "2"), (1, "3")]
    assert view.orphan_rows[0].orphan_parent_id == "0000000000000009"


def test_a_trace_with_only_orphans_still_shows() -> None:
    """A trace whose root is missing is titled as such and shows all its spans."""
    view = build_trace_views([_span("2", "9")])[0]

    assert view.title == "(no root span in this file)"
    assert view.span_count == 1


def test_identical_spans_received_twice_show_once() -> None:
    """Exact repeats (the same content delivered twice) are dropped."""
    spans = spans_from_sdk(fixture_spans())

    assert unique_spans(spans + spans) == spans
    assert sum(view.span_count for view in build_trace_views(spans + spans)) == len(spans)


def test_a_reused_span_id_with_other_content_shows_both() -> None:
    """Two different spans with one ID are both shown and flagged."""
    first, second = _span("2", "1", 0, 1), _span("2", "1", 0, 3)

    view = build_trace_views([_span("1", None, 0, 3), first, second])[0]

    assert view.span_count == 3
    assert [row.duplicate_id for row in view.rows] == [False, True, True]


def test_a_parent_cycle_is_shown_not_dropped() -> None:
    """Spans that are each other's parents (a hostile file) all show up as orphans."""
    spans = [_span("1", None), _span("2", "3"), _span("3", "2")]

    view = build_trace_views(spans)[0]

    assert sorted(row.span.span_id[-1] for row in view.orphan_rows) == ["2", "3"]


def test_fraction_places_times_within_the_trace() -> None:
    """Times map to 0..1 across the trace's range, clamped outside it."""
    view = build_trace_views([_span("1", None, 10, 20)])[0]

    assert view.fraction(15 * SECOND) == 0.5
    assert view.fraction(0) == 0.0
    assert view.fraction(99 * SECOND) == 1.0


def test_visible_text_escapes_terminal_and_bidi_controls() -> None:
    """ANSI escapes, bidi overrides and newlines become visible escapes."""
    assert visible_text("a\x1b[2Jb\u202ec\nd") == "a\\x1b[2Jb\\u202ec\\nd"
    assert visible_text("keep\nline", keep="\n") == "keep\nline"
    assert visible_text("plain — ünïcode ✓") == "plain — ünïcode ✓"


_ids = st.integers(min_value=1, max_value=12).map(str)


@given(st.lists(st.tuples(_ids, st.one_of(st.none(), _ids)), max_size=30))
def test_every_span_shows_exactly_once(pairs: list[tuple[str, str | None]]) -> None:
    """Whatever the parent links (missing, cyclic, repeated IDs), each span is one row."""
    spans = unique_spans(
        _span(span_id, parent, start_s=index) for index, (span_id, parent) in enumerate(pairs)
    )

    shown = [row.span for view in build_trace_views(spans) for row in view.rows + view.orphan_rows]

    assert sorted(shown, key=id) == sorted(spans, key=id)


def test_an_unset_root_has_no_result() -> None:
    """A root with neither a result attribute nor a status shows no result badge."""
    view = build_trace_views([_span("1", None)])[0]

    assert (view.result, view.outcome) == ("", Tone.NEUTRAL)
