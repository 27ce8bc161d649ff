# ---------------------------------------------------------------------------------------------
# Where the pipeline runs and what it reads
# ---------------------------------------------------------------------------------------------

variable "project_id" {
  type        = string
  description = "ID of the GCP project that hosts the pipeline: the subscription, the dead-letter topic, the Cloud Run service or worker pool and the service accounts. May differ from the project of the Prow topic."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a GCP project ID (6-30 lowercase letters, digits and hyphens), not a project number or name."
  }
}

variable "region" {
  type        = string
  description = "Cloud Run region for the service or worker pool, e.g. \"us-central1\". Put it near the Prow artifact bucket to avoid cross-region reads."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region such as \"us-central1\" (not a zone, not a multi-region)."
  }
}

variable "name" {
  type        = string
  default     = "prowtrace"
  description = "Prefix of every resource name (service, worker pool, subscriptions, topic, service accounts). 3-22 characters so that \"<name>-runtime\" fits the 30-character service-account limit."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}[a-z0-9]$", var.name))
    error_message = "name must be 3-22 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen."
  }
}

variable "image" {
  type        = string
  description = "Container image built from this repository's Dockerfile, e.g. \"us-central1-docker.pkg.dev/my-project/prowtrace/prowtrace:0.1.0\". Prefer a digest (\"...@sha256:...\") so every revision runs the bytes you tested."

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^ ]+(:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$", var.image))
    error_message = "image must be a full reference with registry host and an explicit tag or @sha256 digest, e.g. us-central1-docker.pkg.dev/PROJECT/REPO/prowtrace:0.1.0."
  }
}

variable "topic_id" {
  type        = string
  description = "Full ID of the EXISTING Pub/Sub topic crier publishes to, \"projects/<prow-project>/topics/<topic>\" (the values of the jobs' prow.k8s.io/pubsub.project and prow.k8s.io/pubsub.topic annotations). It may live in another project; whoever runs terraform then needs roles/pubsub.subscriber on that topic (see docs/DEPLOY.md)."

  validation {
    condition     = can(regex("^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$", var.topic_id))
    error_message = "topic_id must be the full topic ID \"projects/PROJECT_ID/topics/TOPIC\"."
  }
}

variable "delivery_mode" {
  type        = string
  default     = "push"
  description = "\"push\": a Cloud Run service receives Pub/Sub push requests authenticated with an OIDC token (scales to zero). \"pull\": a Cloud Run worker pool runs `prowtrace pull` (streaming pull, always on)."

  validation {
    condition     = contains(["push", "pull"], var.delivery_mode)
    error_message = "delivery_mode must be \"push\" or \"pull\"."
  }
}

variable "artifact_buckets" {
  type        = list(string)
  default     = []
  description = "Names (no gs:// prefix) of the GCS buckets holding the Prow job artifacts (prowjob.json, started.json, finished.json, podinfo.json, ...). The runtime service account gets roles/storage.objectViewer on each, and nothing else in them."

  validation {
    condition     = alltrue([for b in var.artifact_buckets : can(regex("^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$", b))])
    error_message = "artifact_buckets must hold bare bucket names such as \"kubernetes-jenkins\", without gs:// or a path."
  }
}

variable "manage_artifact_bucket_iam" {
  type        = bool
  default     = true
  description = "Create the objectViewer grants on artifact_buckets. Set to false when whoever runs terraform cannot change those buckets' IAM (e.g. they belong to the Prow admins, who then grant the runtime_service_account output by hand), or when the buckets are public."
}

# ---------------------------------------------------------------------------------------------
# prowtrace behaviour (environment of the container)
# ---------------------------------------------------------------------------------------------

variable "id_mode" {
  type        = string
  default     = "uid"
  description = "PROWTRACE_ID_MODE. \"uid\": trace ID = ProwJob UID (PROW_JOB_ID) read from prowjob.json, the ID jobs can compute themselves; needs artifacts. \"build-id\": trace ID derived from the build ID in the message alone."

  validation {
    condition     = contains(["uid", "build-id"], var.id_mode)
    error_message = "id_mode must be \"uid\" or \"build-id\"."
  }
}

