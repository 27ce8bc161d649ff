"""Static checks of the Terraform in terraform/: checkov policies, formatting, and the wiring.

No cloud credentials and no providers are needed (``terraform validate`` would have to download the
google provider, so it is not run). The wiring tests read the HCL with the parser checkov itself
uses and assert the properties docs/DEPLOY.md promises.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from checkov_scan import ROOT, failed_checks, run_checkov
from hcl2.api import load as load_hcl

from processor.config import PUSH_AUTH_CLOUD_RUN_IAM, PUSH_AUTH_MODES, PUSH_AUTH_OIDC, PushSettings

TERRAFORM = ROOT / "terraform"
EXAMPLES = sorted(path for path in (TERRAFORM / "examples").iterdir() if path.is_dir())
ALL_MODULE_DIRS = [TERRAFORM, *EXAMPLES]

Block = dict[str, Any]


# --- reading the HCL ------------------------------------------------------------------------


@cache
def _parse(directory: Path) -> dict[str, list[Any]]:
    """Merge the top-level blocks of every ``*.tf`` file of one module directory."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open() as handle:
            for key, blocks in load_hcl(handle).items():
                merged.setdefault(key, []).extend(blocks)
    return merged


def _resources(resource_type: str) -> dict[str, Block]:
    """Return the module's resources of one type, by name."""
    found: dict[str, Block] = {}
    for entry in _parse(TERRAFORM).get("resource", []):
        found.update(entry.get(resource_type, {}))
    return found


def _resource(resource_type: str, name: str) -> Block:
    resources = _resources(resource_type)
    assert name in resources, f"{resource_type}.{name} is missing from terraform/"
    return resources[name]


def _one(block: Block, key: str) -> Any:  # noqa: ANN401 - HCL values are any JSON-like value
    """Return the single value (or nested block) the parser wraps in a one-element list."""
    values = block.get(key)
    assert isinstance(values, list), f"{key!r} not set in {sorted(block)}"
    assert len(values) == 1, f"{key!r} set {len(values)} times"
    return values[0]


def _dynamic(block: Block, name: str) -> Block:
    """Return the ``dynamic "<name>"`` block of a resource."""
    for dynamic in block.get("dynamic", []):
        if name in dynamic:
            return dynamic[name]  # type: ignore[no-any-return] # parsed HCL is untyped JSON
    pytest.fail(f'no dynamic "{name}" block')


def _env_blocks(container: Block) -> list[Block]:
    return [dynamic["env"] for dynamic in container.get("dynamic", []) if "env" in dynamic]


def _variable(name: str) -> Block:
    for variable in _parse(TERRAFORM)["variable"]:
        if name in variable:
            return variable[name]  # type: ignore[no-any-return] # parsed HCL is untyped JSON
    pytest.fail(f"variable {name} is missing from terraform/")


def _locals() -> Block:
    merged: Block = {}
    for block in _parse(TERRAFORM).get("locals", []):
        merged.update(block)
    return merged


def _all_resource_types() -> set[str]:
    return {
        resource_type
        for directory in ALL_MODULE_DIRS
        for entry in _parse(directory).get("resource", [])
        for resource_type in entry
    }


def _prow_subscription() -> Block:
    return _resource("google_pubsub_subscription", "prow")


def _service_container() -> Block:
    service = _resource("google_cloud_run_v2_service", "push")
    return _one(_one(service, "template"), "containers")  # type: ignore[no-any-return]


def _worker_container() -> Block:
    pool = _resource("google_cloud_run_v2_worker_pool", "pull")
    return _one(_one(pool, "template"), "containers")  # type: ignore[no-any-return]


SERVICE_URI = "${google_cloud_run_v2_service.push[0].uri}"


# --- checkov ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    """Checkov's Terraform report over terraform/ (the module through both examples)."""
    return run_checkov("terraform", "--directory", "terraform")


