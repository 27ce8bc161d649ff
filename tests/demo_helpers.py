"""Shared by the demo tests: the oracle for a run, span comparison, and process inspection."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from support.oracle import SpanKey, expected_spans

from processor.export.exporters import build_resource
from processor.export.otlp_json import DecodedSpan, read_otlp_json
from processor.tools.demo.fleet import build_fleet

Content = tuple[Any, ...]


def oracle(n_jobs: int, seed: int, now: datetime, workdir: Path) -> dict[SpanKey, DecodedSpan]:
    """Return the spans a demo run with these settings must produce (an in-process run)."""
    environ = {**os.environ, "OTEL_TRACES_EXPORTER": "otlp"}
    fleet = build_fleet(n_jobs, seed, workdir, now=now)
    return expected_spans(fleet.messages, workdir, resource=build_resource(environ))


def content(span: DecodedSpan) -> Content:
    """Return what a span says, without where it came from (resource, scope)."""
    return (
        span.parent_span_id,
        span.name,
        span.start_ns,
        span.end_ns,
        span.attributes,
        span.status_code,
        span.status_message,
    )


def file_spans(path: Path) -> dict[SpanKey, Content]:
    """Read an OTLP JSON file with ``read_otlp_json``; fail if a span ID carries two contents."""
    with path.open(encoding="utf-8") as lines:
        spans = read_otlp_json(lines)
    unique: dict[SpanKey, Content] = {}
    for span in spans:
        content_of_span = content(span)
        first = unique.setdefault(span.key, content_of_span)
        assert first == content_of_span, f"span {span.span_id} written with two contents"
    return unique


def oracle_contents(expected: Mapping[SpanKey, DecodedSpan]) -> dict[SpanKey, Content]:
    """Return the oracle's spans as comparable contents."""
    return {key: content(span) for key, span in expected.items()}


def is_alive(pid: int) -> bool:
    """Tell whether a process runs (a zombie counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _processes() -> Iterable[tuple[int, int, str]]:
    """Yield (pid, parent pid, command line) of every live process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended while we looked
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            yield int(entry.name), int(fields[1]), cmdline


def java_children(parent: int) -> list[int]:
    """IDs of live java processes whose parent is ``parent``."""
    return [pid for pid, ppid, cmd in _processes() if ppid == parent and "java" in cmd]


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain ``text``."""
    return [cmd for pid, _, cmd in _processes() if text in cmd and pid != os.getpid()]
