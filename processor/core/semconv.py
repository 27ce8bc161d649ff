"""Attribute names and enum values: OpenTelemetry's CI/CD, VCS, error and test conventions, ours.

Only names defined in the registries vendored under ``tests/data/semconv`` may use the ``cicd.``,
``vcs.``, ``error.`` and ``test.`` namespaces (a test enforces it); Prow-specific facts live under
``prow.``.
"""

from __future__ import annotations

from typing import Final

# CI/CD attributes, from the registry.cicd.pipeline group
CICD_PIPELINE_NAME: Final = "cicd.pipeline.name"
CICD_PIPELINE_RUN_ID: Final = "cicd.pipeline.run.id"
CICD_PIPELINE_RUN_URL_FULL: Final = "cicd.pipeline.run.url.full"
CICD_PIPELINE_RUN_STATE: Final = "cicd.pipeline.run.state"
CICD_PIPELINE_RESULT: Final = "cicd.pipeline.result"
CICD_PIPELINE_ACTION_NAME: Final = "cicd.pipeline.action.name"
CICD_PIPELINE_TASK_NAME: Final = "cicd.pipeline.task.name"
CICD_PIPELINE_TASK_RUN_ID: Final = "cicd.pipeline.task.run.id"
CICD_PIPELINE_TASK_RUN_URL_FULL: Final = "cicd.pipeline.task.run.url.full"
CICD_PIPELINE_TASK_RUN_RESULT: Final = "cicd.pipeline.task.run.result"
CICD_PIPELINE_TASK_TYPE: Final = "cicd.pipeline.task.type"
CICD_WORKER_NAME: Final = "cicd.worker.name"
CICD_SYSTEM_COMPONENT: Final = "cicd.system.component"

# VCS attributes, from the registry.vcs groups
VCS_REPOSITORY_URL_FULL: Final = "vcs.repository.url.full"
VCS_REPOSITORY_NAME: Final = "vcs.repository.name"
VCS_OWNER_NAME: Final = "vcs.owner.name"
VCS_PROVIDER_NAME: Final = "vcs.provider.name"
VCS_REF_BASE_NAME: Final = "vcs.ref.base.name"
VCS_REF_BASE_TYPE: Final = "vcs.ref.base.type"
VCS_REF_BASE_REVISION: Final = "vcs.ref.base.revision"
VCS_REF_HEAD_NAME: Final = "vcs.ref.head.name"
VCS_REF_HEAD_TYPE: Final = "vcs.ref.head.type"
VCS_REF_HEAD_REVISION: Final = "vcs.ref.head.revision"
VCS_CHANGE_ID: Final = "vcs.change.id"
VCS_CHANGE_TITLE: Final = "vcs.change.title"

# The error attribute, from the registry.error group
ERROR_TYPE: Final = "error.type"

# Test attributes, from the registry.test group (test spans built from JUnit results)
TEST_SUITE_NAME: Final = "test.suite.name"
TEST_SUITE_RUN_STATUS: Final = "test.suite.run.status"
TEST_CASE_NAME: Final = "test.case.name"
TEST_CASE_RESULT_STATUS: Final = "test.case.result.status"
SUITE_STATUS_SUCCESS: Final = "success"
SUITE_STATUS_FAILURE: Final = "failure"
SUITE_STATUS_SKIPPED: Final = "skipped"
CASE_STATUS_PASS: Final = "pass"  # noqa: S105 - a test result, not a password
CASE_STATUS_FAIL: Final = "fail"

# What prowtrace adds about JUnit results (no convention covers these)
PROW_TEST_CASE_CLASSNAME: Final = "prow.test.case.classname"
PROW_TEST_SUITE_FILE: Final = "prow.test.suite.file"
PROW_TEST_SUITE_CASES: Final = "prow.test.suite.cases"
PROW_TEST_SUITE_FAILED: Final = "prow.test.suite.failed"
PROW_TEST_SUITE_SKIPPED: Final = "prow.test.suite.skipped"
PROW_TEST_SUITE_OMITTED: Final = "prow.test.suite.omitted"
PROW_TEST_LANE: Final = "prow.test.lane"
PROW_JUNIT_FILES: Final = "prow.junit.files"
PROW_JUNIT_UNREADABLE: Final = "prow.junit.unreadable"
PROW_JUNIT_TOO_LARGE: Final = "prow.junit.too_large"
PROW_JUNIT_SUITES_OMITTED: Final = "prow.junit.suites_omitted"

