"""The fictional fleet the corpus runs: repositories, job configs, people, images and nodes.

Everything is invented (org ``acme``, domain ``prow.example.com``); names follow the conventions
of real Prow deployments so the data reads like theirs.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from uuid import UUID

from processor.synthetic.scenarios import JobType

PROW_URL_PREFIX = "https://prow.example.com/view/"
"""``plank.job_url_prefix_config``: Spyglass links are this + ``gs/<bucket>/<path>``."""
PUBSUB_PROJECT = "acme-prow"
PUBSUB_TOPIC = "prowjob-events"
PROWJOB_NAMESPACE = "prow"
POD_NAMESPACE = "test-pods"
CODE_ROOT = "/home/prow/go"
"""``codeMountPath`` in ``pkg/pod-utils/decorate``: clonerefs' ``--src-root``."""
PROW_VERSION = "v20261028-a619408"
UTILITY_IMAGES = {
    "clonerefs": f"us-docker.pkg.dev/k8s-infra-prow/images/clonerefs:{PROW_VERSION}",
    "initupload": f"us-docker.pkg.dev/k8s-infra-prow/images/initupload:{PROW_VERSION}",
    "entrypoint": f"us-docker.pkg.dev/k8s-infra-prow/images/entrypoint:{PROW_VERSION}",
    "sidecar": f"us-docker.pkg.dev/k8s-infra-prow/images/sidecar:{PROW_VERSION}",
}
GIT_USER_NAME = "ci-robot"
"""clonerefs' ``DefaultGitUserName``."""
GIT_USER_EMAIL = "ci-robot@k8s.io"
"""clonerefs' ``DefaultGitUserEmail``."""
GRACE_PERIOD_S = 900
"""``decoration_config.grace_period`` of 15m; the pod gets 5/4 of it."""


@dataclass(frozen=True, slots=True)
class Repo:
    """A repository jobs clone."""

    org: str
    name: str
    base_ref: str
    files: tuple[str, ...]
    tags: tuple[str, ...]
    fetch_seconds: tuple[float, float]
    """Range of a full ``git fetch --tags`` duration: bigger repositories take longer."""
    private: bool = False

    @property
    def link(self) -> str:
        """The repository's web page (``repo_link``)."""
        return f"https://github.com/{self.org}/{self.name}"


WIDGET = Repo(
    "acme",
    "widget",
    "main",
    (
        "pkg/widget/handler.go",
        "pkg/widget/handler_test.go",
        "pkg/widget/store/postgres.go",
        "cmd/widgetd/main.go",
        "go.mod",
        "go.sum",
        "docs/api.md",
    ),
    ("v1.8.0", "v1.8.1", "v1.9.0", "v1.9.1", "v1.10.0"),
    (4.0, 25.0),
)
GADGET = Repo(
    "acme",
    "gadget",
    "main",
    (
        "src/gadget/core.py",
        "src/gadget/cli.py",
        "tests/test_core.py",
        "pyproject.toml",
        "README.md",
    ),
    ("v0.14.0", "v0.15.0", "v0.15.1"),
    (1.5, 9.0),
)
INFRA = Repo(
    "acme",
    "infra",
    "master",
    (
        "terraform/prow/main.tf",
        "terraform/prow/variables.tf",
        "config/jobs/widget/widget-presubmits.yaml",
        "config/prow/config.yaml",
    ),
    ("2026-10-01", "2026-10-15"),
    (1.0, 6.0),
)
FIXTURES = Repo(
    "acme",
    "test-fixtures",
    "main",
    ("fixtures/widget/basic.json", "fixtures/widget/large.json"),
    (),
    (0.8, 4.0),
    private=True,
)


@dataclass(frozen=True, slots=True)
class JobConfig:
    """One job in the fleet's config."""

    name: str
    job_type: JobType
    repo: Repo | None
    image: str
    command: tuple[str, ...]
    median_test_s: float
    extra_refs: tuple[Repo, ...] = ()
    cluster: str = "default"
    run_id: str = ""
    """``prow.k8s.io/pubsub.runID`` annotation; most jobs leave it unset."""
    optional: bool = False


_KUBEKINS = "gcr.io/acme-ci/kubekins-e2e:v20261020-8f1c2d3-master"
_GO = "golang:1.25.3"
_PY = "python:3.13-slim"
_TF = "hashicorp/terraform:1.13.4"

