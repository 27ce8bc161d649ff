"""Peak RSS of one message whose job left a hostile artifact: ``uv run python -m bench.hostile``.

Each case runs in a fresh process (its ``VmHWM`` is the peak resident set), handling the finished
message of one synthetic job whose folder holds one hostile file, through the real pipeline and
border into a dropping exporter. docs/RELIABILITY.md quotes the output against the 512 MiB
instance the Terraform module deploys by default.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path


def _with_events(count: int) -> Callable[[bytes], bytes]:
    def build(original: bytes) -> bytes:
        podinfo = json.loads(original)
        when = podinfo["pod"]["metadata"]["creationTimestamp"]
        event = {"type": "Warning", "reason": "BackOff", "message": "x" * 40, "eventTime": when}
        podinfo["events"] = [event] * count
        return json.dumps(podinfo).encode()

    return build


CASES: dict[str, tuple[str, Callable[[bytes], bytes]] | None] = {
    "baseline (no hostile file)": None,
    "started.json: 33 MB of nested empty lists": (
        "started.json",
        lambda _: b"[" + b"[]," * 11_000_000 + b"[]]",
    ),
    "clone-records.json: 780k commands (32 MB)": (
        "clone-records.json",
        lambda _: json.dumps(
            [{"commands": [{"command": f"git c {i}", "output": ""} for i in range(780_000)]}]
        ).encode(),
    ),
    "podinfo.json: 10k events (under its 2 MiB limit)": ("podinfo.json", _with_events(10_000)),
    "podinfo.json: 20k events": ("podinfo.json", _with_events(20_000)),
}


def _child(folder: str) -> None:
    """Handle the job's finished message once and print the process's peak RSS in MiB."""
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415 - child process only

    from processor.artifacts.mirror import MirrorArtifactStore  # noqa: PLC0415
    from processor.core.ids import IdMode  # noqa: PLC0415
    from processor.core.message import Delivery  # noqa: PLC0415
    from processor.export.exporters import NullExporter  # noqa: PLC0415
    from processor.export.otel import SpanConverter  # noqa: PLC0415
    from processor.pipeline import Pipeline, PipelineSettings  # noqa: PLC0415

    root = Path(folder)
    message = json.loads((root / "message.json").read_text())
    pipeline = Pipeline(
        MirrorArtifactStore(root / "mirror"),
        NullExporter(),
        SpanConverter(Resource({})),
        PipelineSettings(id_mode=IdMode.UID, grace=timedelta(0)),
    )
    result = pipeline.handle(Delivery(json.dumps(message).encode(), datetime.now(UTC)))
    status = Path("/proc/self/status").read_text()
    peak = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    print(
        json.dumps(
            {
                "peak_mib": round(peak / 1024),
                "outcome": str(result.outcome),
                "spans": result.span_count,
            }
        )
    )


def main() -> None:
    """Run every case in its own process and print one line per case."""
    from processor.synthetic import generate, write_mirror  # noqa: PLC0415

    for label, case in CASES.items():
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch)
            job = next(j for j in generate(20, seed=3) if "podinfo.json" in j.artifacts)
            write_mirror([job], root / "mirror")
            finished = job.messages[-1].data
            (root / "message.json").write_text(json.dumps(finished))
            if case is not None:
                name, content = case
                path = root / "mirror" / finished["gcs_path"].removeprefix("gs://") / name
                path.write_bytes(content(path.read_bytes() if path.exists() else b""))
            run = subprocess.run(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "bench.hostile", "--child", scratch],
                capture_output=True,
                text=True,
                check=True,
            )
            print(f"{label:<60} {run.stdout.strip()}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2])
    else:
        main()
