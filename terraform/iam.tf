# Every grant is additive (*_iam_member) and scoped to the one resource that needs it: this module
# never takes over a resource's whole IAM policy.

# Identity of prowtrace itself (service or worker pool).
resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "${var.name}-runtime"
  display_name = "prowtrace runtime (${var.name})"
  description  = "Runs prowtrace: reads Prow artifacts, writes traces and logs."

  depends_on = [google_project_service.apis]
}

# Identity Pub/Sub signs push requests as; it can do nothing but invoke this one service.
resource "google_service_account" "push" {
  count = local.push ? 1 : 0

  project      = var.project_id
  account_id   = "${var.name}-pusher"
  display_name = "prowtrace Pub/Sub push (${var.name})"
  description  = "Identity in the OIDC token of Pub/Sub push requests to the prowtrace service."

  depends_on = [google_project_service.apis]
}

# --- push authentication ---------------------------------------------------------------------

resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  count = local.push ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.push[0].name
  role     = "roles/run.invoker"
  member   = google_service_account.push[0].member
}

# Pub/Sub's service agent mints the OIDC tokens for the push service account. Projects created
# after April 2021 have this implicitly; older ones need it, and it is scoped to this one account.
# The agent comes from google_project_service_identity.pubsub (main.tf), so this grant never races
# the agent's creation in a project that never used Pub/Sub.
resource "google_service_account_iam_member" "pubsub_agent_signs_push_tokens" {
  count = local.push ? 1 : 0

  service_account_id = google_service_account.push[0].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# --- dead lettering (the Pub/Sub service agent moves messages) --------------------------------

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_forwarder" {
  project      = var.project_id
  subscription = google_pubsub_subscription.prow.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# --- runtime service account -----------------------------------------------------------------

# Pull mode only: consume this subscription, and nothing else in Pub/Sub.
resource "google_pubsub_subscription_iam_member" "runtime_pull" {
  count = local.pull ? 1 : 0

  project      = var.project_id
  subscription = google_pubsub_subscription.prow.name
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.runtime.member
}

# Read and list (never write) the Prow artifacts. The list permission matters: with it GCS
# answers 404 for an artifact not written yet, which prowtrace waits for within the grace period;
# without it the same read answers 403, a permission error.
resource "google_storage_bucket_iam_member" "artifact_reader" {
  for_each = var.manage_artifact_bucket_iam ? toset(var.artifact_buckets) : toset([])

  bucket = each.value
  role   = "roles/storage.objectViewer"
  member = google_service_account.runtime.member
}

# Write spans: telemetry.traces.write for the Telemetry (OTLP) API, cloudtrace.traces.patch for
# the legacy Cloud Trace API. Nothing for a third-party OTLP backend.
resource "google_project_iam_member" "trace_writer" {
  count = local.trace_writer_role == null ? 0 : 1

  project = local.trace_project_id
  role    = local.trace_writer_role
  member  = google_service_account.runtime.member
}

# Write the CI/CD metrics through the Telemetry (OTLP) API: telemetry.metrics.write, nothing more.
resource "google_project_iam_member" "metrics_writer" {
  count = local.gcp_metrics ? 1 : 0

  project = local.trace_project_id
  role    = "roles/telemetry.metricsWriter"
  member  = google_service_account.runtime.member
}

# No logging role: prowtrace logs to stdout/stderr, which Cloud Run itself sends to Cloud
# Logging (https://cloud.google.com/run/docs/logging); nothing calls the Logging API.

# Read the OTLP headers, from this one secret only.
resource "google_secret_manager_secret_iam_member" "otlp_headers" {
  count = var.otlp_headers_secret == null ? 0 : 1

  secret_id = var.otlp_headers_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.runtime.member
}
