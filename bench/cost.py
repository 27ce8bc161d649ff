"""What a million jobs cost on Google Cloud, from the CPU time per message the benchmarks measured.

List prices in USD, Tier 1 regions, read 2026-11 (free tiers left out: these are marginal costs):

- Cloud Run, https://cloud.google.com/run/pricing: request-based billing (the push service's
  setting) $0.000024 per vCPU-second, $0.0000025 per GiB-second, $0.40 per million requests;
  instance-based billing (a pull worker pool) $0.000018 per vCPU-second, $0.000002 per
  GiB-second, no request charge.
- Pub/Sub, https://cloud.google.com/pubsub/pricing: delivery $40 per TiB, at least 1,000 bytes
  per push request or pull message batch (one push request carries one message).
- Cloud Trace, https://cloud.google.com/stackdriver/pricing: $0.20 per million spans ingested
  (beyond 2.5 million a month, free).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

PRICES_READ = "2026-11"
PRICE_SOURCES = {
    "cloud_run": "https://cloud.google.com/run/pricing",
    "pubsub": "https://cloud.google.com/pubsub/pricing",
    "cloud_trace": "https://cloud.google.com/stackdriver/pricing",
}


@dataclass(frozen=True)
class Prices:
    """List prices, USD."""

    request_vcpu_second: float = 0.000024
    request_gib_second: float = 0.0000025
    per_million_requests: float = 0.40
    instance_vcpu_second: float = 0.000018
    instance_gib_second: float = 0.000002
    pubsub_per_tib: float = 40.0
    pubsub_min_bytes: int = 1000
    trace_per_million_spans: float = 0.20


@dataclass(frozen=True)
class Workload:
    """What a job costs in messages, spans and CPU, as measured."""

    messages_per_job: float
    spans_per_job: float
    message_bytes: float
    cpu_seconds_per_message: float
    """Process CPU time per message; a busy instance's vCPU is billed for at least this long."""
    memory_gib: float = 0.5
    """The instance size the Terraform module deploys (512 MiB)."""


def cost_per_million_jobs(workload: Workload, prices: Prices, *, push: bool) -> dict[str, float]:
    """Return the cost of a million jobs by item, for push (request-based) or pull billing."""
    messages = workload.messages_per_job * 1_000_000
    vcpu_seconds = messages * workload.cpu_seconds_per_message
    if push:
        compute = vcpu_seconds * (
            prices.request_vcpu_second + workload.memory_gib * prices.request_gib_second
        )
        requests = messages / 1_000_000 * prices.per_million_requests
    else:
        compute = vcpu_seconds * (
            prices.instance_vcpu_second + workload.memory_gib * prices.instance_gib_second
        )
        requests = 0.0
    billed_bytes = messages * max(prices.pubsub_min_bytes, workload.message_bytes)
    pubsub = billed_bytes / 2**40 * prices.pubsub_per_tib
    trace = workload.spans_per_job * prices.trace_per_million_spans
    return {
        "cloud_run_compute": compute,
        "cloud_run_requests": requests,
        "pubsub_delivery": pubsub,
        "cloud_trace": trace,
        "total": compute + requests + pubsub + trace,
    }


def report(push: Workload, pull: Workload | None, prices: Prices | None = None) -> dict[str, Any]:
    """Cost per million jobs for push (request-based) and, if measured, pull (instance-based).

    Pull's instance is billed whether busy or not; its figure assumes the worker is kept busy.
    """
    prices = prices or Prices()
    result: dict[str, Any] = {
        "prices_read": PRICES_READ,
        "sources": PRICE_SOURCES,
        "prices_usd": asdict(prices),
        "push_workload": asdict(push),
        "push_request_based": cost_per_million_jobs(push, prices, push=True),
    }
    if pull is not None:
        result["pull_workload"] = asdict(pull)
        result["pull_instance_based_busy"] = cost_per_million_jobs(pull, prices, push=False)
    return result
