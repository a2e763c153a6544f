# One service account per component, each granted only what that component does:
#
# | account   | BigQuery                              | Cloud Storage               | secrets          | other                 |
# |-----------|---------------------------------------|-----------------------------|------------------|-----------------------|
# | serve     | data editor on the dataset, job user  | objects of payloads bucket  | webhook secret   |                       |
# | retry     | data editor on the dataset, job user  | objects of lock + payloads  | App private key  |                       |
# | leech     | data editor on the dataset, job user  | objects of logs bucket      | App private key  |                       |
# | refresh   | data editor on the dataset, job user  | none                        | none             |                       |
# | scheduler | none                                  | none                        | none             | runs the three jobs   |
#
# Data editor is on the dataset only (gma creates a missing table from its DDL, reads events,
# appends rows); job user is project-wide because BigQuery has no narrower scope for running
# queries. Object user (create, read, overwrite, delete objects; no bucket or IAM changes) is
# per bucket: leech replaces a partial archive, the lock is created and deleted each run.

resource "google_service_account" "serve" {
  project      = var.project_id
  account_id   = "${var.prefix}-serve"
  display_name = "gma serve (webhook ingest)"
}

resource "google_service_account" "retry" {
  project      = var.project_id
  account_id   = "${var.prefix}-retry"
  display_name = "gma retry (failed-delivery recovery job)"
}

resource "google_service_account" "leech" {
  project      = var.project_id
  account_id   = "${var.prefix}-leech"
  display_name = "gma leech (Actions logs archive job)"
}

resource "google_service_account" "refresh" {
  project      = var.project_id
  account_id   = "${var.prefix}-refresh"
  display_name = "gma views refresh (typed event tables job)"
}

resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.prefix}-scheduler"
  display_name = "gma scheduler (starts the retry, leech and refresh jobs)"
}

locals {
  components = {
    serve   = google_service_account.serve.email
    retry   = google_service_account.retry.email
    leech   = google_service_account.leech.email
    refresh = google_service_account.refresh.email
  }
}

resource "google_project_iam_member" "bigquery_job_user" {
  for_each = local.components

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${each.value}"
}

resource "google_bigquery_dataset_iam_member" "data_editor" {
  for_each = local.components

  project    = var.project_id
  dataset_id = google_bigquery_dataset.gma.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${each.value}"
}

resource "google_storage_bucket_iam_member" "payloads_serve" {
  bucket = google_storage_bucket.bucket["payloads"].name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.serve.email}"
}

resource "google_storage_bucket_iam_member" "payloads_retry" {
  bucket = google_storage_bucket.bucket["payloads"].name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.retry.email}"
}

resource "google_storage_bucket_iam_member" "lock_retry" {
  bucket = google_storage_bucket.bucket["lock"].name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.retry.email}"
}

resource "google_storage_bucket_iam_member" "logs_leech" {
  bucket = google_storage_bucket.bucket["logs"].name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.leech.email}"
}

# The scheduler may start (run) the three jobs and nothing else.
resource "google_cloud_run_v2_job_iam_member" "scheduler_runs_retry" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.retry.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_cloud_run_v2_job_iam_member" "scheduler_runs_leech" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.leech.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_cloud_run_v2_job_iam_member" "scheduler_runs_refresh" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.refresh.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

# Readers of the data (analysts, Looker Studio report owners): read-only on the dataset.
resource "google_bigquery_dataset_iam_member" "reader" {
  for_each = toset(var.dataset_readers)

  project    = var.project_id
  dataset_id = google_bigquery_dataset.gma.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = each.value
}