variable "artifacts" {
  type        = string
  default     = "gcs"
  description = "PROWTRACE_ARTIFACTS. \"gcs\": read the job artifacts from GCS with the runtime service account. \"none\": build traces from the messages alone (only with id_mode = \"build-id\")."

  validation {
    condition     = contains(["gcs", "none"], var.artifacts)
    error_message = "artifacts must be \"gcs\" or \"none\" (a local mirror directory makes no sense on Cloud Run)."
  }
}

variable "grace_seconds" {
  type        = number
  default     = 300
  description = "PROWTRACE_GRACE_SECONDS: for how long after a message's publish time prowtrace waits for the artifacts crier's GCS reporter writes after the message (prowjob.json, podinfo.json). It holds the message meanwhile and re-checks about every second (pull: for the whole window, the lease kept extended; push: within one request for up to request_timeout_seconds - 10, then it nacks and the retry policy redelivers). After that it processes the message with what it has. The retry policy and max_delivery_attempts must let redeliveries span this window (checked at plan time)."

  validation {
    condition     = var.grace_seconds >= 0 && var.grace_seconds <= 86400 && floor(var.grace_seconds) == var.grace_seconds
    error_message = "grace_seconds must be a whole number of seconds between 0 and 86400."
  }
}

variable "max_artifact_bytes" {
  type        = number
  default     = null
  description = "PROWTRACE_MAX_ARTIFACT_BYTES: largest artifact prowtrace will download; null keeps prowtrace's built-in default."

  validation {
    condition     = var.max_artifact_bytes == null ? true : var.max_artifact_bytes > 0
    error_message = "max_artifact_bytes must be positive (or null for the default)."
  }
}

variable "test_spans" {
  type        = bool
  default     = true
  description = "PROWTRACE_TEST_SPANS: spans for each finished job's JUnit results (one Cloud Storage listing, a Class A operation, per job); false for the cheapest path."
}

variable "log_level" {
  type        = string
  default     = "INFO"
  description = "PROWTRACE_LOG_LEVEL."

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "max_outstanding_messages" {
  type        = number
  default     = null
  description = "Pull mode only: PROWTRACE_MAX_OUTSTANDING_MESSAGES, the streaming-pull flow control per instance; null keeps prowtrace's default."

  validation {
    condition     = var.max_outstanding_messages == null ? true : var.max_outstanding_messages >= 1
    error_message = "max_outstanding_messages must be at least 1 (or null)."
  }
}

variable "max_outstanding_bytes" {
  type        = number
  default     = null
  description = "Pull mode only: PROWTRACE_MAX_OUTSTANDING_BYTES, the streaming-pull flow control per instance; null keeps prowtrace's default."

  validation {
    condition     = var.max_outstanding_bytes == null ? true : var.max_outstanding_bytes >= 1024
    error_message = "max_outstanding_bytes must be at least 1024 (or null)."
  }
}

variable "extra_env" {
  type        = map(string)
  default     = {}
  description = "Additional plain environment variables for the container (e.g. OTEL_BSP_* tuning). Not for secrets: OTLP headers come from Secret Manager (otlp_headers_secret), and the variables this module sets itself cannot be overridden here."

  validation {
    condition     = alltrue([for k in keys(var.extra_env) : !can(regex("(?i)(HEADERS|SECRET|TOKEN|PASSWORD|CREDENTIALS|_KEY$)", k))])
    error_message = "extra_env must not carry secrets (names with HEADERS, SECRET, TOKEN, PASSWORD, CREDENTIALS or ending in _KEY): put OTLP headers in Secret Manager and set otlp_headers_secret."
  }
}

# ---------------------------------------------------------------------------------------------
# Exporter
# ---------------------------------------------------------------------------------------------

variable "traces_exporter" {
  type        = string
  default     = "gcp_otlp"
  description = "OTEL_TRACES_EXPORTER. \"gcp_otlp\" (recommended): Cloud Trace through the Telemetry API's OTLP endpoint telemetry.googleapis.com with the runtime service account (role roles/telemetry.tracesWriter). \"gcp_trace\": the legacy Cloud Trace API exporter (role roles/cloudtrace.agent). \"otlp\": any OTLP backend at otlp_endpoint, with headers from Secret Manager."

  validation {
    condition     = contains(["gcp_otlp", "gcp_trace", "otlp"], var.traces_exporter)
    error_message = "traces_exporter must be \"gcp_otlp\", \"gcp_trace\" or \"otlp\"."
  }
}

variable "trace_project_id" {
  type        = string
  default     = null
  description = "Project that receives the traces in Cloud Trace (GOOGLE_CLOUD_PROJECT) and in which the runtime service account gets the trace-writing role; null means project_id. Ignored for traces_exporter = \"otlp\"."

  validation {
    condition     = var.trace_project_id == null ? true : can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.trace_project_id))
    error_message = "trace_project_id must be a GCP project ID (or null)."
  }
}

