# Secret Manager secrets. The module creates them empty; their values are added out of band
# (`gcloud secrets versions add`, docs/deploy-gcp.md), so they never pass through terraform's
# state or plan output.

# The webhook secret(s), one per line: gma serve accepts every one (GMA_WEBHOOK_SECRETS), which
# is how a rotation runs with no downtime (docs/operations.md).
resource "google_secret_manager_secret" "webhook" {
  project   = var.project_id
  secret_id = local.webhook_secret_id
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

# The GitHub App's private key (the .pem GitHub gave), for gma retry and gma leech.
resource "google_secret_manager_secret" "github_private_key" {
  project   = var.project_id
  secret_id = local.private_key_secret_id
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_iam_member" "webhook_serve" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.webhook.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.serve.email}"
}

resource "google_secret_manager_secret_iam_member" "github_private_key_retry" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.github_private_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.retry.email}"
}

resource "google_secret_manager_secret_iam_member" "github_private_key_leech" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.github_private_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.leech.email}"
}