def test_checkov_reports_no_failed_check(checkov_report: dict[str, Any]) -> None:
    """Every checkov Terraform policy passes (or is skipped inline with a reason)."""
    assert checkov_report["summary"]["failed"] == 0, "\n".join(failed_checks(checkov_report))


def test_checkov_parsed_and_scanned_the_module(checkov_report: dict[str, Any]) -> None:
    """Checkov read every file and evaluated real resources, so a clean report means something."""
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= 10
    assert summary["passed"] > 0


def test_checkov_skips_carry_a_reason() -> None:
    """Every inline ``checkov:skip`` names a check and says why it does not apply."""
    skips = [
        line
        for path in TERRAFORM.rglob("*.tf")
        for line in path.read_text().splitlines()
        if "checkov:skip" in line
    ]
    for line in skips:
        assert re.search(r"checkov:skip=CKV2?_[A-Z]+_\d+:\S.{20,}", line), line


# --- terraform fmt ------------------------------------------------------------------------------


def test_terraform_fmt_is_clean(tmp_path: Path) -> None:
    """``terraform fmt -check`` passes wherever a terraform binary is installed."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("no terraform binary on PATH (it is not in the package registries)")
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "TF_CLI_CONFIG_FILE": "/dev/null", "HOME": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- push delivery ------------------------------------------------------------------------------


def test_push_endpoint_is_the_service_url() -> None:
    """Pub/Sub pushes to the Cloud Run service's own URL."""
    push_config = _one(_dynamic(_prow_subscription(), "push_config"), "content")
    assert _one(push_config, "push_endpoint") == SERVICE_URI


def test_push_oidc_audience_is_the_service_url() -> None:
    """The push requests' OIDC token is addressed to the service's deterministic URL."""
    push_config = _one(_dynamic(_prow_subscription(), "push_config"), "content")
    assert _one(_one(push_config, "oidc_token"), "audience") == "${local.service_url}"
    assert _locals()["service_url"][0] == (
        "https://${local.service_name}-${data.google_project.pipeline.number}.${var.region}.run.app"
    )
    service = _resource("google_cloud_run_v2_service", "push")
    assert _one(service, "name") == "${local.service_name}"
    assert _one(service, "location") == "${var.region}"


def test_service_accepts_the_push_audience() -> None:
    """The service declares the push audience, so Cloud Run accepts the tokens in any case."""
    service = _resource("google_cloud_run_v2_service", "push")
    assert _one(service, "custom_audiences") == ["${local.service_url}"]


def test_push_token_is_minted_for_the_dedicated_push_account() -> None:
    """The OIDC token's identity is the push service account, not the runtime one."""
    push_config = _one(_dynamic(_prow_subscription(), "push_config"), "content")
    email = _one(_one(push_config, "oidc_token"), "service_account_email")
    assert email == "${google_service_account.push[0].email}"


def test_only_the_push_account_may_invoke_the_service() -> None:
    """roles/run.invoker is granted to the push account, on this one service."""
    invoker = _resource("google_cloud_run_v2_service_iam_member", "push_invoker")
    assert _one(invoker, "role") == "roles/run.invoker"
    assert _one(invoker, "name") == "${google_cloud_run_v2_service.push[0].name}"
    assert _one(invoker, "member") == "${google_service_account.push[0].member}"


def test_service_requires_iam_for_invocation_by_default() -> None:
    """The invoker IAM check is on unless invoker_iam_check = false says otherwise."""
    service = _resource("google_cloud_run_v2_service", "push")
    assert _one(service, "invoker_iam_disabled") == "${!var.invoker_iam_check}"
    assert _variable("invoker_iam_check")["default"] == [True]


