"""A deterministic corpus of realistic, synthetic Prow job lifecycles and their artifacts.

Every test, the demo, replay, backfill and the benchmarks run on this data::

    from processor.synthetic import generate, stream, write_mirror

    jobs = list(generate(200, seed=7))
    write_mirror(jobs, tmp_path)            # gs://BUCKET/PATH/NAME -> tmp_path/BUCKET/PATH/NAME
    for message in stream(jobs): ...        # crier's Pub/Sub messages in publish order

The shapes follow Prow's Go code (kubernetes-sigs/prow at a619408): crier's ``ReportMessage``,
the ProwJob type, ``clone.Record``, testgrid's started/finished metadata and core/v1 objects, with
Go's field order, ``omitempty`` and JSON escaping. See :mod:`.clonerefs` for how clonerefs really
records commands (concurrent refs, folded retries) and :class:`Scenario` for each lifecycle.
Generation is lazy: ``generate`` builds one job at a time, so 10,000 jobs stream in flat memory.
"""

from __future__ import annotations

from processor.synthetic._encoding import snowflake_ms
from processor.synthetic.generator import DEFAULT_START, generate
from processor.synthetic.model import Published, SyntheticJob
from processor.synthetic.replay import (
    DEFAULT_SUBSCRIPTION,
    message_bytes,
    mirror_path,
    push_envelope,
    read_jsonl,
    stream,
    write_jsonl,
    write_mirror,
)
from processor.synthetic.scenarios import SECRET_SCENARIOS, Scenario

__all__ = [
    "DEFAULT_START",
    "DEFAULT_SUBSCRIPTION",
    "SECRET_SCENARIOS",
    "Published",
    "Scenario",
    "SyntheticJob",
    "generate",
    "message_bytes",
    "mirror_path",
    "push_envelope",
    "read_jsonl",
    "snowflake_ms",
    "stream",
    "write_jsonl",
    "write_mirror",
]
