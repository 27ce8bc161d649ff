data "google_project" "pipeline" {
  project_id = var.project_id
}

locals {
  push = var.delivery_mode == "push"
  pull = var.delivery_mode == "pull"

  labels = merge(var.labels, { app = var.name })

  trace_project_id = coalesce(var.trace_project_id, var.project_id)
  gcp_metrics      = var.metrics_exporter == "gcp_otlp"
  gcp_exporter     = contains(["gcp_otlp", "gcp_trace"], var.traces_exporter)
  # The Telemetry API files OTLP metrics under a location: the resource must carry one.
  resource_attributes = join(",", compact([
    var.otel_resource_attributes,
    local.gcp_metrics ? "cloud.region=${var.region}" : "",
  ]))
  # Least privilege per exporter: the Telemetry (OTLP) API needs telemetry.traces.write only;
  # the legacy Cloud Trace API needs cloudtrace.traces.patch (roles/cloudtrace.agent).
  trace_writer_role = {
    gcp_otlp  = "roles/telemetry.tracesWriter"
    gcp_trace = "roles/cloudtrace.agent"
    otlp      = null
  }[var.traces_exporter]

  # The Pub/Sub service agent of the subscription's project (service-<number>@gcp-sa-pubsub...):
  # it forwards dead letters and mints the push OIDC tokens. Read from the service identity
  # below, so every grant to it waits until the agent exists.
  pubsub_service_agent = "serviceAccount:${google_project_service_identity.pubsub.email}"

  # Cloud Run's memory range for each vCPU count (https://cloud.google.com/run/docs/configuring/services/cpu,
  # "vCPU and memory"), and the memory asked for, in MiB.
  memory_mib = tonumber(regex("^[0-9]+", var.memory)) * (endswith(var.memory, "Gi") ? 1024 : 1)
  memory_range_mib = {
    "1" = [128, 4096]
    "2" = [128, 8192]
    "4" = [2048, 16384]
    "6" = [4096, 24576]
    "8" = [4096, 32768]
  }[var.cpu]
  # Worker pools run in the second-generation environment, whose minimum is 512 MiB.
  minimum_memory_mib = local.pull ? max(512, local.memory_range_mib[0]) : local.memory_range_mib[0]
  memory_fits_cpu    = local.memory_mib >= local.minimum_memory_mib && local.memory_mib <= local.memory_range_mib[1]

  # Cloud Run's deterministic URL (https://<service>-<project number>.<region>.run.app), known
  # before the service exists: the OIDC audience Pub/Sub puts in push tokens and prowtrace expects,
  # set on the service as a custom audience too, all without a dependency cycle.
  service_name = var.name
  service_url  = "https://${local.service_name}-${data.google_project.pipeline.number}.${var.region}.run.app"

  # Delays between successive deliveries of one message: Pub/Sub's exponential backoff starts at
  # the minimum and doubles up to the maximum. Redeliveries of a message whose artifacts lag span
  # the sum of the first (max_delivery_attempts - 1) delays.
  retry_delays_seconds = [
    for attempt in range(var.max_delivery_attempts - 1) :
    min(var.minimum_backoff_seconds * pow(2, attempt), var.maximum_backoff_seconds)
  ]
  redelivery_window_seconds = sum(concat([0], local.retry_delays_seconds))

  # Requests held for a late artifact cost no CPU but a concurrency slot each: hold up to four
  # fifths of them, keeping a fifth for messages that can be processed now (docs/PERFORMANCE.md).
  push_max_held = floor(var.concurrency * 4 / 5)

  prowtrace_env = merge(
    var.extra_env,
    {
      PROWTRACE_ID_MODE       = var.id_mode
      PROWTRACE_ARTIFACTS     = var.artifacts
      PROWTRACE_GRACE_SECONDS = tostring(var.grace_seconds)
      PROWTRACE_LOG_LEVEL     = var.log_level
      OTEL_SERVICE_NAME       = var.otel_service_name
      OTEL_TRACES_EXPORTER    = var.traces_exporter
    },
    var.max_artifact_bytes == null ? {} : { PROWTRACE_MAX_ARTIFACT_BYTES = tostring(var.max_artifact_bytes) },
    # The buckets granted above are the only ones a message may name (a publisher cannot point
    # the service at any other bucket its account can read).
    var.artifacts == "gcs" && length(var.artifact_buckets) > 0 ? { PROWTRACE_ARTIFACT_BUCKETS = join(",", var.artifact_buckets) } : {},
    { PROWTRACE_TEST_SPANS = var.test_spans ? "on" : "off" },
    local.resource_attributes == "" ? {} : { OTEL_RESOURCE_ATTRIBUTES = local.resource_attributes },
    var.metrics_exporter == "none" ? {} : { OTEL_METRICS_EXPORTER = var.metrics_exporter },
    local.gcp_exporter || local.gcp_metrics ? { GOOGLE_CLOUD_PROJECT = local.trace_project_id } : {},
    var.traces_exporter == "otlp" ? {
      OTEL_EXPORTER_OTLP_ENDPOINT = var.otlp_endpoint
      OTEL_EXPORTER_OTLP_PROTOCOL = var.otlp_protocol
    } : {},
  )

  # cloud-run-iam: Cloud Run's invoker check verifies the push token and removes its signature,
  # and prowtrace checks the claims; oidc: prowtrace verifies the signature itself.
  push_env = {
    PROWTRACE_PUSH_AUTH           = var.invoker_iam_check ? "cloud-run-iam" : "oidc"
    PROWTRACE_PUSH_AUDIENCE       = local.service_url
    PROWTRACE_PUSH_ALLOWED_EMAILS = local.push ? google_service_account.push[0].email : ""
    # A request held for a late artifact must still be answered within the ack deadline (for
    # push, Pub/Sub's request timeout, = request_timeout_seconds): keep 10 s for the processing.
    PROWTRACE_PUSH_HOLD_SECONDS = tostring(max(var.request_timeout_seconds - 10, 0))
    PROWTRACE_PUSH_MAX_HELD     = tostring(local.push_max_held)
  }

  pull_env = merge(
    { PROWTRACE_SUBSCRIPTION = google_pubsub_subscription.prow.id },
    var.max_outstanding_messages == null ? {} : { PROWTRACE_MAX_OUTSTANDING_MESSAGES = tostring(var.max_outstanding_messages) },
    var.max_outstanding_bytes == null ? {} : { PROWTRACE_MAX_OUTSTANDING_BYTES = tostring(var.max_outstanding_bytes) },
  )

  apis = toset(concat(
    [
      "${var.project_id}|iam.googleapis.com",
      "${var.project_id}|pubsub.googleapis.com",
      "${var.project_id}|run.googleapis.com",
    ],
    # Cloud Trace drops spans sent to the Telemetry API unless the Cloud Trace API is enabled too.
    local.gcp_exporter ? [
      "${local.trace_project_id}|cloudtrace.googleapis.com",
      "${local.trace_project_id}|telemetry.googleapis.com",
    ] : [],
    # OTLP metrics sent to the Telemetry API are stored by Cloud Monitoring.
    local.gcp_metrics ? [
      "${local.trace_project_id}|monitoring.googleapis.com",
      "${local.trace_project_id}|telemetry.googleapis.com",
    ] : [],
    var.otlp_headers_secret == null ? [] : ["${split("/", var.otlp_headers_secret)[1]}|secretmanager.googleapis.com"],
  ))
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? local.apis : toset([])

  project = split("|", each.value)[0]
  service = split("|", each.value)[1]
  # Other workloads in these projects may use the same APIs.
  disable_on_destroy = false
}

