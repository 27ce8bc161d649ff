"""Realistic Prow job traces, built with the OpenTelemetry SDK, for the show and OTLP JSON tests.

Two jobs: a failing periodic ``ci-kubernetes-e2e`` (queue, pod with pod events, init containers,
clonerefs with one span per git command, a failing test container) and a passing presubmit.
IDs follow prowtrace's scheme: trace ID = ProwJob UID, root span ID = its first 8 bytes, other
span IDs = 8 bytes of SHA-256 over the trace ID and the span's path.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import Attributes

E2E_UID = "6c0f3b52-9a4e-4d1f-8b27-3e5a90d1c4f7"
UNIT_UID = "0b9d7e21-55c3-4a8e-9f10-c2d4e6a8b0f1"
SECOND = 1_000_000_000
MS = 1_000_000
E2E_START = 1_761_991_200 * SECOND  # 2025-11-01T10:00:00Z
UNIT_START = E2E_START + 95 * SECOND

RESOURCE = Resource.create(
    {"service.name": "prowtrace", "service.version": "0.1.0", "cicd.system": "prow"}
)
SCOPE = InstrumentationScope("prowtrace", "0.1.0")


def trace_id_of(uid: str) -> int:
    """Return the trace ID prowtrace derives from a ProwJob UID."""
    return uuid.UUID(uid).int


def span_id_of(uid: str, path: str) -> int:
    """Return the span ID prowtrace derives for the span at ``path`` (the root is ``""``)."""
    trace_bytes = uuid.UUID(uid).bytes
    if not path:
        return int.from_bytes(trace_bytes[:8], "big")
    return int.from_bytes(hashlib.sha256(trace_bytes + path.encode()).digest()[:8], "big")


@dataclass
class _TraceBuilder:
    uid: str
    start_ns: int
    spans: list[ReadableSpan] = field(default_factory=list)

    def add(  # noqa: PLR0913 - a span has this many independent parts
        self,
        path: str,
        name: str,
        start_s: float,
        end_s: float,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        status: Status | None = None,
        events: tuple[tuple[str, float, Attributes], ...] = (),
        links: tuple[Link, ...] = (),
    ) -> None:
        trace_id = trace_id_of(self.uid)
        context = SpanContext(
            trace_id, span_id_of(self.uid, path), is_remote=False, trace_flags=TraceFlags(1)
        )
        parent = None
        if path:
            parent_path = path.rpartition("/")[0]
            parent = SpanContext(
                trace_id,
                span_id_of(self.uid, parent_path),
                is_remote=False,
                trace_flags=TraceFlags(1),
            )
        self.spans.append(
            ReadableSpan(
                name=name,
                context=context,
                parent=parent,
                resource=RESOURCE,
                attributes=attributes,
                events=[
                    Event(event_name, attributes=event_attributes, timestamp=self._at(offset))
                    for event_name, offset, event_attributes in events
                ],
                links=links,
                kind=kind,
                instrumentation_scope=SCOPE,
                status=status or Status(StatusCode.UNSET),
                start_time=self._at(start_s),
                end_time=self._at(end_s),
            )
        )

    def _at(self, offset_s: float) -> int:
        return self.start_ns + round(offset_s * SECOND)


def e2e_job_spans() -> list[ReadableSpan]:
    """Return the failing periodic e2e job: 17 spans, one ERROR container, pod events."""
    job = _TraceBuilder(E2E_UID, E2E_START)
    build_id = "1984650123456789504"
    url = f"https://prow.k8s.io/view/gs/kubernetes-ci-logs/logs/ci-kubernetes-e2e/{build_id}"
    job.add(
        "",
        "RUN ci-kubernetes-e2e",
        0,
        3_725.4,
        kind=SpanKind.SERVER,
        attributes={
            "cicd.pipeline.name": "ci-kubernetes-e2e",
            "cicd.pipeline.action.name": "RUN",
            "cicd.pipeline.result": "failure",
            "cicd.pipeline.run.id": build_id,
            "cicd.pipeline.run.url.full": url,
            "error.type": "failure",
            "vcs.repository.name": "kubernetes",
            "vcs.owner.name": "kubernetes",
            "vcs.ref.head.revision": "5d1e8c2f0a9b7c6d4e3f2a1b0c9d8e7f6a5b4c3d",
            "prow.job.type": "periodic",
            "prow.build_id": build_id,
            "prow.job.id": E2E_UID,
        },
        status=Status(StatusCode.ERROR, "job failed: test container exited with code 1"),
    )
    job.add("/queue", "queue", 0, 4.2, attributes={"prow.state": "pending"})
    job.add(
        "/pod",
        "pod ci-kubernetes-e2e-6c0f3b52",
        4.2,
        3_724.9,
        attributes={"k8s.pod.name": "6c0f3b52-9a4e-4d1f-8b27", "k8s.node.name": "gke-prow-n2-7"},
        events=(
            ("Scheduled", 4.9, {"k8s.event.reason": "Scheduled"}),
            ("Pulling image gcr.io/k8s-prow/clonerefs", 5.1, None),
            ("Started container clonerefs", 6.0, None),
            ("Started container test", 41.2, None),
        ),
    )
    job.add("/pod/schedule", "pod/schedule", 4.2, 4.9)
    job.add(
        "/pod/init-clonerefs",
        "init/clonerefs",
        6.0,
        37.8,
        attributes={
            "cicd.pipeline.task.name": "clonerefs",
            "cicd.pipeline.task.run.result": "success",
        },
    )
    clone = "/pod/init-clonerefs/kubernetes"
    job.add(
        clone,
        "clone kubernetes/kubernetes",
        6.1,
        34.6,
        attributes={
            "vcs.repository.url.full": "https://github.com/kubernetes/kubernetes",
            "vcs.ref.head.name": "master",
        },
    )
    commands = (
        ("git init /home/prow/go/src/k8s.io/kubernetes", 0.012),
        ("git config user.name ci-robot", 0.004),
        ("git fetch https://github.com/kubernetes/kubernetes.git --tags --prune", 24.871),
        ("git checkout 5d1e8c2f0a9b7c6d4e3f2a1b0c9d8e7f6a5b4c3d", 3.395),
        ("git submodule update --init --recursive", 0.206),
    )
    offset = 6.1
    for index, (command, seconds) in enumerate(commands):
        job.add(f"{clone}/git-{index}", command, offset, offset + seconds)
        offset += seconds
    job.add(
        "/pod/init-clonerefs/test-infra",
        "clone kubernetes/test-infra",
        34.6,
        37.7,
        attributes={"vcs.repository.url.full": "https://github.com/kubernetes/test-infra"},
    )
    job.add("/pod/init-initupload", "init/initupload", 37.8, 39.9)
    job.add("/pod/init-place-entrypoint", "init/place-entrypoint", 40.0, 40.6)
    job.add(
        "/pod/container-test",
        "container/test",
        41.2,
        3_719.3,
        attributes={
            "cicd.pipeline.task.name": "test",
            "cicd.pipeline.task.run.result": "failure",
            "process.exit.code": 1,
            "k8s.container.name": "test",
        },
        status=Status(StatusCode.ERROR, "exit code 1 (Error)"),
        events=(("exception", 3_719.2, {"exception.message": "3 tests failed"}),),
    )
    job.add(
        "/pod/container-sidecar",
        "container/sidecar",
        41.2,
        3_724.8,
        attributes={"k8s.container.name": "sidecar"},
        status=Status(StatusCode.OK),
    )
    return job.spans


def unit_job_spans() -> list[ReadableSpan]:
    """Return a passing presubmit unit-test job with a link to an earlier run."""
    job = _TraceBuilder(UNIT_UID, UNIT_START)
    previous = SpanContext(
        trace_id_of(E2E_UID), span_id_of(E2E_UID, ""), is_remote=True, trace_flags=TraceFlags(1)
    )
    job.add(
        "",
        "RUN pull-kubernetes-unit",
        0,
        732.0,
        kind=SpanKind.SERVER,
        attributes={
            "cicd.pipeline.name": "pull-kubernetes-unit",
            "cicd.pipeline.result": "success",
            "cicd.pipeline.run.url.full": "https://prow.k8s.io/view/gs/kubernetes-ci-logs/pr-logs/pull/128734/pull-kubernetes-unit/1984650500000000000",
            "vcs.repository.name": "kubernetes",
            "vcs.change.id": "128734",
            "prow.job.type": "presubmit",
            "prow.build_id": "1984650500000000000",
        },
        status=Status(StatusCode.OK),
        links=(Link(previous, {"prow.link": "previous-run"}),),
    )
    job.add("/queue", "queue", 0, 0.85)
    job.add("/pod", "pod pull-kubernetes-unit-0b9d7e21", 0.85, 731.5)
    job.add("/pod/init-clonerefs", "init/clonerefs", 2.0, 14.3)
    job.add(
        "/pod/container-test",
        "container/test",
        15.0,
        730.9,
        attributes={"process.exit.code": 0, "tags": ("unit", "linux/amd64"), "ratio": 0.25},
        status=Status(StatusCode.OK),
    )
    return job.spans


def fixture_spans() -> list[ReadableSpan]:
    """Return both jobs' spans."""
    return e2e_job_spans() + unit_job_spans()
