# Messages Pub/Sub gives up on land here. A topic without a subscription drops what it receives,
# so the dead-letter topic always comes with its own (pull) subscription to inspect or replay them
# (docs/DEPLOY.md: "Dead letters").
resource "google_pubsub_topic" "dead_letter" {
  # checkov:skip=CKV_GCP_83:CMEK is opt-in through var.kms_key_name; dead letters are crier's job-state messages (job names, refs, artifact URLs), which Google-managed encryption protects like the Prow topic they come from
  project      = var.project_id
  name         = "${var.name}-dead-letter"
  labels       = local.labels
  kms_key_name = var.kms_key_name

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "dead_letter" {
  project = var.project_id
  name    = "${var.name}-dead-letter"
  topic   = google_pubsub_topic.dead_letter.id
  labels  = local.labels

  ack_deadline_seconds       = 60
  message_retention_duration = "${var.dead_letter_retention_seconds}s"

  # Never delete it for inactivity: it is read only when something went wrong.
  expiration_policy {
    ttl = ""
  }
}

# The subscription on crier's existing topic, possibly in another project.
resource "google_pubsub_subscription" "prow" {
  project = var.project_id
  name    = "${var.name}-prowjobs"
  topic   = var.topic_id
  labels  = local.labels

  # For push this is also Pub/Sub's HTTP timeout: equal to the Cloud Run request timeout, so a
  # request still being served is never redelivered in parallel, nor cut short.
  ack_deadline_seconds       = var.request_timeout_seconds
  message_retention_duration = "${var.message_retention_seconds}s"

  # No redelivery after a successful ack or while leased (docs/RELIABILITY.md: what it removes).
  enable_exactly_once_delivery = var.exactly_once_delivery

  expiration_policy {
    ttl = ""
  }

  # prowtrace holds a message whose artifacts are not written yet rather than nacking it; it nacks
  # on outages, on shutdown, and (push) when a file is later than one request may wait.
  # Exponential backoff spaces out those redeliveries (see local.redelivery_window_seconds and
  # the precondition below, which still matters for push).
  retry_policy {
    minimum_backoff = "${var.minimum_backoff_seconds}s"
    maximum_backoff = "${var.maximum_backoff_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # Push: to the Cloud Run service's URL, with a Google-signed OIDC token of the dedicated push
  # service account whose audience is the service's (deterministic) URL. Cloud Run checks the
  # token, and so does prowtrace. Pull: no push_config; the worker pool pulls.
  dynamic "push_config" {
    for_each = local.push ? ["push"] : []
    content {
      push_endpoint = google_cloud_run_v2_service.push[0].uri

      oidc_token {
        service_account_email = google_service_account.push[0].email
        audience              = local.service_url
      }
    }
  }

  lifecycle {
    precondition {
      condition     = local.pull || !var.exactly_once_delivery
      error_message = "exactly_once_delivery needs delivery_mode = \"pull\": Pub/Sub supports exactly-once delivery on pull subscriptions only."
    }

    precondition {
      condition     = var.maximum_backoff_seconds >= var.minimum_backoff_seconds
      error_message = "maximum_backoff_seconds must not be smaller than minimum_backoff_seconds."
    }

    precondition {
      condition     = local.redelivery_window_seconds >= var.grace_seconds
      error_message = "The retry policy and max_delivery_attempts would dead-letter a message after about ${local.redelivery_window_seconds}s of redeliveries, before grace_seconds (${var.grace_seconds}s) have passed: messages whose artifacts arrive late would be dead-lettered instead of processed. Raise max_delivery_attempts or the backoff, or lower grace_seconds."
    }
  }

  # Push starts as soon as the subscription exists: let the invoker grant land first so the first
  # deliveries are not refused.
  depends_on = [google_cloud_run_v2_service_iam_member.push_invoker]
}
