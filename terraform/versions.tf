terraform {
  # 1.7: `removed` blocks (bigquery.tf forgets the event views of earlier versions).
  required_version = ">= 1.7.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 6.x: Cloud Run v2 resources carry deletion_protection.
      version = ">= 6.0, < 8.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5, < 4.0"
    }
  }
}
