"""The ProwJob's labels as root span attributes, so traces can be filtered by them.

Prow's own labels (``prow.k8s.io/job``, ``prow.k8s.io/refs.org``, ...) and a job config's
``labels:`` land on the ProwJob; the peer proof of concept put them on its traces. Labels are
user-controlled, so they are bounded (count, key shape, value length), scrubbed like any other
artifact text, and a deployment with noisy labels can allow or deny them by glob pattern.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from processor.core import semconv as sc
from processor.core.redact import scrub
from processor.core.spans import AttributeValue

MAX_LABELS = 32
"""A ProwJob carries about ten labels of Prow's; beyond 32 a job's config is being noisy."""
MAX_LABEL_VALUE_CHARS = 256
"""Kubernetes caps label values at 63 characters; a longer value did not come from a label."""
_LABEL_KEY = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?"
)
"""A Kubernetes label key: an optional DNS-subdomain prefix and ``/``, then a 63-char name."""


@dataclass(frozen=True, slots=True)
class LabelFilter:
    """Which labels become attributes: those matching an ``allow`` glob and no ``deny`` glob."""

    allow: tuple[str, ...] = ("*",)
    deny: tuple[str, ...] = ()
    max_labels: int = MAX_LABELS

    def keeps(self, key: str) -> bool:
        """Tell whether ``key`` is a label key this deployment carries onto traces."""
        return (
            _LABEL_KEY.fullmatch(key) is not None
            and any(fnmatchcase(key, pattern) for pattern in self.allow)
            and not any(fnmatchcase(key, pattern) for pattern in self.deny)
        )

    def attributes(self, labels: Mapping[str, str]) -> dict[str, AttributeValue]:
        """Return ``prow.job.label.<key>`` attributes, at most ``max_labels``, keys in order."""
        kept = sorted(key for key in labels if self.keeps(key))[: self.max_labels]
        return {
            sc.PROW_JOB_LABEL_PREFIX + key: scrub(labels[key], MAX_LABEL_VALUE_CHARS)
            for key in kept
        }


KEEP_ALL_LABELS = LabelFilter()
