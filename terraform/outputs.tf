output "webhook_url" {
  description = "The Payload URL to give GitHub (the App's webhook settings): the custom domain's when set, else the Cloud Run URL's, with /webhook."
  value       = var.custom_domain == null ? "${google_cloud_run_v2_service.serve.uri}${local.webhook_path}" : "https://${var.custom_domain}${local.webhook_path}"
}

output "service_url" {
  description = "The Cloud Run URL of gma serve (GET /healthz, /version, /metrics)."
  value       = google_cloud_run_v2_service.serve.uri
}

output "load_balancer_ip" {
  description = "The address to point custom_domain's DNS A record at (null without a custom domain)."
  value       = var.custom_domain == null ? null : google_compute_global_address.serve[0].address
}

output "dataset" {
  description = "The BigQuery dataset, as project.dataset."
  value       = "${var.project_id}.${google_bigquery_dataset.gma.dataset_id}"
}

output "tables" {
  description = "gma's tables by role, as project.dataset.table."
  value       = { for name in local.tables : name => "${var.project_id}.${google_bigquery_dataset.gma.dataset_id}.${local.table_names[name]}" }
}

output "views" {
  description = "The analyst views, as project.dataset.view."
  value       = [for name in local.views : "${var.project_id}.${google_bigquery_dataset.gma.dataset_id}.${name}"]
}

output "buckets" {
  description = "The buckets: logs (Actions logs archive), lock (retry lock), payloads (large webhook payloads)."
  value = {
    logs     = google_storage_bucket.bucket["logs"].name
    lock     = google_storage_bucket.bucket["lock"].name
    payloads = google_storage_bucket.bucket["payloads"].name
  }
}

output "secrets" {
  description = "The Secret Manager secrets whose values are added out of band."
  value = {
    webhook            = google_secret_manager_secret.webhook.secret_id
    github_private_key = google_secret_manager_secret.github_private_key.secret_id
  }
}

output "service_accounts" {
  description = "The service account of each component."
  value = {
    serve     = google_service_account.serve.email
    retry     = google_service_account.retry.email
    leech     = google_service_account.leech.email
    refresh   = google_service_account.refresh.email
    scheduler = google_service_account.scheduler.email
  }
}

output "jobs" {
  description = "The Cloud Run jobs (run one by hand: gcloud run jobs execute NAME --region REGION)."
  value = {
    retry   = google_cloud_run_v2_job.retry.name
    leech   = google_cloud_run_v2_job.leech.name
    refresh = google_cloud_run_v2_job.refresh.name
  }
}

output "region" {
  description = "The region of the service and jobs."
  value       = var.region
}