# Enum values used
ACTION_RUN: Final = "RUN"
RUN_STATE_PENDING: Final = "pending"
RUN_STATE_EXECUTING: Final = "executing"
REF_TYPE_BRANCH: Final = "branch"
TASK_TYPE_TEST: Final = "test"
RESULT_SUCCESS: Final = "success"
RESULT_FAILURE: Final = "failure"
RESULT_ERROR: Final = "error"
RESULT_TIMEOUT: Final = "timeout"
RESULT_CANCELLATION: Final = "cancellation"
VCS_PROVIDERS: Final = {
    "github.com": "github",
    "gitlab.com": "gitlab",
    "bitbucket.org": "bitbucket",
    "gitea.com": "gitea",
}

# error.type values prowtrace reports (the conventions ask instrumentations to list them)
ERROR_TEST_FAILED: Final = "test_failed"
"""A job container exited non-zero."""
ERROR_CLONE_FAILED: Final = "clone_failed"
"""clonerefs could not check out a repository."""
ERROR_OOM_KILLED: Final = "oom_killed"
"""A job container was killed for exceeding its memory limit."""
ERROR_TIMEOUT: Final = "timeout"
"""The job or its pod ran past a deadline (pod pending/scheduling timeout, job timeout)."""
ERROR_POD_PENDING_TIMEOUT: Final = "pod_pending_timeout"
"""Plank gave up on a pod that never left Pending ("Pod pending timeout."): the job never ran
(image pull failing, init containers stuck); result ``error``, an infrastructure error."""
ERROR_POD_SCHEDULING_TIMEOUT: Final = "pod_scheduling_timeout"
"""Plank gave up on a pod no node took ("Pod scheduling timeout."): result ``error``."""
ERROR_PROW: Final = "prow_error"
"""Prow reported an error state (it could not run the job), no finer cause known."""
ERROR_OTHER: Final = "_OTHER"
"""The job failed and nothing in its artifacts says why."""
CUSTOM_ERROR_TYPES: Final = frozenset(
    {
        ERROR_TEST_FAILED,
        ERROR_CLONE_FAILED,
        ERROR_OOM_KILLED,
        ERROR_TIMEOUT,
        ERROR_POD_PENDING_TIMEOUT,
        ERROR_POD_SCHEDULING_TIMEOUT,
        ERROR_PROW,
    }
)
"""Every ``error.type`` value of a run that prowtrace defines itself (README lists them), on
spans and metrics alike; ``_OTHER`` is the registry's own."""

# Prow's own facts
PROW_JOB_TYPE: Final = "prow.job.type"
PROW_JOB_ID: Final = "prow.job.id"
PROW_JOB_STATE: Final = "prow.job.state"
PROW_JOB_DESCRIPTION: Final = "prow.job.description"
PROW_JOB_AGENT: Final = "prow.job.agent"
PROW_JOB_CONTEXT: Final = "prow.job.context"
PROW_JOB_QUEUE_NAME: Final = "prow.job.queue_name"
PROW_BUILD_ID: Final = "prow.build_id"
PROW_CLUSTER: Final = "prow.cluster"
PROW_NAMESPACE: Final = "prow.namespace"
PROW_POD_NAME: Final = "prow.pod.name"
PROW_POD_NODE: Final = "prow.pod.node"
PROW_POD_PHASE: Final = "prow.pod.phase"
PROW_POD_REVIVAL_COUNT: Final = "prow.pod.revival_count"
PROW_POD_WAITING: Final = "prow.pod.waiting"
"""``<span name>: <reason>`` of each container that never started (``container/test: ...``)."""
PROW_JOB_LABEL_PREFIX: Final = "prow.job.label."
"""The ProwJob's labels, one attribute each: ``prow.job.label.prow.k8s.io/refs.org``."""
PROW_PULLS: Final = "prow.pulls"
PROW_EXTRA_REPOS: Final = "prow.extra_repos"
PROW_ARTIFACTS_URL: Final = "prow.artifacts.url"
PROW_CONTAINER_NAME: Final = "prow.container.name"
PROW_CONTAINER_IMAGE: Final = "prow.container.image"
PROW_CONTAINER_EXIT_CODE: Final = "prow.container.exit_code"
PROW_CONTAINER_REASON: Final = "prow.container.reason"
PROW_CONTAINER_RESTARTS: Final = "prow.container.restart_count"
PROW_CLONE_COMMAND: Final = "prow.clone.command"
PROW_CLONE_ERROR: Final = "prow.clone.error"
PROW_CLONE_FAILED: Final = "prow.clone.failed"
PROW_CLONE_FINAL_SHA: Final = "prow.clone.final_sha"
"""The commit clonerefs checked out; for a presubmit a local merge commit in no repository."""
PROW_TIMING_SOURCE: Final = "prow.timing.source"
PROW_TIMING_ESTIMATED: Final = "prow.timing.estimated"
PROW_EVENT_MESSAGE: Final = "prow.event.message"
PROW_EVENT_TYPE: Final = "prow.event.type"
PROW_EVENT_COUNT: Final = "prow.event.count"
