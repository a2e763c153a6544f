# A root module deploying gma into one project: `terraform init && terraform apply`.
# docs/deploy-gcp.md walks through it, from a fresh project to receiving webhooks.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5, < 4.0"
    }
  }

  # Keep the state somewhere shared and durable, e.g.:
  # backend "gcs" {
  #   bucket = "my-terraform-state"
  #   prefix = "gma"
  # }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

module "gma" {
  # From another repository: "git::https://github.com/gma-rs/gma.git//terraform?ref=v0.1.0"
  source = "../.."

  project_id    = var.project_id
  region        = var.region
  image         = var.image
  github_app_id = var.github_app_id
  custom_domain = var.custom_domain

  # Everything else has defaults; for example:
  # leech_task_count        = 4
  # retry_schedule          = "*/30 * * * *"
  # incident_labels         = ["incident", "sev1"]
  # production_environments = ["production"]
}