variable "otlp_endpoint" {
  type        = string
  default     = null
  description = "OTEL_EXPORTER_OTLP_ENDPOINT for traces_exporter = \"otlp\", e.g. \"https://otlp.example.com:4317\" (gRPC) or \"https://otlp.example.com\" (http/protobuf; the SDK appends /v1/traces). Required in that mode."

  validation {
    condition     = var.otlp_endpoint == null ? true : can(regex("^https?://[^ ]+$", var.otlp_endpoint))
    error_message = "otlp_endpoint must be an http(s) URL."
  }
}

variable "otlp_protocol" {
  type        = string
  default     = "grpc"
  description = "OTEL_EXPORTER_OTLP_PROTOCOL for traces_exporter = \"otlp\"."

  validation {
    condition     = contains(["grpc", "http/protobuf"], var.otlp_protocol)
    error_message = "otlp_protocol must be \"grpc\" or \"http/protobuf\"."
  }
}

variable "otlp_headers_secret" {
  type        = string
  default     = null
  description = "Secret Manager secret whose value is OTEL_EXPORTER_OTLP_HEADERS (e.g. \"x-api-key=...\"), as a full ID \"projects/<project>/secrets/<secret>\". Injected as a Cloud Run secret environment variable; the runtime service account gets roles/secretmanager.secretAccessor on this secret only. null: no headers."

  validation {
    condition     = var.otlp_headers_secret == null ? true : can(regex("^projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255}$", var.otlp_headers_secret))
    error_message = "otlp_headers_secret must be a full secret ID \"projects/PROJECT/secrets/SECRET\" (not a version)."
  }
}

variable "otlp_headers_secret_version" {
  type        = string
  default     = "latest"
  description = "Version of otlp_headers_secret to inject: \"latest\" or a version number. A pinned number makes a header rotation an explicit deploy."

  validation {
    condition     = can(regex("^(latest|[1-9][0-9]*)$", var.otlp_headers_secret_version))
    error_message = "otlp_headers_secret_version must be \"latest\" or a positive integer."
  }
}

variable "otel_service_name" {
  type        = string
  default     = "prow"
  description = "OTEL_SERVICE_NAME: the service.name of every span prowtrace emits. The spans describe Prow's jobs, so prowtrace's own default is \"prow\"."

  validation {
    condition     = length(var.otel_service_name) > 0
    error_message = "otel_service_name must not be empty."
  }
}

variable "otel_resource_attributes" {
  type        = string
  default     = ""
  description = "OTEL_RESOURCE_ATTRIBUTES, e.g. \"deployment.environment.name=prod,prow.instance=prow.k8s.io\"; empty sets nothing."
}

variable "metrics_exporter" {
  type        = string
  default     = "none"
  description = "OTEL_METRICS_EXPORTER for the CI/CD metrics (job durations, queue times, errors). \"none\" (default): no metrics. \"gcp_otlp\": Cloud Monitoring through the Telemetry API's OTLP endpoint, in trace_project_id (role roles/telemetry.metricsWriter; cloud.region is added to the resource). \"otlp\": the OTLP backend at otlp_endpoint (traces_exporter = \"otlp\")."

  validation {
    condition     = contains(["none", "gcp_otlp", "otlp"], var.metrics_exporter)
    error_message = "metrics_exporter must be \"none\", \"gcp_otlp\" or \"otlp\"."
  }
}