def test_prowtrace_is_told_whether_cloud_run_checks_the_token() -> None:
    """The push token check follows the invoker check: cloud-run-iam when on, oidc when off.

    Cloud Run removes the signature of a token it verified; prowtrace accepts that only when
    told so (PROWTRACE_PUSH_AUTH=cloud-run-iam), and must verify the signature itself otherwise.
    """
    expression = _locals()["push_env"][0]["PROWTRACE_PUSH_AUTH"]
    assert expression == '${var.invoker_iam_check ? "cloud-run-iam" : "oidc"}'
    assert {PUSH_AUTH_CLOUD_RUN_IAM, PUSH_AUTH_OIDC} <= set(PUSH_AUTH_MODES)
    assert (PUSH_AUTH_CLOUD_RUN_IAM, PUSH_AUTH_OIDC) == ("cloud-run-iam", "oidc")


def test_ingress_admits_only_internal_traffic_by_default() -> None:
    """Internal ingress: this project's Pub/Sub push gets in, the internet does not."""
    service = _resource("google_cloud_run_v2_service", "push")
    assert _one(service, "ingress") == "${var.ingress}"
    assert _variable("ingress")["default"] == ["INGRESS_TRAFFIC_INTERNAL_ONLY"]


def test_push_subscription_is_in_the_services_project_on_its_run_app_url() -> None:
    """What makes Pub/Sub push count as internal: same project, the default run.app URL."""
    subscription = _prow_subscription()
    service = _resource("google_cloud_run_v2_service", "push")
    assert _one(subscription, "project") == _one(service, "project") == "${var.project_id}"
    push_config = _one(_dynamic(subscription, "push_config"), "content")
    assert _one(push_config, "push_endpoint") == SERVICE_URI
    assert _locals()["service_url"][0].endswith(".run.app")


def test_prowtrace_expects_the_audience_pubsub_sends() -> None:
    """PROWTRACE_PUSH_AUDIENCE is the very audience the subscription puts in its tokens."""
    assert _locals()["push_env"][0]["PROWTRACE_PUSH_AUDIENCE"] == "${local.service_url}"


def test_prowtrace_accepts_only_the_push_account() -> None:
    """PROWTRACE_PUSH_ALLOWED_EMAILS names the push service account."""
    push_env = _locals()["push_env"][0]
    assert "google_service_account.push[0].email" in push_env["PROWTRACE_PUSH_ALLOWED_EMAILS"]


def test_service_runs_serve_and_worker_pool_runs_pull() -> None:
    """Push mode runs ``prowtrace serve``; pull mode runs ``prowtrace pull``."""
    assert _one(_service_container(), "args") == ["serve"]
    assert _one(_worker_container(), "args") == ["pull"]


def test_pull_mode_deploys_a_worker_pool_and_push_mode_a_service() -> None:
    """The delivery mode picks exactly one of the service and the worker pool."""
    service = _resource("google_cloud_run_v2_service", "push")
    pool = _resource("google_cloud_run_v2_worker_pool", "pull")
    assert _one(service, "count") == "${local.push ? 1 : 0}"
    assert _one(pool, "count") == "${local.pull ? 1 : 0}"
    assert _locals()["pull"][0] == '${var.delivery_mode == "pull"}'


def test_pull_subscription_has_no_push_config_in_pull_mode() -> None:
    """The push_config block exists only in push mode."""
    for_each = _one(_dynamic(_prow_subscription(), "push_config"), "for_each")
    assert for_each.startswith("${local.push ?")
    assert for_each.endswith(": []}")


def test_worker_pool_is_told_its_subscription() -> None:
    """``prowtrace pull`` gets the subscription's full ID in PROWTRACE_SUBSCRIPTION."""
    pull_env = _locals()["pull_env"][0]
    assert "'PROWTRACE_SUBSCRIPTION': '${google_pubsub_subscription.prow.id}'" in pull_env
    (env,) = [env for env in _env_blocks(_worker_container()) if "local.pull_env" in str(env)]
    assert _one(env, "for_each") == "${merge(local.prowtrace_env,local.pull_env)}"


def test_extra_env_cannot_override_the_modules_settings() -> None:
    """var.extra_env is merged first, so the module's own variables win over it."""
    assert _locals()["prowtrace_env"][0].startswith("${merge(var.extra_env,{")
    (env,) = [env for env in _env_blocks(_service_container()) if "local.push_env" in str(env)]
    assert _one(env, "for_each") == "${merge(local.prowtrace_env,local.push_env)}"


