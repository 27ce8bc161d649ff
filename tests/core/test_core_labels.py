"""ProwJob labels on the root span: bounded, scrubbed, chosen by the deployment's allow/deny."""

from __future__ import annotations

from core_fixtures import PUBLISH, artifacts, prowjob_doc, traceable

from processor.config import load_settings
from processor.core import semconv as sc
from processor.core.build import job_spans
from processor.core.labels import MAX_LABEL_VALUE_CHARS, MAX_LABELS, LabelFilter
from processor.core.redact import REDACTED

PREFIX = sc.PROW_JOB_LABEL_PREFIX


def test_each_label_becomes_one_attribute() -> None:
    """``prow.k8s.io/job: x`` becomes ``prow.job.label.prow.k8s.io/job = x``."""
    labels = {"prow.k8s.io/job": "pull-unit", "created-by-prow": "true"}
    assert LabelFilter().attributes(labels) == {
        PREFIX + "created-by-prow": "true",
        PREFIX + "prow.k8s.io/job": "pull-unit",
    }


def test_at_most_max_labels_are_kept_in_key_order() -> None:
    """A noisy job's labels are cut at MAX_LABELS, the same ones every time (sorted keys)."""
    labels = {f"team.example.com/l{index:03d}": "v" for index in range(MAX_LABELS + 10)}
    kept = LabelFilter().attributes(labels)
    assert len(kept) == MAX_LABELS
    assert PREFIX + "team.example.com/l000" in kept
    assert PREFIX + f"team.example.com/l{MAX_LABELS:03d}" not in kept


def test_values_are_scrubbed_and_capped() -> None:
    """A token in a value is redacted; an over-long value is cut."""
    kept = LabelFilter().attributes(
        {"leak": "token=ghp_abcdefghijklmnopqrstuvwxyz", "long": "x" * 1000}
    )
    assert kept[PREFIX + "leak"] == f"token={REDACTED}"
    assert len(str(kept[PREFIX + "long"])) == MAX_LABEL_VALUE_CHARS


def test_keys_that_are_not_kubernetes_label_keys_are_dropped() -> None:
    """Only keys of Kubernetes' label-key shape can become attribute names."""
    labels = {"ok/name": "1", "bad key": "2", "x" * 70: "3", "": "4", "a/b/c": "5"}
    assert list(LabelFilter().attributes(labels)) == [PREFIX + "ok/name"]


def test_deny_patterns_win_over_allow_patterns() -> None:
    """A key matching a deny glob is left off even when an allow glob matches it."""
    policy = LabelFilter(allow=("prow.k8s.io/*",), deny=("prow.k8s.io/id",))
    labels = {"prow.k8s.io/job": "j", "prow.k8s.io/id": "u", "team/owner": "me"}
    assert list(policy.attributes(labels)) == [PREFIX + "prow.k8s.io/job"]


def test_settings_read_allow_and_deny_lists() -> None:
    """PROWTRACE_LABELS_ALLOW / _DENY are comma-separated globs; unset allows every label."""
    assert load_settings({}).labels == LabelFilter()
    settings = load_settings(
        {"PROWTRACE_LABELS_ALLOW": " prow.k8s.io/* , team/*", "PROWTRACE_LABELS_DENY": "*/id"}
    )
    assert settings.labels == LabelFilter(allow=("prow.k8s.io/*", "team/*"), deny=("*/id",))


def test_labels_reach_the_root_span_only() -> None:
    """The root carries the ProwJob's labels; no other span does."""
    spans = job_spans(traceable("success"), artifacts(prowjob=prowjob_doc()), PUBLISH)
    root, *others = spans
    assert any(key.startswith(PREFIX) for key in root.attributes)
    assert not any(key.startswith(PREFIX) for span in others for key in span.attributes)


def test_a_deny_everything_filter_leaves_the_root_without_labels() -> None:
    """PROWTRACE_LABELS_DENY=* drops every label."""
    spans = job_spans(
        traceable("success"),
        artifacts(prowjob=prowjob_doc()),
        PUBLISH,
        LabelFilter(deny=("*",)),
    )
    assert not any(key.startswith(PREFIX) for key in spans[0].attributes)