# ---------------------------------------------------------------------------------------------
# Pub/Sub delivery
# ---------------------------------------------------------------------------------------------

variable "exactly_once_delivery" {
  type        = bool
  default     = false
  description = "Pull mode only: enable Pub/Sub exactly-once delivery on the subscription. It stops redelivery of a message after a successful ack or while it is leased, so metric counts no longer include those duplicates; it does not remove crier publishing one state twice (two message IDs), redeliveries after a nack or an expired lease (a killed worker); it holds within one region, keyed by Pub/Sub's message ID. docs/RELIABILITY.md has the figures."
}

variable "request_timeout_seconds" {
  type        = number
  default     = 120
  description = "Longest time one message may take. Used both as the Cloud Run request timeout and as the subscription's ack deadline (for push, Pub/Sub's request timeout), so Pub/Sub never redelivers a message the service is still working on. Push holds a request for a late artifact for up to this minus 10 s: 120 covers a file a minute late (docs/PERFORMANCE.md, Freshness); a longer value also delays the redelivery of a request lost with its instance."

  validation {
    condition     = var.request_timeout_seconds >= 10 && var.request_timeout_seconds <= 600 && floor(var.request_timeout_seconds) == var.request_timeout_seconds
    error_message = "request_timeout_seconds must be a whole number from 10 to 600 (Pub/Sub's ack deadline range)."
  }
}

variable "minimum_backoff_seconds" {
  type        = number
  default     = 10
  description = "Retry policy: delay before the first redelivery of a nacked (or timed-out) message. Pub/Sub doubles it on each further attempt up to maximum_backoff_seconds. prowtrace no longer nacks a message whose artifacts are merely late (it holds it), so nacks mean an outage (storage, exporter), a push request held past its bound, or a shutdown: backing off is right for those."

  validation {
    condition     = var.minimum_backoff_seconds >= 0 && var.minimum_backoff_seconds <= 600
    error_message = "minimum_backoff_seconds must be between 0 and 600."
  }
}

variable "maximum_backoff_seconds" {
  type        = number
  default     = 600
  description = "Retry policy: the largest delay between two deliveries of a message."

  validation {
    condition     = var.maximum_backoff_seconds >= 0 && var.maximum_backoff_seconds <= 600
    error_message = "maximum_backoff_seconds must be between 0 and 600."
  }
}

variable "max_delivery_attempts" {
  type        = number
  default     = 10
  description = "Dead-letter policy: deliveries of a message before Pub/Sub moves it to the dead-letter topic. With the retry backoff it must cover grace_seconds, or messages whose artifacts arrive late are dead-lettered before prowtrace stops waiting for them (a plan-time precondition checks this)."

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number from 5 to 100 (Pub/Sub's limits)."
  }
}

variable "message_retention_seconds" {
  type        = number
  default     = 604800
  description = "How long the subscription keeps unacknowledged messages (e.g. while the service is down). Default 7 days."

  validation {
    condition     = var.message_retention_seconds >= 600 && var.message_retention_seconds <= 2678400
    error_message = "message_retention_seconds must be between 600 (10 minutes) and 2678400 (31 days)."
  }
}

variable "dead_letter_retention_seconds" {
  type        = number
  default     = 2678400
  description = "How long the dead-letter subscription keeps messages for inspection or replay. Default 31 days, Pub/Sub's maximum."

  validation {
    condition     = var.dead_letter_retention_seconds >= 600 && var.dead_letter_retention_seconds <= 2678400
    error_message = "dead_letter_retention_seconds must be between 600 and 2678400."
  }
}

# ---------------------------------------------------------------------------------------------
# Cloud Run sizing
# ---------------------------------------------------------------------------------------------