# --- delivery policy and dead letters -------------------------------------------------------


def test_subscription_is_on_the_existing_prow_topic() -> None:
    """The subscription attaches to the topic ID given as a variable (any project)."""
    assert _one(_prow_subscription(), "topic") == "${var.topic_id}"


def test_retry_policy_backs_off_exponentially() -> None:
    """Redeliveries are spaced by Pub/Sub's exponential backoff between the two bounds."""
    retry = _one(_prow_subscription(), "retry_policy")
    assert _one(retry, "minimum_backoff") == "${var.minimum_backoff_seconds}s"
    assert _one(retry, "maximum_backoff") == "${var.maximum_backoff_seconds}s"


def test_dead_letter_policy_targets_the_dead_letter_topic() -> None:
    """Undeliverable messages go to the module's dead-letter topic."""
    policy = _one(_prow_subscription(), "dead_letter_policy")
    assert _one(policy, "dead_letter_topic") == "${google_pubsub_topic.dead_letter.id}"
    assert _one(policy, "max_delivery_attempts") == "${var.max_delivery_attempts}"


def test_dead_letter_topic_has_its_own_subscription() -> None:
    """A subscription on the dead-letter topic keeps dead letters from being dropped."""
    subscribed_topics = [
        _one(subscription, "topic")
        for subscription in _resources("google_pubsub_subscription").values()
    ]
    assert "${google_pubsub_topic.dead_letter.id}" in subscribed_topics


def test_dead_letter_subscription_never_expires() -> None:
    """The rarely read dead-letter subscription is not deleted for inactivity."""
    subscription = _resource("google_pubsub_subscription", "dead_letter")
    assert _one(_one(subscription, "expiration_policy"), "ttl") == ""


def test_pubsub_service_agent_may_publish_dead_letters() -> None:
    """The Pub/Sub service agent holds publisher on the dead-letter topic."""
    grant = _resource("google_pubsub_topic_iam_member", "dead_letter_publisher")
    assert _one(grant, "topic") == "${google_pubsub_topic.dead_letter.name}"
    assert _one(grant, "role") == "roles/pubsub.publisher"
    assert _one(grant, "member") == "${local.pubsub_service_agent}"


def test_pubsub_service_agent_may_ack_forwarded_messages() -> None:
    """The Pub/Sub service agent holds subscriber on the source subscription."""
    grant = _resource("google_pubsub_subscription_iam_member", "dead_letter_forwarder")
    assert _one(grant, "subscription") == "${google_pubsub_subscription.prow.name}"
    assert _one(grant, "role") == "roles/pubsub.subscriber"
    assert _one(grant, "member") == "${local.pubsub_service_agent}"


def test_pubsub_service_agent_is_the_pipeline_projects() -> None:
    """The agent that dead-letters and mints tokens is the subscription project's Pub/Sub agent."""
    identity = _resource("google_project_service_identity", "pubsub")
    assert _one(identity, "project") == "${var.project_id}"
    assert _one(identity, "service") == "pubsub.googleapis.com"
    agent = _locals()["pubsub_service_agent"][0]
    assert agent == "serviceAccount:${google_project_service_identity.pubsub.email}"


def test_grants_to_the_pubsub_agent_wait_for_its_creation() -> None:
    """Every grant to the agent names it through the service identity, so none races its creation.

    In a project that never used Pub/Sub the agent does not exist until something creates it;
    google_project_service_identity creates it up front and the references order the grants.
    """
    grants = [
        body
        for entry in _parse(TERRAFORM)["resource"]
        for resource_type, resources in entry.items()
        if resource_type.endswith("_iam_member")
        for body in resources.values()
        if "pubsub" in str(_one(body, "member"))
    ]
    assert len(grants) == 3  # token creator, dead-letter publisher, dead-letter forwarder
    assert {_one(grant, "member") for grant in grants} == {"${local.pubsub_service_agent}"}
    identity = _resource("google_project_service_identity", "pubsub")
    assert _one(identity, "provider") == "${google-beta}"


