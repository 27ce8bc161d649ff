"""Small statistics the reports use: percentiles and latency summaries."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile (``fraction`` in 0..1) of ``values``."""
    if not values:
        raise ValueError("no values")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be within 0..1, got {fraction}")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def latency_summary(latencies_ms: Sequence[float], seconds: float) -> dict[str, float]:
    """p50, p99, max latency (ms) and requests per second of one load run."""
    if not latencies_ms:
        return {
            "requests": 0,
            "p50_ms": math.nan,
            "p99_ms": math.nan,
            "max_ms": math.nan,
            "requests_per_s": 0.0,
        }
    return {
        "requests": len(latencies_ms),
        "p50_ms": percentile(latencies_ms, 0.50),
        "p99_ms": percentile(latencies_ms, 0.99),
        "max_ms": max(latencies_ms),
        "requests_per_s": len(latencies_ms) / seconds,
    }
