"""Pull throughput: ``prowtrace pull`` (a real subprocess on the measured core) draining a backlog.

The corpus's messages are published to Google's Pub/Sub emulator first (the emulator's java
threads are pinned to the helper core); then the worker starts and the rate is the messages
divided by the time between the first and the last span the receiver got. Compared with the
in-process pipeline's rate from the throughput benchmark (same core, same configuration: 32
threads, group commit) it says what the transport costs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from google.pubsub_v1 import PubsubMessage

from bench import proc, services
from bench.receiver import CountingReceiver
from bench.workspace import Workspace, read_deliveries
from processor.tools.demo.pubsub_emulator import PubSubEmulator

PUBLISH_BATCH = 500
PROJECT = "bench"


def measure(
    workspace: Workspace,
    cores: tuple[frozenset[int], frozenset[int]],
    *,
    timeout: float,
    logs: Path,
) -> dict[str, Any]:
    """Publish the small corpus, drain it with ``prowtrace pull``, and time it."""
    measured_cpus, helper_cpus = cores
    corpus = workspace.small
    data = [delivery.data for delivery in read_deliveries(corpus.path)]
    with PubSubEmulator() as emulator, CountingReceiver(helper_cpus) as receiver:
        proc.pin_all_threads(emulator.pid, helper_cpus)
        topic = emulator.create_topic(PROJECT, "crier")
        subscription = emulator.create_subscription(
            PROJECT, "prowtrace", topic, ack_deadline_seconds=60
        )
        publisher = emulator.publisher()
        for start in range(0, len(data), PUBLISH_BATCH):
            batch = [PubsubMessage(data=item) for item in data[start : start + PUBLISH_BATCH]]
            publisher.publish(topic=topic, messages=batch)
        env = services.service_environ(workspace.mirror, receiver.endpoint, group_commit=True)
        env.update(emulator.environ())
        command = services.prowtrace_command(measured_cpus, "pull", "--subscription", subscription)
        worker = services.start(command, env, logs / "pull.log")
        try:
            deadline = time.monotonic() + timeout
            while not receiver.wait_for_spans(1, 0.01):
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"prowtrace pull exported nothing ({worker.returncode})")
            cpu_at_first = proc.cpu_seconds(worker.pid)
            complete = receiver.wait_for_spans(corpus.spans, timeout)
            cpu_used = proc.cpu_seconds(worker.pid) - cpu_at_first
            time.sleep(0.5)  # let stragglers (redeliveries) show up in the counts
            first, last = receiver.window()
            requests, spans = receiver.counts()
        finally:
            status = proc.stop(worker)
    seconds = max(1e-9, last - first)
    return {
        "messages": corpus.messages,
        "complete": complete,
        "spans": spans,
        "expected_spans": corpus.spans,
        "export_requests": requests,
        "seconds": seconds,
        "msgs_per_s": corpus.messages / seconds,
        "cpu_ms_per_msg": 1000 * cpu_used / corpus.messages,
        "exit_status": status,
    }