def test_ack_deadline_matches_the_request_timeout() -> None:
    """Pub/Sub's ack deadline and Cloud Run's request timeout come from one variable."""
    assert _one(_prow_subscription(), "ack_deadline_seconds") == "${var.request_timeout_seconds}"
    template = _one(_resource("google_cloud_run_v2_service", "push"), "template")
    assert _one(template, "timeout") == "${var.request_timeout_seconds}s"


def test_redeliveries_must_outlast_the_grace_period() -> None:
    """A plan-time precondition refuses a retry policy that dead-letters within the grace."""
    preconditions = _one(_prow_subscription(), "lifecycle")["precondition"]
    conditions = [_one(check, "condition") for check in preconditions]
    assert "${local.redelivery_window_seconds >= var.grace_seconds}" in conditions


def _evaluate_local(tmp_path: Path, names: tuple[str, ...], variables: dict[str, str | int]) -> str:
    """Evaluate main.tf's own ``locals`` (the last of ``names``) with ``terraform console``."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("no terraform binary on PATH to evaluate the expression")
    source = (TERRAFORM / "main.tf").read_text()
    expressions = {
        name: re.search(
            rf"^  {name} +=(.+?)\n(?=  [a-z_]+ +=|\n)", source, re.MULTILINE | re.DOTALL
        )
        for name in names
    }
    missing = [name for name, found in expressions.items() if found is None]
    assert not missing, f"locals {missing} not found in terraform/main.tf"
    (tmp_path / "main.tf").write_text(
        "".join(f'variable "{name}" {{}}\n' for name in variables)
        + "locals {\n"
        + "".join(f"  {name} ={found.group(1)}\n" for name, found in expressions.items() if found)
        + "}\n"
    )
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [terraform, "console", *(f"-var={name}={value}" for name, value in variables.items())],
        input=f"local.{names[-1]}\n",
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "TF_CLI_CONFIG_FILE": "/dev/null", "HOME": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _redelivery_window(tmp_path: Path, attempts: int, minimum: int, maximum: int) -> int:
    """Evaluate main.tf's own backoff arithmetic."""
    variables: dict[str, str | int] = {
        "max_delivery_attempts": attempts,
        "minimum_backoff_seconds": minimum,
        "maximum_backoff_seconds": maximum,
    }
    names = ("retry_delays_seconds", "redelivery_window_seconds")
    return int(_evaluate_local(tmp_path, names, variables))


def test_default_retry_policy_covers_the_default_grace(tmp_path: Path) -> None:
    """10 attempts at 10s doubling to 600s span 10+20+...+600 = 2430s, over the 300s grace."""
    assert _redelivery_window(tmp_path, attempts=10, minimum=10, maximum=600) == 2430


def test_too_few_attempts_fall_short_of_the_default_grace(tmp_path: Path) -> None:
    """5 attempts from 10s span only 10+20+40+80 = 150s, which the precondition rejects."""
    assert _redelivery_window(tmp_path, attempts=5, minimum=10, maximum=600) == 150


@pytest.mark.parametrize(("concurrency", "held"), [(80, 64), (10, 8), (2, 1), (1, 0)])
def test_push_holds_four_fifths_of_the_concurrency(
    tmp_path: Path, concurrency: int, held: int
) -> None:
    """Held requests take concurrency slots: a fifth stays for messages that can run now."""
    assert _locals()["push_env"][0]["PROWTRACE_PUSH_MAX_HELD"] == "${tostring(local.push_max_held)}"
    evaluated = _evaluate_local(tmp_path, ("push_max_held",), {"concurrency": concurrency})
    assert int(evaluated) == held


