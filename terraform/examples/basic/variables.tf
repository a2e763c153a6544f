variable "project_id" {
  description = "The Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "The region of the Cloud Run service and jobs."
  type        = string
  default     = "us-central1"
}

variable "image" {
  description = "The gma image, e.g. us-docker.pkg.dev/my-project/gma/gma:0.1.0 (docs/deploy-gcp.md builds and pushes it)."
  type        = string
}

variable "github_app_id" {
  description = "The GitHub App's id."
  type        = string
}

variable "custom_domain" {
  description = "Optional domain for the webhook (e.g. gma.example.com); null for the run.app URL only."
  type        = string
  default     = null
}
