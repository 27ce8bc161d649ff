# The whole pipeline from crier's topic to Cloud Trace (or any OTLP backend) in one module call.
# Copy terraform.tfvars.example to terraform.tfvars, fill it in, then `terraform init && terraform
# apply` (docs/DEPLOY.md walks through every value).
module "prowtrace" {
  source = "../.."

  project_id       = var.project_id
  region           = var.region
  image            = var.image
  topic_id         = var.topic_id
  delivery_mode    = var.delivery_mode
  artifact_buckets = var.artifact_buckets

  manage_artifact_bucket_iam = var.manage_artifact_bucket_iam

  traces_exporter     = var.traces_exporter
  trace_project_id    = var.trace_project_id
  otlp_endpoint       = var.otlp_endpoint
  otlp_protocol       = var.otlp_protocol
  otlp_headers_secret = var.otlp_headers_secret

  invoker_iam_check = var.invoker_iam_check
  ingress           = var.ingress

  grace_seconds         = var.grace_seconds
  max_delivery_attempts = var.max_delivery_attempts
  deletion_protection   = var.deletion_protection
}
