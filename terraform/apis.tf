# The Google Cloud APIs the module uses. They stay enabled on destroy: other things in the
# project may use them too.
locals {
  apis = concat(
    [
      "bigquery.googleapis.com",
      "cloudscheduler.googleapis.com",
      "iam.googleapis.com",
      "run.googleapis.com",
      "secretmanager.googleapis.com",
      "storage.googleapis.com",
    ],
    var.custom_domain == null ? [] : ["compute.googleapis.com"],
  )
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? toset(local.apis) : toset([])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
