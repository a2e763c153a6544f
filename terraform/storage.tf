# Buckets: archived Actions logs (gma leech), the retry lock, and payloads too large for a
# BigQuery row. Uniform access, no public access, lifecycle rules from variables. force_destroy
# stays off: a bucket that holds objects is never deleted by terraform.

locals {
  buckets = {
    logs = {
      name  = local.logs_bucket
      rules = var.logs_bucket_lifecycle_rules
    }
    lock = {
      name  = local.lock_bucket
      rules = var.lock_bucket_lifecycle_rules
    }
    payloads = {
      name  = local.payloads_bucket
      rules = var.payloads_bucket_lifecycle_rules
    }
  }
}

resource "google_storage_bucket" "bucket" {
  for_each = local.buckets

  project                     = var.project_id
  name                        = each.value.name
  location                    = var.bucket_location
  labels                      = var.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  dynamic "lifecycle_rule" {
    for_each = each.value.rules
    content {
      condition {
        age = lifecycle_rule.value.age_days
      }
      action {
        type          = lifecycle_rule.value.action
        storage_class = lifecycle_rule.value.action == "SetStorageClass" ? lifecycle_rule.value.storage_class : null
      }
    }
  }

  depends_on = [google_project_service.apis]
}
