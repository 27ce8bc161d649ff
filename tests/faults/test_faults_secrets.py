"""No secret leaves: realistic credentials planted in every free-text field, zero found in spans.

The token formats follow gitleaks' maintained rule set (config/gitleaks.toml: github-pat,
gitlab-pat, gcp-api-key, slack-bot-token, slack-webhook-url, npm-access-token,
stripe-access-token, aws-access-token, private-key); the contexts are the ways issue 15 saw them
leak (quoted and JSON assignments, odd Authorization schemes, CLI flags, user:password URLs,
signed-URL parameters). The values are fake but shaped exactly like real ones.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from processor.artifacts.mirror import MirrorArtifactStore
from processor.core.ids import IdMode
from processor.core.message import Delivery
from processor.core.redact import strip_secrets
from processor.export.otel import SpanConverter
from processor.pipeline import Outcome, Pipeline, PipelineSettings
from processor.tools.replay import parse_line

pytestmark = [pytest.mark.faults]

REAL_PROW = Path(__file__).parents[1] / "data" / "real-prow"

SECRETS = {
    "github-pat": "ghp_" + "R8xLq2Vn5Tb7Wc9Yd3Fh6Jk1Mp4Sg0Za2Ue5",
    "github-fine-grained": "github_pat_" + "11ABCDEFG0" + "x7Kq" * 14,
    "gitlab-pat": "glpat-" + "Xq7Lm2Vn5Tb8Wc9Yd3Fh",
    "gcp-api-key": "AIza" + "SyB4x9Lq2Vn5Tb7Wc9Yd3Fh6Jk1Mp4Sg0Za",
    "slack-bot": "xoxb-" + "2048976523-4598723409-Zq8Xw2Lk5Pn7Rt4Vb9Mc3Hd",
    "slack-webhook": "hooks.slack.com/services/" + "T0A1B2C3D/B0E1F2G3H/Zq8Xw2Lk5Pn7Rt4Vb9Mc3Hd6",
    "npm": "npm_" + "a8Zq2Lk5Pn7Rt4Vb9Mc3Hd6Jf1Gs0Ya2Ue5Xw",
    "stripe": "sk_live_" + "51H8xLq2Vn5Tb7Wc9Yd3Fh6Jk1Mp4Sg0",
    "aws-access-key": "AKIA" + "QYLPMN5HJ2XW7K3B",
    "google-oauth": "ya29." + "a0AfH6SMBx9Lq2Vn5Tb7Wc9Yd3Fh6Jk1Mp4",
}
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7Zq8Xw2Lk5Pn7Rt4V"
PASSWORD = "c0rr3ct-h0rse-B4ttery"  # noqa: S105 - fake; a password has no format, only context

CONTEXTS = (
    "https://user@host:{secret}@github.com/org/repo.git",
    'GITHUB_TOKEN="{secret}"',
    "REGISTRY_PASSWORD='{secret}'",
    '{{"client_secret": "{secret}"}}',
    "Authorization: Negotiate {secret}",
    "Authorization: Bearer '{secret}'",
    "Authorization: Bearer{secret}",
    "curl -H 'Bearer {secret}' https://api.example.com",
    "tool --password {secret} --verbose",
    "docker login -u ci -p {secret} gcr.io",
    "https://storage.googleapis.com/b/o?X-Goog-Signature={secret}&X-Goog-Date=20260101",
    "plain text mentioning {secret} in passing",
)


def planted() -> list[str]:
    """Every secret in every context, plus PEM private keys (whole and cut off)."""
    texts = [
        context.format(secret=value)
        for value in [*SECRETS.values(), PASSWORD]
        for context in CONTEXTS
        if value != PASSWORD or ("{secret}" in context and "plain" not in context)
    ]
    pem = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n"
    texts += [f"clone failed: {pem}", json.dumps({"private_key": pem}), pem[:60] + PEM_BODY[:30]]
    return texts


def leaked(text: str) -> list[str]:
    """Return the planted secret values still present in ``text``."""
    values = [*SECRETS.values(), PASSWORD, PEM_BODY[:24]]
    return [value for value in values if value in text]


@pytest.mark.parametrize("text", planted())
def test_every_planted_secret_is_stripped(text: str) -> None:
    """Each format in each context: nothing of the secret remains."""
    assert leaked(strip_secrets(text)) == []


def test_secret_free_text_is_left_alone() -> None:
    """Ordinary commands and URLs keep every character."""
    for text in (
        "mkdir -p /home/prow/go/src/k8s.io/test-infra",
        "git fetch https://github.com/kubernetes/kubernetes.git --tags --prune",
        "https://prow.k8s.io/view/gs/kubernetes-jenkins/logs/ci-kubernetes-e2e/1",
        "Back-off pulling image gcr.io/k8s-testimages/kubekins-e2e:v20200428",
    ):
        assert strip_secrets(text) == text


class _Collect(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


_STRUCTURAL_KEYS = {"state", "phase", "type", "kind", "status", "apiVersion", "startTime"}


def _plant(value: Any, texts: list[str], counter: list[int]) -> Any:  # noqa: ANN401 - raw JSON
    """Append a planted secret to every free-text string (times and enum-like keys left)."""
    if isinstance(value, dict):
        return {
            key: item if key in _STRUCTURAL_KEYS else _plant(item, texts, counter)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_plant(item, texts, counter) for item in value]
    if isinstance(value, str) and not (value[:4].isdigit() and "T" in value and ":" in value):
        counter[0] += 1
        return f"{value} {texts[counter[0] % len(texts)]}"
    return value


@pytest.mark.parametrize("corpus", [REAL_PROW, REAL_PROW / "variants"], ids=["jobs", "variants"])
def test_no_planted_secret_reaches_an_exported_span(corpus: Path, tmp_path: Path) -> None:
    """The real corpus with a secret in every free-text artifact field: zero leaks in spans."""
    mirror = tmp_path / "mirror"
    shutil.copytree(corpus / "mirror", mirror)
    texts, counter = planted(), [0]
    for name in ("prowjob.json", "podinfo.json", "clone-records.json", "finished.json"):
        for path in mirror.rglob(name):
            document = json.loads(path.read_text())
            if name == "prowjob.json":  # keep the UID: it is the trace ID, never free text
                uid = document["metadata"]["name"]
                document = _plant(document, texts, counter)
                document["metadata"]["name"] = uid
            else:
                document = _plant(document, texts, counter)
            path.write_text(json.dumps(document))
    collect = _Collect()
    pipeline = Pipeline(
        MirrorArtifactStore(mirror),
        collect,
        SpanConverter(Resource({})),
        PipelineSettings(id_mode=IdMode.UID),
        clock=lambda: datetime(2100, 1, 1, tzinfo=UTC),
    )
    outcomes = []
    for line in (corpus / "messages.jsonl").read_text().splitlines():
        parsed = parse_line(line, datetime(2026, 12, 1, tzinfo=UTC))  # envelope or bare message
        assert isinstance(parsed, Delivery), parsed
        message = json.loads(parsed.data)
        for key in ("message", "url", "job_name"):
            if message.get(key):
                message[key] = _plant(message[key], texts, counter)
        delivery = replace(parsed, data=json.dumps(message).encode())
        outcomes.append(pipeline.handle(delivery).outcome)

    exported = "\n".join(span.to_json() for span in collect.spans)
    assert outcomes.count(Outcome.EXPORTED) >= 4  # one variant has no prowjob.json: FAILED
    assert counter[0] > 300  # secrets really were planted widely
    assert leaked(exported) == []
