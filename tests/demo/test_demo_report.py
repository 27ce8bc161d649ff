"""What the demo prints: headings, the summary table, the closing lines and their hints."""

from __future__ import annotations

import io
from pathlib import Path

from opentelemetry.trace import SpanKind, StatusCode
from rich.console import Console

from processor.export.otlp_json import DecodedSpan
from processor.synthetic import Scenario
from processor.tools.demo.report import (
    Closing,
    closing_lines,
    command_prefix,
    header,
    print_summary,
    print_waterfalls,
    replay_offer,
)
from processor.tools.demo.sinks import EndpointDelivery
from processor.tools.waterfall import build_trace_views

TRACE = "0123456789abcdef0123456789abcdef"


def _root(trace_id: str = TRACE, name: str = "pull-widget-unit") -> DecodedSpan:
    return DecodedSpan(
        trace_id=trace_id,
        span_id="0123456789abcdef",
        parent_span_id=None,
        name=f"RUN {name}",
        kind=SpanKind.SERVER,
        start_ns=0,
        end_ns=90 * 10**9,
        attributes={
            "cicd.pipeline.name": name,
            "cicd.pipeline.result": "failure",
            "prow.job.type": "presubmit",
        },
        status_code=StatusCode.ERROR,
    )


def _console(width: int = 120) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, color_system=None), out


def _text(closing: Closing) -> str:
    return "\n".join(line.plain for line in closing_lines(closing))


CLOSING = Closing(
    jobs=12, spans=231, elapsed=2.5, output=Path("t.jsonl"), command="uv run prowtrace"
)


def test_each_waterfall_gets_a_heading_with_its_scenario() -> None:
    """The rule above a trace numbers it and says what the job went through."""
    console, out = _console()
    print_waterfalls(console, [_root()], {TRACE: Scenario.CLONE_FAILURE})

    assert "Job 1 of 1 · clonerefs cannot fetch a private repository" in out.getvalue()
    assert f"trace {TRACE}" in out.getvalue()


def test_the_summary_lists_each_job_with_its_result() -> None:
    """One row per job: name, type, result, duration, spans, scenario."""
    console, out = _console()
    spans = [_root(), _root("f" * 32, "post-infra-deploy-staging")]
    print_summary(console, build_trace_views(spans), {TRACE: Scenario.CLONE_FAILURE})
    rows = [line.split() for line in out.getvalue().splitlines() if "presubmit" in line]

    assert ["1", "pull-widget-unit", "presubmit", "failure", "1m30s", "1", "clone-failure"] in rows
    assert any("post-infra-deploy-staging" in row for row in rows)


def test_a_narrow_terminal_drops_the_scenario_column_rather_than_squeeze() -> None:
    """At 80 columns the job names stay whole and the scenario column goes."""
    console, out = _console(width=80)
    long_name = "periodic-widget-nightly-e2e"
    print_summary(
        console, build_trace_views([_root(name=long_name)]), {TRACE: Scenario.ABORTED_WHILE_PENDING}
    )

    assert long_name in out.getvalue()
    assert "aborted-while" not in out.getvalue()


def test_the_header_names_the_seed() -> None:
    """The first line says how many jobs and which seed replays them."""
    console, _ = _console()

    assert "12 Prow jobs" in header(console, 12, 42).plain
    assert "(seed 42)" in header(console, 12, 42).plain


def test_an_ascii_terminal_gets_ascii_arrows() -> None:
    """No arrow glyphs where the terminal cannot show them."""
    ascii_file = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    console = Console(file=ascii_file, width=100, color_system=None)

    assert " -> " in header(console, 12, 1).plain


def test_the_closing_lines_give_the_counts_file_and_commands() -> None:
    """Counts, time, the file, the show commands with the user's prefix, and the Jaeger recipe."""
    text = _text(CLOSING)

    assert "12 jobs traced, 231 spans, every trace complete, in 2.5s." in text
    assert "uv run prowtrace show t.jsonl --html out.html" in text
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 uv run prowtrace demo" in text
    assert "docker run" in text


def test_a_successful_endpoint_replaces_the_jaeger_recipe() -> None:
    """Spans delivered: say where to look instead of how to start Jaeger."""
    closing = Closing(
        **{**CLOSING.__dict__, "endpoint": "http://j:4318", "delivery": EndpointDelivery(240, 0, 0)}
    )
    text = _text(closing)

    assert 'Sent every span to http://j:4318: look for the service "prow"' in text
    assert "docker run" not in text


def test_a_failed_endpoint_says_how_much_arrived_and_why() -> None:
    """Refused spans: the counts and the exporter's own complaint."""
    delivery = EndpointDelivery(
        sent=10, failed=200, unsent=30, last_error="code: 404, reason: Not Found"
    )
    closing = Closing(**{**CLOSING.__dict__, "endpoint": "http://j:4318", "delivery": delivery})

    assert (
        "Only 10 of 240 spans reached http://j:4318 (200 refused, 30 not sent in time). "
        "The exporter said: code: 404, reason: Not Found"
    ) in _text(closing)


def test_a_skipped_endpoint_says_why() -> None:
    """Nothing listening: the reason is repeated at the end."""
    closing = Closing(
        **{**CLOSING.__dict__, "endpoint": "http://j:4318", "skipped_endpoint": "nothing there"}
    )

    assert "Nothing was sent to http://j:4318: nothing there." in _text(closing)


def test_kept_files_are_pointed_to() -> None:
    """--keep: the closing lines give the directory."""
    closing = Closing(**{**CLOSING.__dict__, "kept": Path("kept/prowtrace-demo-x")})

    assert "kept/prowtrace-demo-x" in _text(closing)


def test_the_command_prefix_follows_how_prowtrace_was_started() -> None:
    """Under ``uv run`` (UV is set) the hints say ``uv run prowtrace``."""
    assert command_prefix({"UV": "/usr/bin/uv"}) == "uv run prowtrace"
    assert command_prefix({}) == "prowtrace"


def test_without_the_emulator_the_replay_and_show_commands_are_offered() -> None:
    """The offer says why it stopped, how to install it, and the two commands to paste."""
    lines = replay_offer(
        "is not installed (Debian package x)",
        Path("/t/messages.jsonl"),
        Path("/t/bucket-mirror"),
        Path("out.jsonl"),
        "uv run prowtrace",
    )
    text = "\n".join(line.plain for line in lines)

    assert "Google's Pub/Sub emulator is not installed (Debian package x)" in text
    assert "apt-get install google-cloud-cli-pubsub-emulator" in text
    assert (
        "OTEL_TRACES_EXPORTER=none uv run prowtrace replay --artifacts-mirror /t/bucket-mirror "
        "--otlp-json out.jsonl /t/messages.jsonl"
    ) in text
    assert "uv run prowtrace show out.jsonl" in text
