"""An OTLP receiver that also records each export request's make-up and how many overlapped.

Flow control and group commit are visible only per request: how many jobs' spans one export
carried, and how many exports were in flight at once. :class:`BatchRecordingReceiver` is an
:class:`~support.otlp_receiver.OtlpReceiver` that keeps, for every stored request, the
set of trace IDs in it, and the most requests it was ever handling at the same moment (a request
counts from arrival, through any injected delay, until it is stored or refused).
"""

from __future__ import annotations

import threading

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from support.otlp_receiver import OtlpReceiver, Refusal


class BatchRecordingReceiver(OtlpReceiver):
    """:class:`OtlpReceiver` plus per-request trace sets and the peak of concurrent requests."""

    def __init__(self) -> None:
        """Create a stopped receiver; ``start()`` binds its ports."""
        super().__init__()
        self._probe_lock = threading.Lock()
        self._in_flight = 0
        self.max_concurrent_requests = 0
        self.request_traces: list[frozenset[str]] = []
        """For each stored request, in arrival order: the trace IDs of its spans."""

    def _admit(self) -> Refusal | None:
        with self._probe_lock:
            self._in_flight += 1
            self.max_concurrent_requests = max(self.max_concurrent_requests, self._in_flight)
        refusal = super()._admit()
        if refusal is not None:
            self._leave()
        return refusal

    def _store(self, request: ExportTraceServiceRequest) -> None:
        traces = frozenset(
            span.trace_id.hex()
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        )
        with self._probe_lock:
            self.request_traces.append(traces)
        super()._store(request)
        self._leave()

    def _leave(self) -> None:
        with self._probe_lock:
            self._in_flight -= 1

    def most_traces_in_one_request(self) -> int:
        """Return the largest number of distinct traces one stored request carried."""
        with self._probe_lock:
            return max((len(traces) for traces in self.request_traces), default=0)
