"""A self-contained static HTML page with one waterfall per trace.

Everything is inline (CSS, a small script); the page fetches nothing: its Content-Security-Policy
forbids every network load and allows only the one script whose hash it carries, so even content
that escaped escaping could neither load nor run anything. All text from spans is HTML-escaped.
Span details (IDs, status, attributes, events, links, resource) open on click, with native
``<details>`` elements, so the page works with scripts disabled too.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from opentelemetry.trace import StatusCode

from processor.export.otlp_json import AttributeValue, DecodedSpan
from processor.tools.waterfall import (
    Row,
    Tone,
    TraceView,
    attribute_text,
    build_trace_views,
    format_duration,
    status_label,
    status_outcome,
    visible_text,
)

_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)

_CSS = """
:root { color-scheme: light dark; --fg: #1d2330; --muted: #667085; --bg: #fff;
  --panel: #f6f7f9; --line: #e3e6eb; --good: #23955a; --bad: #d23c3c; --warning: #c98a12;
  --neutral: #3f76d1; --hover: #eef3fb; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ef; --muted: #98a2b3;
  --bg: #14171c; --panel: #1c2027; --line: #2c323c; --hover: #1f2937; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
code, .dur, .ticks, td.when { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas,
  monospace; font-size: 12px; }
header.page { position: sticky; top: 0; z-index: 2; display: flex; flex-wrap: wrap; gap: .5rem 1rem;
  align-items: center; padding: .6rem 1rem; background: var(--panel);
  border-bottom: 1px solid var(--line); }
header.page h1 { font-size: 16px; margin: 0; }
header.page .summary { color: var(--muted); }
header.page .tools { margin-left: auto; display: flex; gap: .4rem; }
input[type=search] { min-width: 16rem; padding: .25rem .5rem; border: 1px solid var(--line);
  border-radius: 4px; background: var(--bg); color: var(--fg); }
button { padding: .25rem .6rem; border: 1px solid var(--line); border-radius: 4px;
  background: var(--bg); color: var(--fg); cursor: pointer; }
main { padding: 0 1rem 2rem; }
section.trace { margin: 1.25rem 0 2rem; }
.trace-head h2 { font-size: 18px; margin: 0 0 .2rem; display: flex; flex-wrap: wrap;
  align-items: center; gap: .6rem; overflow-wrap: anywhere; }
.badge { font-size: 12px; font-weight: 700; letter-spacing: .04em; padding: .1rem .45rem;
  border-radius: 3px; color: #fff; text-transform: uppercase; }
.meta { margin: 0 0 .5rem; color: var(--muted); }
dl.keys { display: grid; grid-template-columns: max-content 1fr; gap: .05rem .8rem;
  margin: 0 0 .8rem; font-size: 13px; }
dl.keys dt { color: var(--muted); }
dl.keys dd { margin: 0; overflow-wrap: anywhere; }
.waterfall { border: 1px solid var(--line); border-radius: 6px; }
.axis, summary.row { display: grid; grid-template-columns: minmax(14rem, 34%) 1fr 5.5rem;
  gap: .6rem; align-items: center; padding: 0 .6rem; }
.axis { color: var(--muted); border-bottom: 1px solid var(--line); background: var(--panel);
  height: 1.7rem; border-radius: 6px 6px 0 0; }
.axis .dur { text-align: right; }
.ticks { position: relative; height: 100%; }
.ticks span { position: absolute; top: .35rem; transform: translateX(-50%); white-space: nowrap; }
.ticks span:first-child { transform: none; }
.ticks span:last-child { transform: translateX(-100%); }
details.span { border-bottom: 1px solid var(--line); }
details.span:last-child { border-bottom: 0; }
summary.row { list-style: none; cursor: pointer; min-height: 1.6rem; }
summary.row::-webkit-details-marker { display: none; }
summary.row:hover, summary.row:focus-visible { background: var(--hover); outline: none; }
.name { display: flex; align-items: center; min-width: 0;
  padding-left: calc(min(var(--depth, 0), 16) * 1.1rem); }
.name .label { flex: 0 0 auto; max-width: calc(100% - 1rem); overflow: hidden; white-space: nowrap;
  text-overflow: ellipsis; }
.caret { flex: none; width: .9rem; color: var(--muted); transition: transform .1s; }
details[open] > summary .caret { transform: rotate(90deg); }
.st-bad .label { color: var(--bad); font-weight: 600; }
.track { position: relative; height: 1rem;
  background: linear-gradient(to right, var(--line) 1px, transparent 1px) 0 0 / 25% 100%; }
.bar { position: absolute; top: .15rem; height: .7rem; min-width: 2px; border-radius: 2px;
  background: var(--neutral); }
.st-good .bar { background: var(--good); }
.st-bad .bar { background: var(--bad); }
.ev { position: absolute; top: 0; width: 2px; height: 1rem; background: var(--fg);
  opacity: .55; }
.dur { text-align: right; color: var(--muted); }
.info { padding: .5rem 1rem .8rem calc(1.5rem + min(var(--depth, 0), 16) * 1.1rem);
  background: var(--panel); border-top: 1px dashed var(--line); }
.info h4 { margin: .6rem 0 .2rem; font-size: 13px; }
.info table { border-collapse: collapse; width: 100%; }
.info td, .info th { text-align: left; vertical-align: top; padding: .1rem .6rem .1rem 0;
  border-bottom: 1px solid var(--line); }
.info td:last-child { width: 100%; white-space: pre-wrap; overflow-wrap: anywhere; }
.info th { color: var(--muted); font-weight: 500; white-space: nowrap; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .8rem; margin: 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; white-space: pre-wrap; }
.orphans { padding: .3rem .6rem; color: var(--warning); font-weight: 600;
  border-bottom: 1px solid var(--line); background: var(--panel); }
.msg { color: var(--bad); font-size: 12px; margin-left: .6rem; overflow: hidden;
  white-space: nowrap; text-overflow: ellipsis; flex: 1 1 0; min-width: 0; }
.note { color: var(--warning); font-size: 12px; margin-left: .5rem; white-space: nowrap; }
.good { background: var(--good); } .bad { background: var(--bad); }
.warning { background: var(--warning); } .neutral { background: var(--neutral); }
.empty { color: var(--muted); padding: 2rem 0; }
"""

# Filtering and expand/collapse; the page is fully usable without it.
_SCRIPT = """
(function () {
  "use strict";
  var spans = Array.prototype.slice.call(document.querySelectorAll("details.span"));
  var filter = document.getElementById("filter");
  filter.addEventListener("input", function () {
    var wanted = filter.value.trim().toLowerCase();
    spans.forEach(function (span) {
      span.hidden = wanted !== "" && span.getAttribute("data-search").indexOf(wanted) < 0;
    });
  });
  function openAll(open) {
    spans.forEach(function (span) { span.open = open; });
  }
  document.getElementById("expand").addEventListener("click", function () { openAll(true); });
  document.getElementById("collapse").addEventListener("click", function () { openAll(false); });
})();
"""

_OUTCOME_CLASSES = {
    Tone.GOOD: "good",
    Tone.BAD: "bad",
    Tone.WARNING: "warning",
    Tone.NEUTRAL: "neutral",
}


def _e(text: str) -> str:
    """Escape for HTML text and quoted attribute values, with unsafe characters made visible."""
    return html.escape(visible_text(text, keep="\n\t"), quote=True)


def content_security_policy() -> str:
    """Return the page's policy: no loads of any kind, inline styles, only our script."""
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def render_html(spans: Iterable[DecodedSpan], *, title: str = "prowtrace traces") -> str:
    """Return a self-contained HTML page showing every span, one waterfall per trace."""
    views = build_trace_views(spans)
    span_total = sum(view.span_count for view in views)
    sections = "\n".join(_trace_section(view) for view in views)
    if not views:
        sections = '<p class="empty">No spans in this file.</p>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(content_security_policy())}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header class="page">
<h1>{_e(title)}</h1>
<span class="summary">{len(views)} traces · {span_total} spans · click a span for details</span>
<span class="tools">
<input type="search" id="filter" placeholder="Filter spans by name or ID" aria-label="Filter spans">
<button type="button" id="expand">Expand all</button>
<button type="button" id="collapse">Collapse all</button>
</span>
</header>
<main>
{sections}
</main>
<script>{_SCRIPT}</script>
</body>
</html>
"""


def _trace_section(view: TraceView) -> str:
    outcome = _OUTCOME_CLASSES[view.outcome]
    badge = f'<span class="badge {outcome}">{_e(view.result)}</span>' if view.result else ""
    keys = "".join(
        f"<dt>{_e(key)}</dt><dd>{_value_html(value)}</dd>" for key, value in view.key_attributes
    )
    rows = "\n".join(_span_row(view, row) for row in view.rows)
    orphans = ""
    if view.orphan_rows:
        orphans = (
            '\n<div class="orphans">⚠ Orphaned spans: their parent span is not in this file</div>\n'
            + "\n".join(_span_row(view, row, orphan=True) for row in view.orphan_rows)
        )
    ticks = "".join(
        f'<span style="left:{tick * 100:.0f}%">{format_duration(round(view.duration_ns * tick))}'
        "</span>"
        for tick in _TICKS
    )
    return f"""<section class="trace" data-trace-id="{_e(view.trace_id)}">
<header class="trace-head">
<h2><span class="title">{_e(view.title)}</span>{badge}</h2>
<p class="meta">trace <code>{_e(view.trace_id)}</code> · {format_duration(view.duration_ns)} ·
{view.span_count} spans · started {_timestamp(view.start_ns)}</p>
<dl class="keys">{keys}</dl>
</header>
<div class="waterfall">
<div class="axis"><span>span</span><span class="ticks">{ticks}</span>
<span class="dur">duration</span></div>
{rows}{orphans}
</div>
</section>"""


def _span_row(view: TraceView, row: Row, *, orphan: bool = False) -> str:
    span = row.span
    depth = row.depth + (1 if orphan else 0)
    status = _OUTCOME_CLASSES[status_outcome(span.status_code)]
    left = view.fraction(span.start_ns) * 100
    width = max(view.fraction(span.end_ns) * 100 - left, 0.0)
    duration = format_duration(span.end_ns - span.start_ns)
    offset = format_duration(span.start_ns - view.start_ns)
    events = "".join(
        f'<span class="ev" style="left:{view.fraction(event.time_ns) * 100:.4f}%"'
        f' title="{_e(event.name)}"></span>'
        for event in span.events
    )
    notes = ""
    if span.status_code is StatusCode.ERROR and span.status_message:
        notes += f'<span class="msg">{_e(span.status_message)}</span>'
    if row.orphan_parent_id is not None:
        notes += f'<span class="note">parent {_e(row.orphan_parent_id)} missing</span>'
    if row.duplicate_id:
        notes += '<span class="note">span ID repeated with other content</span>'
    hover = f"{span.name} · {duration} · starts at +{offset} · {status_label(span.status_code)}"
    if span.status_message:
        hover += f": {span.status_message}"
    search = f"{span.name} {span.span_id}".lower()
    return (
        f'<details class="span st-{status}" data-span-id="{_e(span.span_id)}"'
        f' data-search="{_e(search)}" style="--depth:{depth}">'
        f'<summary class="row" title="{_e(hover)}">'
        f'<span class="name"><span class="caret">▸</span>'
        f'<span class="label">{_e(span.name)}</span>{notes}</span>'
        f'<span class="track"><span class="bar" style="left:{left:.4f}%;width:{width:.4f}%">'
        f"</span>{events}</span>"
        f'<span class="dur">{duration}</span></summary>'
        f'<div class="info">{_span_details(view, span)}</div></details>'
    )


def _span_details(view: TraceView, span: DecodedSpan) -> str:
    status = status_label(span.status_code)
    if span.status_message:
        status += f": {span.status_message}"
    facts = (
        ("name", span.name),
        ("span ID", span.span_id),
        ("parent span ID", span.parent_span_id or "(root)"),
        ("kind", span.kind.name),
        ("status", status),
        (
            "start",
            f"{_timestamp(span.start_ns)} (+{format_duration(span.start_ns - view.start_ns)})",
        ),
        ("duration", format_duration(span.end_ns - span.start_ns)),
    )
    parts = [
        '<dl class="facts">'
        + "".join(f"<dt>{_e(key)}</dt><dd>{_e(value)}</dd>" for key, value in facts)
        + "</dl>"
    ]
    if span.attributes:
        parts.append("<h4>Attributes</h4>" + _attribute_table(span.attributes))
    if span.events:
        rows = "".join(
            f'<tr><td class="when">+{format_duration(event.time_ns - span.start_ns)}</td>'
            f"<th>{_e(event.name)}</th><td>{_inline_attributes(event.attributes)}</td></tr>"
            for event in span.events
        )
        parts.append(f"<h4>Events</h4><table>{rows}</table>")
    if span.links:
        rows = "".join(
            f"<tr><th>trace <code>{_e(link.trace_id)}</code> span <code>{_e(link.span_id)}</code>"
            f"</th><td>{_inline_attributes(link.attributes)}</td></tr>"
            for link in span.links
        )
        parts.append(f"<h4>Links</h4><table>{rows}</table>")
    if span.resource_attributes:
        parts.append("<h4>Resource</h4>" + _attribute_table(span.resource_attributes))
    return "".join(parts)


def _attribute_table(attributes: Mapping[str, AttributeValue]) -> str:
    rows = "".join(
        f"<tr><th>{_e(key)}</th><td>{_e(attribute_text(value))}</td></tr>"
        for key, value in attributes.items()
    )
    return f"<table>{rows}</table>"


def _inline_attributes(attributes: Mapping[str, AttributeValue]) -> str:
    return _e(", ".join(f"{key}={attribute_text(value)}" for key, value in attributes.items()))


def _value_html(value: str) -> str:
    """Escape a key attribute's value; http(s) URLs become links (nothing loads until clicked)."""
    if value.lower().startswith(("https://", "http://")) and value.isprintable():
        return f'<a href="{_e(value)}" rel="noopener noreferrer">{_e(value)}</a>'
    return _e(value)


def _timestamp(time_ns: int) -> str:
    try:
        moment = datetime.fromtimestamp(time_ns / 1_000_000_000, tz=UTC)
    except (OverflowError, ValueError, OSError):  # a hostile file can hold any 64-bit time
        return f"{time_ns} ns since the epoch"
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