variable "cpu" {
  type        = string
  default     = "1"
  description = "vCPUs per instance (Cloud Run accepts \"1\", \"2\", \"4\", \"6\", \"8\")."

  validation {
    condition     = contains(["1", "2", "4", "6", "8"], var.cpu)
    error_message = "cpu must be one of \"1\", \"2\", \"4\", \"6\", \"8\"."
  }
}

variable "memory" {
  type        = string
  default     = "512Mi"
  description = "Memory per instance as a Kubernetes quantity, e.g. \"512Mi\" or \"1Gi\". Cloud Run's range depends on cpu (1 vCPU: 128Mi-4Gi, 2: 128Mi-8Gi, 4: 2Gi-16Gi, 6: 4Gi-24Gi, 8: 4Gi-32Gi; worker pools at least 512Mi), checked at plan time."

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.memory))
    error_message = "memory must look like \"512Mi\" or \"2Gi\"."
  }
}

variable "invoker_iam_check" {
  type        = bool
  default     = true
  description = "Push mode: keep Cloud Run's invoker IAM check on (only principals with roles/run.invoker may call the service; Cloud Run verifies the push token and forwards it with its signature removed, and prowtrace checks its claims: PROWTRACE_PUSH_AUTH=cloud-run-iam). false turns the check off (invoker_iam_disabled) and prowtrace verifies Google's signature itself (PROWTRACE_PUSH_AUTH=oidc); organisations whose policy forbids disabling the check keep the default."
}

variable "concurrency" {
  type        = number
  default     = 80
  description = "Push mode: concurrent push requests per instance. Each request is mostly waiting on GCS and the exporter, so one vCPU handles many."

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000
    error_message = "concurrency must be between 1 and 1000."
  }
}

variable "min_instances" {
  type        = number
  default     = 0
  description = "Push mode: instances kept warm. 0 scales to zero between jobs (cold starts only delay a message by a second or two)."

  validation {
    condition     = var.min_instances >= 0
    error_message = "min_instances must not be negative."
  }
}

variable "max_instances" {
  type        = number
  default     = 10
  description = "Push mode: upper bound on instances, which also bounds the request rate on the artifact bucket and the exporter."

  validation {
    condition     = var.max_instances >= 1
    error_message = "max_instances must be at least 1."
  }
}

variable "worker_instances" {
  type        = number
  default     = 1
  description = "Pull mode: number of worker-pool instances (manual scaling). Any number can share the subscription; prowtrace is stateless."

  validation {
    condition     = var.worker_instances >= 0 && var.worker_instances <= 100
    error_message = "worker_instances must be between 0 and 100."
  }
}

variable "ingress" {
  type        = string
  default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  description = "Push mode: Cloud Run ingress. The default admits only internal traffic, which includes Pub/Sub push from a subscription in the same project (or VPC Service Controls perimeter) to the default run.app URL, i.e. this module's subscription; the internet cannot reach the service at all. INGRESS_TRAFFIC_ALL is needed when a subscription in another project outside such a perimeter pushes to the service, or to call it from outside Google Cloud (e.g. testing with curl); IAM and prowtrace's token check still apply."

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

# ---------------------------------------------------------------------------------------------
# Housekeeping
# ---------------------------------------------------------------------------------------------

variable "kms_key_name" {
  type        = string
  default     = null
  description = "Cloud KMS key (\"projects/P/locations/L/keyRings/R/cryptoKeys/K\") to encrypt the dead-letter topic with; null uses Google-managed encryption. The Pub/Sub service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on the key."

  validation {
    condition     = var.kms_key_name == null ? true : can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be a full crypto key ID (or null)."
  }
}

variable "enable_apis" {
  type        = bool
  default     = true
  description = "Enable the APIs the pipeline uses (Cloud Run, Pub/Sub, IAM, Cloud Trace + Telemetry for the gcp_* exporters, Secret Manager when otlp_headers_secret is set). They are never disabled on destroy."
}

variable "deletion_protection" {
  type        = bool
  default     = true
  description = "Refuse to destroy the Cloud Run service or worker pool. Set to false (and apply) before `terraform destroy`."
}

variable "labels" {
  type        = map(string)
  default     = {}
  description = "Labels added to every resource that takes them (an app=<name> label is always set)."
}
