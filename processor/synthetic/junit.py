"""Synthetic JUnit XML shaped like what Prow jobs upload: go-junit-report and Ginkgo v2.

Deterministic: the same arguments give the same bytes. The shapes follow the real files vendored
in ``tests/data/real-junit`` (see its SOURCES.md): go-junit-report v2 writes one ``<testsuite>``
per package with an RFC 3339 ``timestamp``; Ginkgo v2 writes one suite for the whole Kubernetes
e2e run with a zone-less ``timestamp``, every spec as a ``<testcase>`` (most ``<skipped>``), and
the parallel nodes' specs in one list, so case times add up to more than the suite's.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from xml.sax.saxutils import quoteattr

from processor.synthetic.fleet import seeded
from processor.synthetic.lifecycle import PodRun

_SIGS = ("apps", "network", "storage", "node", "auth", "cli", "scheduling", "api-machinery")
_VERBS = ("should create", "should delete", "should update", "should list", "should watch")
_OBJECTS = ("a Deployment", "a Service", "a PersistentVolume", "a Pod", "a ConfigMap", "a Job")
_GO_PACKAGES = ("cmd/app", "pkg/api", "pkg/controller", "pkg/util/wait", "internal/store")


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def go_test_junit(  # noqa: PLR0913 - one keyword per fact a job's unit tests vary by
    rng: random.Random,
    *,
    start: datetime,
    seconds: float,
    failing: bool,
    packages: int = 3,
    cases_per_package: int = 4,
) -> bytes:
    """Return a go-junit-report v2 file for a ``go test ./...`` run lasting ``seconds``.

    Packages run in parallel (``go test -p``), each from ``start``; ``failing`` makes the last
    case of the first package fail with a message, as ``t.Errorf`` output reads.
    """
    suites = []
    total = failures = 0
    for index in range(packages):
        package = f"example.com/project/{_GO_PACKAGES[index % len(_GO_PACKAGES)]}"
        budget = seconds * rng.uniform(0.4, 0.95)
        times = [rng.uniform(0.05, 1.0) for _ in range(cases_per_package)]
        scale = budget / sum(times)
        cases = []
        suite_failures = 0
        for case_index, weight in enumerate(times):
            name = f"Test{package.rsplit('/', 1)[-1].title().replace('_', '')}{case_index + 1}"
            body = ""
            if failing and index == 0 and case_index == cases_per_package - 1:
                suite_failures += 1
                body = (
                    '<failure message="Failed">'
                    f"    {name.lower()}_test.go:{rng.randrange(20, 400)}: expected 3 replicas, "
                    "got 2</failure>"
                )
            cases.append(
                f"    <testcase name={quoteattr(name)} classname={quoteattr(package)} "
                f'time="{_seconds(weight * scale)}">{body}</testcase>'
            )
        total += cases_per_package
        failures += suite_failures
        suites.append(
            f'  <testsuite name={quoteattr(package)} tests="{cases_per_package}" '
            f'failures="{suite_failures}" errors="0" id="{index}" hostname="prow-build" '
            f'time="{_seconds(budget)}" '
            f'timestamp="{start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}">\n'
            + "\n".join(cases)
            + "\n  </testsuite>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites tests="{total}" failures="{failures}">\n' + "\n".join(suites) + "\n"
        "</testsuites>\n"
    ).encode()


def kubernetes_e2e_junit(  # noqa: PLR0913 - the size and outcome of the run
    seed: str,
    *,
    cases: int,
    start: datetime,
    seconds: float,
    nodes: int = 4,
    ran_fraction: float = 0.15,
    failures: int = 3,
) -> bytes:
    """Return a Ginkgo v2 ``junit_01.xml`` for a Kubernetes e2e run of ``cases`` specs.

    About ``ran_fraction`` of the specs run (the rest are ``<skipped>`` by the focus/skip
    regexes), spread over ``nodes`` parallel Ginkgo processes, so the ran specs' times add up to
    about ``nodes`` times the suite's; ``failures`` of them fail with a multi-line message.
    """
    rng = random.Random(f"prowtrace-junit:{seed}")  # noqa: S311 - test data
    ran = [index for index in range(cases) if rng.random() < ran_fraction]
    failed = set(rng.sample(ran, min(failures, len(ran))))
    per_case = seconds * nodes / max(1, len(ran))
    lines = []
    for index in range(cases):
        sig = _SIGS[index % len(_SIGS)]
        name = (
            f"[sig-{sig}] {_OBJECTS[index % len(_OBJECTS)].title()} "
            f"{_VERBS[(index // len(_OBJECTS)) % len(_VERBS)]} {_OBJECTS[index % len(_OBJECTS)]} "
            f"[{index}]"
        )
        if index not in ran:
            lines.append(
                f'      <testcase name={quoteattr(name)} classname="Kubernetes e2e suite" '
                'status="skipped" time="0"><skipped message="skipped"></skipped></testcase>'
            )
            continue
        duration = per_case * rng.uniform(0.2, 1.8)
        body = ""
        status = "passed"
        if index in failed:
            status = "failed"
            body = (
                '<failure message="[FAILED] timed out waiting for the condition" type="failed">'
                "[FAILED] timed out waiting for the condition\n"
                f"In [It] at: k8s.io/kubernetes/test/e2e/{sig}/util.go:{rng.randrange(50, 900)}"
                "</failure>"
            )
        lines.append(
            f'      <testcase name={quoteattr(name)} classname="Kubernetes e2e suite" '
            f'status="{status}" time="{duration:.9f}">{body}</testcase>'
        )
    stamp = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'  <testsuites tests="{cases}" disabled="0" errors="0" failures="{len(failed)}" '
        f'time="{seconds:.9f}">\n'
        f'    <testsuite name="Kubernetes e2e suite" package="/go/src/k8s.io/kubernetes/test/e2e" '
        f'tests="{cases}" skipped="{cases - len(ran)}" failures="{len(failed)}" errors="0" '
        f'time="{seconds:.9f}" timestamp="{stamp}">\n'
        "      <properties>\n"
        f'        <property name="ParallelTotal" value="{nodes}"></property>\n'
        "      </properties>\n" + "\n".join(lines) + "\n    </testsuite>\n  </testsuites>"
    ).encode()


def junit_files(pod: PodRun) -> dict[str, bytes]:
    """Return the JUnit file the pod's ``test`` container leaves in ``$ARTIFACTS``, if it ran.

    Its unit tests fail exactly when the container exited non-zero; a container that was killed
    (OOM, deadline, eviction, an abort deleting the pod) wrote none.
    """
    run = next((run for run in pod.main_runs if run.name == "test"), None)
    if run is None or run.reason not in {"Completed", "Error"} or pod.reason or pod.deletion_ms:
        return {}
    seconds = max(0.0, (run.finished_ms - run.started_ms) / 1000)
    data = go_test_junit(
        seeded("junit", pod.uid),
        start=datetime.fromtimestamp(run.started_ms / 1000, UTC),
        seconds=seconds,
        failing=run.exit_code != 0,
    )
    return {"artifacts/junit_unit.xml": data}