def test_the_services_default_hold_matches_the_modules_default() -> None:
    """Without Terraform, ``serve`` holds as many as the module would for its default of 80."""
    default = int(_one(_variable("concurrency"), "default"))
    assert PushSettings().max_held == default * 4 // 5


# --- Cloud Run sizing -----------------------------------------------------------------------


# Cloud Run's vCPU/memory table (https://cloud.google.com/run/docs/configuring/services/cpu):
# 1 vCPU 128 MiB-4 GiB, 2 vCPU 128 MiB-8 GiB, 4 vCPU 2-16 GiB, 6 vCPU 4-24 GiB, 8 vCPU 4-32 GiB;
# the second-generation environment (worker pools) needs at least 512 MiB.
@pytest.mark.parametrize(
    ("cpu", "memory", "mode", "fits"),
    [
        ("1", "512Mi", "push", True),
        ("1", "4Gi", "push", True),
        ("1", "4097Mi", "push", False),
        ("1", "256Mi", "push", True),
        ("1", "256Mi", "pull", False),
        ("2", "8Gi", "pull", True),
        ("2", "9Gi", "push", False),
        ("4", "1Gi", "push", False),
        ("4", "2Gi", "push", True),
        ("6", "2Gi", "push", False),
        ("8", "2Gi", "push", False),
        ("8", "4Gi", "pull", True),
        ("8", "33Gi", "push", False),
    ],
)
def test_cpu_and_memory_must_fit_cloud_runs_limits(
    tmp_path: Path, cpu: str, memory: str, mode: str, *, fits: bool
) -> None:
    """main.tf's own arithmetic accepts exactly the pairs Cloud Run accepts."""
    names = ("pull", "memory_mib", "memory_range_mib", "minimum_memory_mib", "memory_fits_cpu")
    variables: dict[str, str | int] = {"cpu": cpu, "memory": memory, "delivery_mode": mode}
    assert _evaluate_local(tmp_path, names, variables) == str(fits).lower()


def test_sizing_is_checked_at_plan_time() -> None:
    """A precondition refuses a vCPU/memory pair outside Cloud Run's limits before any apply."""
    checks = _one(_resource("terraform_data", "input_checks"), "lifecycle")["precondition"]
    assert "${local.memory_fits_cpu}" in [_one(check, "condition") for check in checks]


# --- identities and IAM ---------------------------------------------------------------------


def test_iam_is_only_granted_additively() -> None:
    """No authoritative ``*_iam_binding`` or ``*_iam_policy`` resource exists anywhere."""
    authoritative = {
        resource_type
        for resource_type in _all_resource_types()
        if resource_type.endswith(("_iam_binding", "_iam_policy"))
    }
    assert authoritative == set()


def _runtime_grants() -> dict[str, str]:
    """Map each IAM grant to the runtime service account to its role expression."""
    return {
        f"{resource_type}.{name}": _one(body, "role")
        for entry in _parse(TERRAFORM)["resource"]
        for resource_type, resources in entry.items()
        if resource_type.endswith("_iam_member")
        for name, body in resources.items()
        if _one(body, "member") == "${google_service_account.runtime.member}"
    }


def test_runtime_account_holds_only_the_roles_it_needs() -> None:
    """The runtime account reads artifacts, writes traces and metrics, pulls, reads the secret.

    No logging role: Cloud Run ships the container's stdout/stderr to Cloud Logging itself.
    """
    assert _runtime_grants() == {
        "google_storage_bucket_iam_member.artifact_reader": "roles/storage.objectViewer",
        "google_project_iam_member.trace_writer": "${local.trace_writer_role}",
        "google_project_iam_member.metrics_writer": "roles/telemetry.metricsWriter",
        "google_pubsub_subscription_iam_member.runtime_pull": "roles/pubsub.subscriber",
        "google_secret_manager_secret_iam_member.otlp_headers": (
            "roles/secretmanager.secretAccessor"
        ),
    }


