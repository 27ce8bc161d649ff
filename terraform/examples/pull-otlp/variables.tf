variable "project_id" {
  type        = string
  description = "Project that hosts the pipeline (subscription, worker pool, service accounts)."
}

variable "region" {
  type        = string
  description = "Cloud Run region, e.g. \"europe-west1\"."
}

variable "image" {
  type        = string
  description = "The prowtrace image pushed to Artifact Registry, with a tag or digest."
}

variable "topic_id" {
  type        = string
  description = "Full ID of crier's existing topic, \"projects/<prow-project>/topics/<topic>\"."
}

variable "artifact_buckets" {
  type        = list(string)
  description = "Prow artifact bucket names (no gs://)."
}

variable "worker_instances" {
  type        = number
  default     = 1
  description = "Worker-pool instances pulling the subscription."
}

variable "otlp_endpoint" {
  type        = string
  description = "OTLP endpoint URL of the tracing backend."
}

variable "otlp_protocol" {
  type        = string
  default     = "grpc"
  description = "\"grpc\" or \"http/protobuf\"."
}

variable "otlp_headers_secret" {
  type        = string
  description = "Secret Manager secret holding OTEL_EXPORTER_OTLP_HEADERS, \"projects/<project>/secrets/<name>\"."
}

variable "deletion_protection" {
  type        = bool
  default     = true
  description = "Protect the worker pool from `terraform destroy`; `terraform destroy -var deletion_protection=false` lifts it (docs/DEPLOY.md, \"Tear down\")."
}
