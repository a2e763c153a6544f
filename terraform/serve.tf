# gma serve on Cloud Run: the webhook endpoint GitHub posts to, landing events in BigQuery.

resource "google_cloud_run_v2_service" "serve" {
  project             = var.project_id
  name                = "${var.prefix}-serve"
  location            = var.region
  labels              = var.labels
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.serve.email
    max_instance_request_concurrency = var.serve_concurrency
    # GitHub gives up on a delivery after 10 s; a request never needs more than the body
    # timeout (60 s) plus landing.
    timeout = "90s"

    scaling {
      min_instance_count = var.serve_min_instances
      max_instance_count = var.serve_max_instances
    }

    containers {
      image = var.image
      args  = ["serve"]

      # Cloud Run sets PORT to this; gma serve listens on PORT.
      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.serve_cpu
          memory = var.serve_memory
        }
        # CPU only while requests are served: gma answers only once an event is durable, so
        # nothing is left to do between requests.
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.serve_env
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name = "GMA_WEBHOOK_SECRETS"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.webhook.secret_id
            version = var.webhook_secret_version
          }
        }
      }

      # Ready once BigQuery answers: /healthz reads the dataset with --sink bigquery.
      startup_probe {
        http_get {
          path = "/healthz"
        }
        initial_delay_seconds = 0
        period_seconds        = 3
        timeout_seconds       = 3
        failure_threshold     = 20
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_iam_member.webhook_serve,
    google_bigquery_dataset_iam_member.data_editor,
    google_project_iam_member.bigquery_job_user,
    google_storage_bucket_iam_member.payloads_serve,
  ]
}

# GitHub calls the webhook without Google credentials: anyone may invoke the service, and gma
# serve admits only deliveries signed with a configured secret.
resource "google_cloud_run_v2_service_iam_member" "serve_public" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.serve.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# --- Optional custom domain: a global external HTTPS load balancer in front of the service ---

resource "google_compute_region_network_endpoint_group" "serve" {
  count = var.custom_domain == null ? 0 : 1

  project               = var.project_id
  name                  = "${var.prefix}-serve-neg"
  region                = var.region
  network_endpoint_type = "SERVERLESS"

  cloud_run {
    service = google_cloud_run_v2_service.serve.name
  }
}

resource "google_compute_backend_service" "serve" {
  count = var.custom_domain == null ? 0 : 1

  project               = var.project_id
  name                  = "${var.prefix}-serve-backend"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  # The hop from the load balancer to Cloud Run stays in Google's network (and is encrypted).
  protocol = "HTTP"

  backend {
    group = google_compute_region_network_endpoint_group.serve[0].id
  }
}

resource "google_compute_url_map" "serve" {
  count = var.custom_domain == null ? 0 : 1

  project         = var.project_id
  name            = "${var.prefix}-serve"
  default_service = google_compute_backend_service.serve[0].id
}

resource "google_compute_managed_ssl_certificate" "serve" {
  count = var.custom_domain == null ? 0 : 1

  project = var.project_id
  name    = "${var.prefix}-serve-cert"

  managed {
    domains = [var.custom_domain]
  }
}

resource "google_compute_target_https_proxy" "serve" {
  count = var.custom_domain == null ? 0 : 1

  project          = var.project_id
  name             = "${var.prefix}-serve-https"
  url_map          = google_compute_url_map.serve[0].id
  ssl_certificates = [google_compute_managed_ssl_certificate.serve[0].id]
}

resource "google_compute_global_address" "serve" {
  count = var.custom_domain == null ? 0 : 1

  project = var.project_id
  name    = "${var.prefix}-serve-ip"
}

resource "google_compute_global_forwarding_rule" "serve" {
  count = var.custom_domain == null ? 0 : 1

  project               = var.project_id
  name                  = "${var.prefix}-serve-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  target                = google_compute_target_https_proxy.serve[0].id
  ip_address            = google_compute_global_address.serve[0].id
  port_range            = "443"
}
