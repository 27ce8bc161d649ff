"""Turning a corpus into inputs: a bucket mirror, a Pub/Sub stream, push bodies, JSONL files."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from processor.synthetic._encoding import go_json, protobuf_timestamp
from processor.synthetic.model import Published, SyntheticJob

DEFAULT_SUBSCRIPTION = "projects/demo/subscriptions/prowtrace"
_FIRST_MESSAGE_ID = 2_000_000_000_000_000
"""Replay files number messages from here: 16-digit decimal IDs, like Pub/Sub's."""


def mirror_path(root: Path, gcs_url: str) -> Path:
    """Map ``gs://BUCKET/PATH`` to ``root/BUCKET/PATH`` (the local mirror's layout)."""
    if not gcs_url.startswith("gs://"):
        raise ValueError(f"not a gs:// URL: {gcs_url!r}")
    relative = gcs_url.removeprefix("gs://").strip("/")
    if not relative or any(part in {"", ".", ".."} for part in relative.split("/")):
        raise ValueError(f"refusing to mirror an unsafe path: {gcs_url!r}")
    return root.joinpath(*relative.split("/"))


def write_mirror(jobs: Iterable[SyntheticJob], root: Path) -> int:
    """Write every job's artifacts as ``root/BUCKET/PATH/NAME``; return the number of files.

    Abandoned folders (a revived pod's first build) are written too, as they are in the bucket.
    """
    written = 0
    for job in jobs:
        folders = dict(job.abandoned_artifacts)
        if job.gcs_path:
            folders[job.gcs_path] = job.artifacts
        for folder, files in folders.items():
            directory = mirror_path(root, folder)
            directory.mkdir(parents=True, exist_ok=True)
            for name, content in files.items():
                path = directory.joinpath(*name.split("/"))  # artifacts/junit_*.xml nest
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
                written += 1
    return written


def stream(jobs: Iterable[SyntheticJob]) -> list[Published]:
    """Return all messages of all jobs in publish-time order (ties keep generation order)."""
    messages = [message for job in jobs for message in job.messages]
    messages.sort(key=lambda message: message.publish_time)
    return messages


def message_bytes(published: Published) -> bytes:
    """Return the Pub/Sub message body exactly as crier's ``json.Marshal`` produced it."""
    return go_json(published.data)


def _publish_time_ms(published: Published) -> int:
    moment = published.publish_time.astimezone(UTC)
    return int(moment.replace(microsecond=0).timestamp()) * 1000 + moment.microsecond // 1000


def push_envelope(
    published: Published,
    subscription: str = DEFAULT_SUBSCRIPTION,
    *,
    message_id: str,
    delivery_attempt: int | None = None,
) -> dict[str, Any]:
    """Return the JSON body Pub/Sub POSTs to a push endpoint for ``published``.

    Like the real service, the message carries both the camelCase and snake_case spellings of
    ``messageId``/``publishTime``; ``deliveryAttempt`` appears only when given (it needs a
    dead-letter policy). ``publishTime`` uses protobuf's JSON timestamp format.
    """
    publish_time = protobuf_timestamp(_publish_time_ms(published))
    body: dict[str, Any] = {
        "message": {
            "attributes": {},
            "data": base64.b64encode(message_bytes(published)).decode(),
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": publish_time,
            "publish_time": publish_time,
        },
        "subscription": subscription,
    }
    if delivery_attempt is not None:
        body["deliveryAttempt"] = delivery_attempt
    return body


def write_jsonl(published: Iterable[Published], path: Path, *, envelope: bool) -> int:
    """Write a replay file, one JSON object per line; return the number of lines.

    ``envelope=True`` writes push bodies (message IDs numbered from a fixed base, in file order);
    ``envelope=False`` writes ``{"publish_time": RFC 3339, "data": <crier's message>}``.
    """
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for index, message in enumerate(published):
            if envelope:
                line: dict[str, Any] = push_envelope(
                    message, message_id=str(_FIRST_MESSAGE_ID + index)
                )
            else:
                line = {
                    "publish_time": protobuf_timestamp(_publish_time_ms(message)),
                    "data": message.data,
                }
            out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> list[Published]:
    """Read a file written by :func:`write_jsonl` (either form) back into messages."""
    messages = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            item = json.loads(line)
            if "message" in item:
                data = json.loads(base64.b64decode(item["message"]["data"]))
                stamp = item["message"]["publishTime"]
            else:
                data, stamp = item["data"], item["publish_time"]
            moment = datetime.fromisoformat(stamp).astimezone(UTC)
            messages.append(Published(moment, data))
    return messages
