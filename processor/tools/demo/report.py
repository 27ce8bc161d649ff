"""What the demo prints: step lines while it runs, then the waterfalls, a summary and next steps.

Everything here only formats; the numbers come from the run. All of it goes through one rich
``Console``, so piped output is plain text and an ASCII-only terminal gets ASCII marks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.sdk.metrics.export import HistogramDataPoint, MetricsData, NumberDataPoint
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from processor.export.otlp_json import DecodedSpan
from processor.synthetic import Scenario
from processor.tools.demo.fleet import SCENARIO_NOTES
from processor.tools.demo.sinks import EndpointDelivery
from processor.tools.show import render_waterfall
from processor.tools.waterfall import TraceView, build_trace_views, format_duration

JAEGER_IMAGE = "cr.jaegertracing.io/jaegertracing/jaeger:2.15.0"
JAEGER_UI = "http://localhost:16686"
_RESULT_STYLES = {"success": "green", "failure": "red", "error": "red", "cancellation": "yellow"}


@dataclass(frozen=True)
class _Glyphs:
    done: str
    warn: str
    fail: str
    arrow: str
    dot: str


_UNICODE = _Glyphs("✓", "!", "✗", "→", "·")
_ASCII = _Glyphs("+", "!", "x", "->", "-")


def _glyphs(console: Console) -> _Glyphs:
    return _ASCII if console.options.ascii_only else _UNICODE


@dataclass
class Steps:
    """Prints one line per finished step, with how long it took."""

    console: Console
    clock: Callable[[], float] = time.monotonic
    _last: float = field(init=False)

    def __post_init__(self) -> None:
        """Start timing the first step now."""
        self._last = self.clock()

    def done(self, message: str) -> None:
        """Report a finished step."""
        now = self.clock()
        line = Text.assemble((f" {_glyphs(self.console).done} ", "bold green"), message)
        line.append(f"  {seconds(now - self._last)}", style="dim")
        self._last = now
        self.console.print(line)

    def warn(self, message: str) -> None:
        """Report something the user should know that does not stop the demo."""
        mark = _glyphs(self.console).warn
        self.console.print(Text.assemble((f" {mark} ", "bold yellow"), (message, "yellow")))


def seconds(value: float) -> str:
    """Format a short elapsed time: ``1.3s``."""
    return f"{value:.1f}s"


def header(console: Console, n_jobs: int, seed: int) -> Text:
    """Return the first line: what is about to happen."""
    arrow = f" {_glyphs(console).arrow} "
    line = Text("prowtrace demo", style="bold")
    line.append(f": {n_jobs} Prow jobs" + arrow + arrow.join(("Pub/Sub", "pull worker", "traces")))
    line.append(f"  (seed {seed})", style="dim")
    return line


def print_waterfalls(
    console: Console, spans: Sequence[DecodedSpan], scenarios: Mapping[str, Scenario]
) -> list[TraceView]:
    """Print each trace's waterfall under a rule saying what the job went through."""
    views = build_trace_views(spans)
    by_trace: dict[str, list[DecodedSpan]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    dot = _glyphs(console).dot
    for index, view in enumerate(views, start=1):
        console.print()
        scenario = scenarios.get(view.trace_id)
        title = f"Job {index} of {len(views)}"
        if scenario is not None:
            title += f" {dot} {SCENARIO_NOTES[scenario]}"
        console.rule(Text(title, style="bold cyan"), align="left", style="cyan")
        render_waterfall(by_trace[view.trace_id], console)
    return views


def print_summary(
    console: Console, views: Sequence[TraceView], scenarios: Mapping[str, Scenario]
) -> None:
    """Print one row per job; the scenario column only if the terminal is wide enough for it."""
    console.print()
    console.rule(Text("Summary", style="bold cyan"), align="left", style="cyan")
    table = summary_table(views, scenarios, with_scenario=True)
    unlimited = console.options.update_width(1_000_000)  # measure without the terminal's limit
    if Measurement.get(console, unlimited, table).maximum > console.width:
        table = summary_table(views, scenarios, with_scenario=False)
    console.print(table)


def summary_table(
    views: Sequence[TraceView], scenarios: Mapping[str, Scenario], *, with_scenario: bool
) -> Table:
    """One row per job, in waterfall order: name, type, result, duration, spans, scenario."""
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold underline")
    table.add_column("#", justify="right", style="dim", no_wrap=True)
    table.add_column("job", no_wrap=True, overflow="ellipsis")
    table.add_column("type", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("spans", justify="right", no_wrap=True)
    if with_scenario:
        table.add_column("scenario", style="dim", no_wrap=True, overflow="ellipsis")
    for index, view in enumerate(views, start=1):
        attributes = dict(view.key_attributes)
        scenario = scenarios.get(view.trace_id)
        cells: list[str | Text] = [
            str(index),
            attributes.get("cicd.pipeline.name", view.title),
            attributes.get("prow.job.type", ""),
            Text(view.result, style=_RESULT_STYLES.get(view.result, "")),
            format_duration(view.duration_ns),
            str(view.span_count),
        ]
        if with_scenario:
            cells.append(scenario.value if scenario is not None else "")
        table.add_row(*cells)
    return table


@dataclass(frozen=True)
class MetricRow:
    """One series of the metrics summary: what it counts, how many, and the seconds if timed."""

    metric: str
    labels: str
    count: int
    seconds: float | None = None


_METRIC_LABELS = (
    "cicd.pipeline.run.state",
    "cicd.pipeline.result",
    "error.type",
    "cicd.system.component",
)
"""What the summary shows, in this order; the job name is summed over (the table stays narrow)."""


def metric_rows(data: MetricsData | None) -> list[MetricRow]:
    """Flatten what the in-memory reader collected into one row per metric and attribute set."""
    rows: list[MetricRow] = []
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    attributes = point.attributes or {}
                    labels = " ".join(
                        str(attributes[key]) for key in _METRIC_LABELS if key in attributes
                    )
                    if isinstance(point, HistogramDataPoint):
                        rows.append(MetricRow(metric.name, labels, point.count, point.sum))
                    elif isinstance(point, NumberDataPoint):
                        rows.append(MetricRow(metric.name, labels, int(point.value)))
    merged: dict[tuple[str, str], MetricRow] = {}
    for row in rows:  # summed over job names: the demo's fleet has many, each run a few times
        old = merged.get((row.metric, row.labels))
        if old is not None:
            seconds = None if row.seconds is None else (old.seconds or 0.0) + row.seconds
            row = MetricRow(row.metric, row.labels, old.count + row.count, seconds)  # noqa: PLW2901 - merging into the same name reads best
        merged[(row.metric, row.labels)] = row
    return sorted(merged.values(), key=lambda row: (row.metric, row.labels))


def print_metrics(console: Console, data: MetricsData | None) -> None:
    """Print the CI/CD metrics the worker recorded, summed over job names."""
    console.print()
    console.rule(Text("CI/CD metrics", style="bold cyan"), align="left", style="cyan")
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold underline")
    table.add_column("metric", no_wrap=True)
    table.add_column("state result error", overflow="fold")
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("mean", justify="right", no_wrap=True)
    for row in metric_rows(data):
        timed = row.seconds is not None and row.count
        mean = format_duration(int((row.seconds or 0.0) / row.count * 1e9)) if timed else ""
        table.add_row(row.metric.removeprefix("cicd."), row.labels, str(row.count), mean)
    console.print(table)


@dataclass(frozen=True)
class Closing:
    """What the closing lines need to say."""

    jobs: int
    spans: int
    elapsed: float
    output: Path
    command: str
    """How the user runs prowtrace (``prowtrace`` or ``uv run prowtrace``)."""
    endpoint: str = ""
    delivery: EndpointDelivery | None = None
    skipped_endpoint: str = ""
    """Why nothing was sent to the endpoint ('' if something was, or none was set)."""
    kept: Path | None = None


def print_closing(console: Console, closing: Closing) -> None:
    """Print the summary and the next steps; commands soft-wrap so they copy and paste whole."""
    for line in closing_lines(closing):
        console.print(line, soft_wrap=True)


def closing_lines(closing: Closing) -> list[Text]:
    """Return the summary and the next steps, one ``Text`` per line."""
    show = f"{closing.command} show {closing.output}"
    lines = [
        Text.assemble(
            (f"{closing.jobs} jobs traced, {closing.spans} spans", "bold"),
            f", every trace complete, in {seconds(closing.elapsed)}.",
        ),
        Text.assemble("Traces saved to ", (str(closing.output), "bold"), " (OTLP JSON). Next:"),
        _command(show, "draw them again"),
        _command(f"{show} --html out.html", "one page to open in a browser"),
    ]
    lines.extend(_endpoint_lines(closing))
    if closing.kept is not None:
        lines.append(
            Text.assemble(
                "Kept the bucket mirror and the worker's log in ", (str(closing.kept), "bold")
            )
        )
    return lines


def _command(command: str, why: str = "") -> Text:
    line = Text.assemble("  ", (command, "bold cyan"))
    if why:
        line.append(f"   # {why}", style="dim")
    return line


def _endpoint_lines(closing: Closing) -> list[Text]:
    delivery = closing.delivery
    if closing.endpoint and delivery is not None and delivery.ok:
        return [
            Text.assemble(
                "Sent every span to ",
                (closing.endpoint, "bold"),
                ': look for the service "prow" in your tracing UI (the jobs ran in the last hour).',
            )
        ]
    lines: list[Text] = []
    if closing.endpoint and delivery is not None:
        total = delivery.sent + delivery.failed + delivery.unsent
        text = (
            f"Only {delivery.sent} of {total} spans reached {closing.endpoint} "
            f"({delivery.failed} refused, {delivery.unsent} not sent in time)."
        )
        if delivery.last_error:
            text += f" The exporter said: {delivery.last_error}"
        lines.append(Text(text, style="yellow"))
    elif closing.endpoint:
        lines.append(
            Text(f"Nothing was sent to {closing.endpoint}: {closing.skipped_endpoint}.", "yellow")
        )
    lines += [
        Text("To see them in Jaeger (or any OTLP backend, such as Grafana Tempo):"),
        _command(f"docker run --rm -d --name jaeger -p 16686:16686 -p 4318:4318 {JAEGER_IMAGE}"),
        _command(f"OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 {closing.command} demo"),
        Text.assemble("  then open ", (JAEGER_UI, "bold"), ' and pick the service "prow".'),
    ]
    return lines


def replay_offer(
    reason: str, messages: Path, mirror: Path, output: Path, command: str
) -> list[Text]:
    """Say the emulator is missing and how to trace the same jobs with ``replay`` instead."""
    replay = (
        f"OTEL_TRACES_EXPORTER=none {command} replay --artifacts-mirror {mirror} "
        f"--otlp-json {output} {messages}"
    )
    return [
        Text(
            f"Google's Pub/Sub emulator {reason}: the demo runs the real pull worker on it, "
            "so it stops here.",
            style="yellow",
        ),
        Text(
            "Install it (Debian: apt-get install google-cloud-cli-pubsub-emulator "
            "default-jre-headless), or trace the same jobs without Pub/Sub:"
        ),
        _command(replay, "crier's messages through the same pipeline"),
        _command(f"{command} show {output}", "draw the waterfalls"),
    ]


def command_prefix(env: Mapping[str, str]) -> str:
    """Return how to run prowtrace again: through ``uv run`` if that is how it was started."""
    return "uv run prowtrace" if env.get("UV") else "prowtrace"
