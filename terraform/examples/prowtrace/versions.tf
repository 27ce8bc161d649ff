terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 7.18.0, < 8.0.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 7.18.0, < 8.0.0"
    }
  }

  # Keep the state somewhere shared and durable for anything but a trial, e.g.:
  # backend "gcs" {
  #   bucket = "my-terraform-state"
  #   prefix = "prowtrace"
  # }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

# The module creates the Pub/Sub service agent with google-beta's google_project_service_identity.
provider "google-beta" {
  project = var.project_id
  region  = var.region
}