JOBS: tuple[JobConfig, ...] = (
    JobConfig("pull-widget-unit", JobType.PRESUBMIT, WIDGET, _GO, ("make", "test"), 240),
    JobConfig("pull-widget-lint", JobType.PRESUBMIT, WIDGET, _GO, ("make", "lint"), 90),
    JobConfig(
        "pull-widget-e2e-kind",
        JobType.PRESUBMIT,
        WIDGET,
        _KUBEKINS,
        ("runner.sh", "./hack/e2e-kind.sh"),
        1500,
        extra_refs=(FIXTURES,),
        cluster="build-e2e",
    ),
    JobConfig("pull-gadget-unit", JobType.PRESUBMIT, GADGET, _PY, ("make", "test"), 360),
    JobConfig(
        "pull-gadget-verify", JobType.PRESUBMIT, GADGET, _PY, ("make", "verify"), 120, optional=True
    ),
    JobConfig(
        "pull-gadget-integration",
        JobType.PRESUBMIT,
        GADGET,
        _PY,
        ("make", "integration"),
        720,
        extra_refs=(FIXTURES,),
    ),
    JobConfig("pull-infra-terraform-plan", JobType.PRESUBMIT, INFRA, _TF, ("./hack/plan.sh",), 180),
    JobConfig(
        "post-widget-push-images",
        JobType.POSTSUBMIT,
        WIDGET,
        _KUBEKINS,
        ("runner.sh", "make", "push-images"),
        480,
        cluster="build-trusted",
    ),
    JobConfig(
        "post-gadget-publish-docs", JobType.POSTSUBMIT, GADGET, _PY, ("make", "publish-docs"), 180
    ),
    JobConfig(
        "post-infra-deploy-staging",
        JobType.POSTSUBMIT,
        INFRA,
        _TF,
        ("./hack/deploy.sh", "staging"),
        600,
        cluster="build-trusted",
    ),
    JobConfig(
        "periodic-widget-nightly-e2e",
        JobType.PERIODIC,
        None,
        _KUBEKINS,
        ("runner.sh", "./hack/nightly.sh"),
        2100,
        cluster="build-e2e",
        run_id="nightly",
    ),
    JobConfig(
        "ci-infra-cleanup-stale-clusters",
        JobType.PERIODIC,
        None,
        "gcr.io/acme-ci/janitor:v20261002-77ab1e0",
        ("/janitor", "--ttl=24h"),
        120,
    ),
    JobConfig(
        "periodic-gadget-flake-hunter",
        JobType.PERIODIC,
        None,
        _PY,
        ("python", "-m", "flakehunter"),
        1200,
    ),
)


def jobs_for(job_type: JobType, *, extra_refs: bool) -> tuple[JobConfig, ...]:
    """Return the jobs a scenario may run: batches run presubmits, ``extra_refs`` selects on it."""
    wanted = JobType.PRESUBMIT if job_type is JobType.BATCH else job_type
    return tuple(
        job
        for job in JOBS
        if job.job_type is wanted and bool(job.extra_refs) == extra_refs and job.repo is not None
    ) or tuple(job for job in JOBS if job.job_type is wanted)


AUTHORS = (
    "mkowalski",
    "ayesha-r",
    "jdoe",
    "tanaka-h",
    "lfernandez",
    "octo-bot",
    "priya-s",
    "dependabot[bot]",
)
PR_TITLES = (
    "Fix race in widget cache invalidation",
    "Add retries to the store client",
    "Bump golang.org/x/net from 0.44.0 to 0.46.0",
    "docs: clarify rate limits & quotas",
    "Refactor handler <-> store interface",
    "Make e2e tests hermetic",
    "Drop Python 3.10 support",
    "Speed up CI by caching modules",
    "WIP: new scheduler backend",
)
COMMIT_SUBJECTS = (
    "Merge pull request #{n} from {author}/fix-flake",
    "Update dependencies",
    "Release {tag}",
    "Improve error messages",
    "Merge pull request #{n} from {author}/docs",
)


@dataclass(frozen=True, slots=True)
class Node:
    """A build-cluster node a pod can land on."""

    name: str
    uid: str
    pool: str
    zone: str
    internal_ip: str
    pod_cidr: str
    created_s: int
    machine_id: str
    boot_id: str


def make_nodes(rng: random.Random, created_before_s: int, count: int = 24) -> tuple[Node, ...]:
    """Return a deterministic pool of GKE-like nodes created before ``created_before_s``."""
    nodes = []
    for index in range(count):
        pool = ("pool-n2-std-8", "pool-n2-std-16")[index % 2]
        group = f"{rng.getrandbits(32):08x}"
        suffix = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(4))
        nodes.append(
            Node(
                name=f"gke-prow-build-{pool}-{group}-{suffix}",
                uid=uuid4(rng),
                pool=pool,
                zone=("us-central1-b", "us-central1-c", "us-central1-f")[index % 3],
                internal_ip=f"10.128.0.{10 + index}",
                pod_cidr=f"10.8.{index}.0/24",
                created_s=created_before_s - rng.randrange(3600, 14 * 86400),
                machine_id=f"{rng.getrandbits(128):032x}",
                boot_id=uuid4(rng),
            )
        )
    return tuple(nodes)


def uuid4(rng: random.Random) -> str:
    """Return a version-4 UUID string drawn from ``rng`` (deterministic for a seeded RNG)."""
    return str(UUID(int=rng.getrandbits(128), version=4))


def seeded(*key: object) -> random.Random:
    """Return a random generator seeded from ``key``: the same key, the same sequence.

    String seeds go through SHA-512 in :class:`random.Random`, independent of ``PYTHONHASHSEED``.
    """
    return random.Random(":".join(("prowtrace-corpus", *map(str, key))))  # noqa: S311 - test data


def sha1_hex(rng: random.Random) -> str:
    """Return a 40-hex-digit git object name drawn from ``rng``."""
    return f"{rng.getrandbits(160):040x}"


def image_digest(image: str) -> str:
    """Return a stable ``sha256:`` digest for an image reference (same image, same digest)."""
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


def image_id(image: str) -> str:
    """Return the ``imageID`` containerd reports for ``image``: repository ``@`` digest."""
    repository = image.rsplit(":", 1)[0] if "/" in image or ":" in image else image
    if "." not in repository.split("/", 1)[0]:
        repository = f"docker.io/library/{repository}" if "/" not in repository else repository
    return f"{repository}@{image_digest(image)}"


def image_bytes(image: str) -> int:
    """Return a plausible, stable compressed size of ``image`` in bytes."""
    base = 1_500_000_000 if "kubekins" in image else 25_000_000
    return base + int(hashlib.sha256(image.encode()).hexdigest()[:6], 16) * 7