def test_trace_writer_role_matches_the_exporter() -> None:
    """Telemetry API gets telemetry.tracesWriter, legacy Cloud Trace cloudtrace.agent, OTLP none."""
    mapping = _locals()["trace_writer_role"][0]
    assert "'gcp_otlp': 'roles/telemetry.tracesWriter'" in mapping
    assert "'gcp_trace': 'roles/cloudtrace.agent'" in mapping
    assert "'otlp': None" in mapping


def test_metrics_writer_role_only_for_the_telemetry_api_metrics_exporter() -> None:
    """roles/telemetry.metricsWriter is granted only with metrics_exporter = "gcp_otlp"."""
    grant = _resource("google_project_iam_member", "metrics_writer")
    assert _one(grant, "count") == "${local.gcp_metrics ? 1 : 0}"
    assert _locals()["gcp_metrics"][0] == '${var.metrics_exporter == "gcp_otlp"}'


def test_telemetry_api_metrics_carry_the_region_as_their_location() -> None:
    """With gcp_otlp metrics, cloud.region joins OTEL_RESOURCE_ATTRIBUTES (the API needs one)."""
    assert "cloud.region=${var.region}" in str(_locals()["resource_attributes"])


def test_otlp_metrics_need_the_otlp_trace_endpoint() -> None:
    """metrics_exporter = "otlp" is refused at plan time unless traces go to otlp_endpoint too."""
    checks = _resource("terraform_data", "input_checks")
    conditions = [_one(check, "condition") for check in _one(checks, "lifecycle")["precondition"]]
    assert '${var.metrics_exporter != "otlp" || var.traces_exporter == "otlp"}' in conditions


def test_exactly_once_delivery_is_an_option_of_the_pull_subscription_only() -> None:
    """The subscription takes exactly_once_delivery; a precondition refuses it in push mode."""
    subscription = _prow_subscription()
    assert _one(subscription, "enable_exactly_once_delivery") == "${var.exactly_once_delivery}"
    conditions = [
        _one(check, "condition") for check in _one(subscription, "lifecycle")["precondition"]
    ]
    assert "${local.pull || !var.exactly_once_delivery}" in conditions


def test_runtime_subscribes_only_in_pull_mode() -> None:
    """The runtime account's subscriber grant exists in pull mode, on the one subscription."""
    grant = _resource("google_pubsub_subscription_iam_member", "runtime_pull")
    assert _one(grant, "count") == "${local.pull ? 1 : 0}"
    assert _one(grant, "subscription") == "${google_pubsub_subscription.prow.name}"


def test_artifact_access_is_per_bucket() -> None:
    """Artifact read access is granted bucket by bucket from the artifact_buckets list."""
    grant = _resource("google_storage_bucket_iam_member", "artifact_reader")
    assert "var.artifact_buckets" in _one(grant, "for_each")
    assert _one(grant, "bucket") == "${each.value}"


def test_otlp_headers_secret_access_is_scoped_to_that_secret() -> None:
    """Secret read access is granted on the configured secret only."""
    grant = _resource("google_secret_manager_secret_iam_member", "otlp_headers")
    assert _one(grant, "secret_id") == "${var.otlp_headers_secret}"


@pytest.mark.parametrize("container", [_service_container, _worker_container])
def test_otlp_headers_reach_the_container_only_from_secret_manager(container: Any) -> None:  # noqa: ANN401 - a parametrized accessor
    """OTEL_EXPORTER_OTLP_HEADERS is set only as a Secret Manager reference."""
    header_envs = [
        _one(env, "content")
        for env in _env_blocks(container())
        if _one(_one(env, "content"), "name") == "OTEL_EXPORTER_OTLP_HEADERS"
    ]
    assert len(header_envs) == 1
    assert "value" not in header_envs[0]
    secret_ref = _one(_one(header_envs[0], "value_source"), "secret_key_ref")
    assert _one(secret_ref, "secret") == "${env.value}"
    assert "OTEL_EXPORTER_OTLP_HEADERS" not in str(_locals()["prowtrace_env"])


