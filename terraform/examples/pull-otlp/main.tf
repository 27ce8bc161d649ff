# The pull variant: a Cloud Run worker pool streaming-pulls the subscription, and spans go to a
# third-party OTLP backend whose auth headers live in Secret Manager. Create the secret first
# (docs/DEPLOY.md, "Another OTLP backend"); its value is the OTEL_EXPORTER_OTLP_HEADERS string.
module "prowtrace" {
  source = "../.."

  project_id       = var.project_id
  region           = var.region
  image            = var.image
  topic_id         = var.topic_id
  artifact_buckets = var.artifact_buckets

  delivery_mode    = "pull"
  worker_instances = var.worker_instances

  traces_exporter     = "otlp"
  otlp_endpoint       = var.otlp_endpoint
  otlp_protocol       = var.otlp_protocol
  otlp_headers_secret = var.otlp_headers_secret

  deletion_protection = var.deletion_protection
}
