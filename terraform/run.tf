locals {
  # OTEL_EXPORTER_OTLP_HEADERS is only ever a Cloud Run secret reference (never a plain value).
  # A secret in the pipeline's own project is referenced by its short name, one elsewhere by ID.
  otlp_headers_secret_ref = var.otlp_headers_secret == null ? null : (
    split("/", var.otlp_headers_secret)[1] == var.project_id
    ? split("/", var.otlp_headers_secret)[3]
    : var.otlp_headers_secret
  )
}

# Push mode: the Pub/Sub push endpoint (`prowtrace serve`).
resource "google_cloud_run_v2_service" "push" {
  count = local.push ? 1 : 0

  project             = var.project_id
  name                = local.service_name
  location            = var.region
  ingress             = var.ingress
  deletion_protection = var.deletion_protection
  labels              = local.labels
  # On (the default): Cloud Run lets only principals with roles/run.invoker call the service,
  # verifies their token and forwards it with the signature removed (prowtrace is told with
  # PROWTRACE_PUSH_AUTH=cloud-run-iam). Off: anyone the ingress admits reaches prowtrace, which
  # then verifies Google's signature itself (PROWTRACE_PUSH_AUTH=oidc).
  invoker_iam_disabled = !var.invoker_iam_check
  # The push tokens' audience. Cloud Run accepts its own URLs as audiences anyway, and reports the
  # deterministic one as its uri; declaring it makes the token valid whichever URL it reports.
  custom_audiences = [local.service_url]

  template {
    service_account                  = google_service_account.runtime.email
    timeout                          = "${var.request_timeout_seconds}s"
    max_instance_request_concurrency = var.concurrency
    labels                           = local.labels

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    containers {
      image = var.image
      args  = ["serve"]

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        # Request-based billing: CPU only while a push request is in flight.
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = merge(local.prowtrace_env, local.push_env)
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = local.otlp_headers_secret_ref == null ? [] : [local.otlp_headers_secret_ref]
        content {
          name = "OTEL_EXPORTER_OTLP_HEADERS"
          value_source {
            secret_key_ref {
              secret  = env.value
              version = var.otlp_headers_secret_version
            }
          }
        }
      }

      startup_probe {
        http_get {
          path = "/readyz"
        }
        period_seconds    = 3
        timeout_seconds   = 2
        failure_threshold = 20
      }

      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 30
        timeout_seconds   = 5
        failure_threshold = 3
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_iam_member.otlp_headers,
  ]
}

# Pull mode: `prowtrace pull` on a Cloud Run worker pool (no HTTP endpoint, always on).
resource "google_cloud_run_v2_worker_pool" "pull" {
  count = local.pull ? 1 : 0

  project             = var.project_id
  name                = local.service_name
  location            = var.region
  deletion_protection = var.deletion_protection
  labels              = local.labels

  scaling {
    scaling_mode          = "MANUAL"
    manual_instance_count = var.worker_instances
  }

  template {
    service_account = google_service_account.runtime.email
    labels          = local.labels

    containers {
      image = var.image
      args  = ["pull"]

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
      }

      dynamic "env" {
        for_each = merge(local.prowtrace_env, local.pull_env)
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = local.otlp_headers_secret_ref == null ? [] : [local.otlp_headers_secret_ref]
        content {
          name = "OTEL_EXPORTER_OTLP_HEADERS"
          value_source {
            secret_key_ref {
              secret  = env.value
              version = var.otlp_headers_secret_version
            }
          }
        }
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_pubsub_subscription_iam_member.runtime_pull,
    google_secret_manager_secret_iam_member.otlp_headers,
  ]
}