# --- variables, versions, examples ------------------------------------------------------------


@pytest.mark.parametrize("directory", ALL_MODULE_DIRS, ids=lambda path: path.name)
def test_every_variable_has_a_type_and_a_description(directory: Path) -> None:
    """Each variable declares its type and says what it is for."""
    for variable in _parse(directory)["variable"]:
        for name, body in variable.items():
            assert "type" in body, f"{directory.name}: variable {name} has no type"
            description = _one(body, "description")
            assert len(description) >= 10, f"{directory.name}: variable {name} is undescribed"


@pytest.mark.parametrize("directory", ALL_MODULE_DIRS, ids=lambda path: path.name)
def test_google_provider_versions_are_bounded_and_equal(directory: Path) -> None:
    """Google and google-beta are pinned to the same range, with a floor and a ceiling."""
    terraform_block = _one(_parse(directory), "terraform")
    providers = _one(terraform_block, "required_providers")
    versions = {_one(providers, "google")["version"], _one(providers, "google-beta")["version"]}
    [version] = versions
    assert re.fullmatch(r">= \d+\.\d+\.\d+, < \d+\.0\.0", version), version


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_examples_pass_every_required_module_input(example: Path) -> None:
    """Each example calls the module with every variable the module has no default for."""
    required = {
        name
        for variable in _parse(TERRAFORM)["variable"]
        for name, body in variable.items()
        if "default" not in body
    }
    (call,) = _one(_parse(example), "module").values()
    assert _one(call, "source") == "../.."  # standalone: not a path
    assert required <= set(call), required - set(call)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_tfvars_example_sets_every_required_example_variable(example: Path) -> None:
    """terraform.tfvars.example leaves no required input of its example unset."""
    required = {
        name
        for variable in _parse(example)["variable"]
        for name, body in variable.items()
        if "default" not in body
    }
    with (example / "terraform.tfvars.example").open() as handle:
        tfvars = load_hcl(handle)
    assert required <= set(tfvars), required - set(tfvars)


def test_examples_cover_both_delivery_modes() -> None:
    """One example deploys push, another pull, so checkov and readers see both."""
    modes = set()
    for example in EXAMPLES:
        (call,) = _one(_parse(example), "module").values()
        modes.add(_one(call, "delivery_mode"))
    assert {"pull", "${var.delivery_mode}"} <= modes


# --- tear down ----------------------------------------------------------------------------------


def _teardown_commands() -> list[str]:
    """Return the shell lines of docs/DEPLOY.md's "Tear down" section."""
    section = (ROOT / "docs" / "DEPLOY.md").read_text().split("## Tear down", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "no sh block in the Tear down section"
    return block.group(1).strip().splitlines()


def test_teardown_lifts_deletion_protection_on_the_command_line() -> None:
    """Apply then destroy with -var: nothing is appended to terraform.tfvars, which may set it."""
    commands = _teardown_commands()
    assert [command.split()[:2] for command in commands] == [
        ["terraform", "apply"],
        ["terraform", "destroy"],
    ]
    assert all("-var deletion_protection=false" in command for command in commands)
    assert not any("tfvars" in command for command in commands)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_teardown_works_with_the_copied_tfvars_example(example: Path, tmp_path: Path) -> None:
    """The documented -var overrides a terraform.tfvars copied from the example."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("no terraform binary on PATH to read the variables")
    (call,) = _one(_parse(example), "module").values()
    assert _one(call, "deletion_protection") == "${var.deletion_protection}"
    shutil.copy(example / "variables.tf", tmp_path / "variables.tf")
    shutil.copy(example / "terraform.tfvars.example", tmp_path / "terraform.tfvars")
    override = _teardown_commands()[-1].split("-var ", 1)[1].split()[0]
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [terraform, "console", f"-var={override}"],
        input="var.deletion_protection\n",
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "TF_CLI_CONFIG_FILE": "/dev/null", "HOME": str(tmp_path)},
        timeout=60,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "false"), result.stderr