# Create the Pub/Sub service agent now rather than lazily on first use, so that the IAM grants to
# it (token creator on the push account, the dead-letter roles) cannot race its creation in a
# project that never used Pub/Sub. Only the google-beta provider has this resource.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"

  depends_on = [google_project_service.apis]
}

# Rules that tie several inputs together; checked at plan time, before anything is created.
resource "terraform_data" "input_checks" {
  input = var.delivery_mode

  lifecycle {
    precondition {
      condition     = var.metrics_exporter != "otlp" || var.traces_exporter == "otlp"
      error_message = "metrics_exporter = \"otlp\" sends to otlp_endpoint, which the module sets only with traces_exporter = \"otlp\"; use metrics_exporter = \"gcp_otlp\" for Cloud Monitoring."
    }

    precondition {
      condition     = !(var.id_mode == "uid" && var.artifacts == "none")
      error_message = "id_mode = \"uid\" reads the ProwJob UID from prowjob.json: it needs artifacts = \"gcs\"."
    }

    precondition {
      condition     = var.artifacts == "none" || length(var.artifact_buckets) > 0 || !var.manage_artifact_bucket_iam
      error_message = "artifacts = \"gcs\" needs the Prow artifact bucket names in artifact_buckets (or manage_artifact_bucket_iam = false if the read access is granted outside this module)."
    }

    precondition {
      condition     = var.traces_exporter != "otlp" || var.otlp_endpoint != null
      error_message = "traces_exporter = \"otlp\" needs otlp_endpoint."
    }

    precondition {
      condition     = var.otlp_headers_secret == null || var.traces_exporter == "otlp"
      error_message = "otlp_headers_secret only applies to traces_exporter = \"otlp\" (the gcp_* exporters authenticate with the runtime service account)."
    }

    precondition {
      condition     = local.pull || (var.min_instances <= var.max_instances)
      error_message = "min_instances must not exceed max_instances."
    }

    precondition {
      condition     = local.memory_fits_cpu
      error_message = "Cloud Run accepts memory from ${local.minimum_memory_mib}Mi to ${local.memory_range_mib[1]}Mi with cpu = \"${var.cpu}\"${local.pull ? " in a worker pool" : ""}; memory = \"${var.memory}\" is outside that range (more memory needs more vCPUs, more vCPUs need more memory)."
    }
  }
}
