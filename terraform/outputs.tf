output "subscription_id" {
  description = "Full ID of the subscription on the Prow topic (the one prowtrace consumes)."
  value       = google_pubsub_subscription.prow.id
}

output "dead_letter_topic_id" {
  description = "Full ID of the dead-letter topic."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription_id" {
  description = "Full ID of the dead-letter topic's subscription: inspect with `gcloud pubsub subscriptions pull`, or replay with `prowtrace pull --subscription <this>`."
  value       = google_pubsub_subscription.dead_letter.id
}

output "service_url" {
  description = "Push mode: URL of the Cloud Run service, which is also the push endpoint and the OIDC audience. null in pull mode."
  value       = local.push ? google_cloud_run_v2_service.push[0].uri : null
}

output "service_name" {
  description = "Name of the Cloud Run service (push) or worker pool (pull)."
  value       = local.push ? google_cloud_run_v2_service.push[0].name : google_cloud_run_v2_worker_pool.pull[0].name
}

output "runtime_service_account" {
  description = "Email of the service account prowtrace runs as (grant it objectViewer on artifact buckets managed elsewhere)."
  value       = google_service_account.runtime.email
}

output "push_service_account" {
  description = "Push mode: email of the service account in the push requests' OIDC token. null in pull mode."
  value       = local.push ? google_service_account.push[0].email : null
}

output "pubsub_service_agent" {
  description = "The Pub/Sub service agent of project_id, which holds the dead-lettering grants."
  value       = trimprefix(local.pubsub_service_agent, "serviceAccount:")
}

output "redelivery_window_seconds" {
  description = "Approximate time from a message's first delivery to its dead-lettering, given the retry policy and max_delivery_attempts; always at least grace_seconds."
  value       = local.redelivery_window_seconds
}

output "trace_url_template" {
  description = "Cloud Trace link for one job: replace TRACE_ID with the ProwJob UID (PROW_JOB_ID) without dashes. null for a third-party OTLP backend."
  value       = local.gcp_exporter ? "https://console.cloud.google.com/traces/explorer;traceId=TRACE_ID?project=${local.trace_project_id}" : null
}
