"""The composition root: signal handling and the wiring every command shares."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext

from processor.app import service_exporter, stop_on_signals
from processor.config import ConfigError


def test_stop_on_signals_sets_stop_then_lets_a_second_ctrl_c_through() -> None:
    """The first SIGINT asks to stop; the second raises KeyboardInterrupt; handlers come back."""
    before = signal.getsignal(signal.SIGINT)
    stop = threading.Event()
    with stop_on_signals(stop.set):
        signal.raise_signal(signal.SIGINT)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_sigterm_also_stops() -> None:
    """SIGTERM (a scheduler's shutdown) stops like Ctrl-C."""
    stop = threading.Event()
    with stop_on_signals(stop.set):
        signal.raise_signal(signal.SIGTERM)
    assert stop.is_set()


class _SlowRecorder(SpanExporter):
    """Records each export call's size; slow enough that concurrent callers queue behind it."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.sizes.append(len(spans))
        time.sleep(0.02)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


def _export_concurrently(exporter: SpanExporter, callers: int) -> None:
    span = ReadableSpan(name="s", context=SpanContext(1, 2, is_remote=False))
    threads = [threading.Thread(target=exporter.export, args=([span],)) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_the_service_exporter_shares_export_calls_between_concurrent_callers() -> None:
    """By default (group commit on), callers that queue behind an export go out together."""
    inner = _SlowRecorder()
    exporter = service_exporter({}, inner=inner)
    _export_concurrently(exporter, 16)
    exporter.shutdown()

    assert sum(inner.sizes) == 16
    assert max(inner.sizes) > 1


def test_group_commit_off_gives_one_export_call_per_caller() -> None:
    """PROWTRACE_GROUP_COMMIT=off: every caller's spans go out in a call of their own."""
    inner = _SlowRecorder()
    exporter = service_exporter({"PROWTRACE_GROUP_COMMIT": "off"}, inner=inner)
    _export_concurrently(exporter, 16)
    exporter.shutdown()

    assert inner.sizes == [1] * 16


def test_a_bad_group_commit_value_is_a_configuration_error() -> None:
    """Anything but on or off is refused, naming the variable."""
    with pytest.raises(ConfigError, match="PROWTRACE_GROUP_COMMIT"):
        service_exporter({"PROWTRACE_GROUP_COMMIT": "maybe"}, inner=_SlowRecorder())
