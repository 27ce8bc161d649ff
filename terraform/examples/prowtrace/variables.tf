variable "project_id" {
  type        = string
  description = "Project that hosts the pipeline (subscription, Cloud Run, service accounts)."
}

variable "region" {
  type        = string
  description = "Cloud Run region, e.g. \"us-central1\"."
}

variable "image" {
  type        = string
  description = "The prowtrace image pushed to Artifact Registry, with a tag or digest."
}

variable "topic_id" {
  type        = string
  description = "Full ID of crier's existing topic, \"projects/<prow-project>/topics/<topic>\"."
}

variable "delivery_mode" {
  type        = string
  default     = "push"
  description = "\"push\" (Cloud Run service) or \"pull\" (Cloud Run worker pool)."
}

variable "artifact_buckets" {
  type        = list(string)
  description = "Prow artifact bucket names (no gs://)."
}

variable "manage_artifact_bucket_iam" {
  type        = bool
  default     = true
  description = "Grant the runtime account objectViewer on artifact_buckets; false when a Prow admin grants it (docs/DEPLOY.md)."
}

variable "traces_exporter" {
  type        = string
  default     = "gcp_otlp"
  description = "\"gcp_otlp\" (Cloud Trace via the Telemetry API), \"gcp_trace\" (legacy Cloud Trace API) or \"otlp\"."
}

variable "trace_project_id" {
  type        = string
  default     = null
  description = "Project that receives the traces; null means project_id."
}

variable "otlp_endpoint" {
  type        = string
  default     = null
  description = "OTLP endpoint URL when traces_exporter = \"otlp\"."
}

variable "otlp_protocol" {
  type        = string
  default     = "grpc"
  description = "\"grpc\" or \"http/protobuf\" when traces_exporter = \"otlp\"."
}

variable "otlp_headers_secret" {
  type        = string
  default     = null
  description = "Secret Manager secret holding OTEL_EXPORTER_OTLP_HEADERS, \"projects/<project>/secrets/<name>\"."
}

variable "invoker_iam_check" {
  type        = bool
  default     = true
  description = "Keep Cloud Run's invoker IAM check on (prowtrace then checks the claims of the token Cloud Run verified); false makes prowtrace verify Google's signature itself."
}

variable "ingress" {
  type        = string
  default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  description = "Cloud Run ingress: internal only admits this project's Pub/Sub push; INGRESS_TRAFFIC_ALL to call the service from outside Google Cloud."
}

variable "grace_seconds" {
  type        = number
  default     = 300
  description = "How long prowtrace waits (by nacking) for late artifacts."
}

variable "max_delivery_attempts" {
  type        = number
  default     = 10
  description = "Deliveries before a message is dead-lettered; must cover grace_seconds."
}

variable "deletion_protection" {
  type        = bool
  default     = true
  description = "Protect the Cloud Run service or worker pool from `terraform destroy`."
}
