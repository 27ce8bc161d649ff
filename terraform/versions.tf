terraform {
  # Needs lifecycle preconditions (1.2) and terraform_data (1.4). Checked here with 1.11.
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 7.18.0 fixed the permadiff on google_cloud_run_v2_worker_pool's scaling.scaling_mode
      # (the resource itself exists since 6.38.0); stay below the next major's breaking changes.
      version = ">= 7.18.0, < 8.0.0"
    }
    # google_project_service_identity (the Pub/Sub service agent, created up front).
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 7.18.0, < 8.0.0"
    }
  }
}
