# gma retry, gma leech and gma views refresh as Cloud Run jobs, each started by a Cloud Scheduler
# job.

resource "google_cloud_run_v2_job" "retry" {
  project             = var.project_id
  name                = "${var.prefix}-retry"
  location            = var.region
  labels              = var.labels
  deletion_protection = var.deletion_protection

  template {
    # One task: a run lists the App's deliveries from its checkpoint; the lock keeps a second
    # execution (a manual one, or a schedule that overtook a slow run) from working beside it.
    task_count = 1

    template {
      service_account = google_service_account.retry.email
      # The run stops itself after JOB_TIMEOUT (retry_max_duration_minutes) and writes its
      # checkpoint; Cloud Run's limit is 10 minutes later, so it never cuts a run short.
      timeout = "${(var.retry_max_duration_minutes + 10) * 60}s"
      # A failed run is not retried at once: the next scheduled run continues from the checkpoint.
      max_retries = 0

      containers {
        image = var.image
        args  = ["retry"]

        resources {
          limits = {
            cpu    = var.retry_cpu
            memory = var.retry_memory
          }
        }

        dynamic "env" {
          for_each = local.retry_env
          content {
            name  = env.key
            value = env.value
          }
        }

        env {
          name = "GITHUB_PRIVATE_KEY"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.github_private_key.secret_id
              version = var.github_private_key_secret_version
            }
          }
        }
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_iam_member.github_private_key_retry,
    google_bigquery_dataset_iam_member.data_editor,
    google_project_iam_member.bigquery_job_user,
    google_storage_bucket_iam_member.lock_retry,
    google_storage_bucket_iam_member.payloads_retry,
  ]
}

resource "google_cloud_run_v2_job" "leech" {
  project             = var.project_id
  name                = "${var.prefix}-leech"
  location            = var.region
  labels              = var.labels
  deletion_protection = var.deletion_protection

  template {
    # N tasks split the runs by a hash of the run id (gma reads CLOUD_RUN_TASK_INDEX and
    # CLOUD_RUN_TASK_COUNT), with no overlap and no coordination; all run at once.
    task_count  = var.leech_task_count
    parallelism = var.leech_task_count

    template {
      service_account = google_service_account.leech.email
      timeout         = "${var.leech_timeout_minutes * 60}s"
      # A failed task's run attempts are retried by the next scheduled run (with backoff).
      max_retries = 0

      containers {
        image = var.image
        args  = ["leech"]

        resources {
          limits = {
            cpu    = var.leech_cpu
            memory = var.leech_memory
          }
        }

        dynamic "env" {
          for_each = local.leech_env
          content {
            name  = env.key
            value = env.value
          }
        }

        env {
          name = "GITHUB_PRIVATE_KEY"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.github_private_key.secret_id
              version = var.github_private_key_secret_version
            }
          }
        }
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_secret_manager_secret_iam_member.github_private_key_leech,
    google_bigquery_dataset_iam_member.data_editor,
    google_project_iam_member.bigquery_job_user,
    google_storage_bucket_iam_member.logs_leech,
  ]
}

# Cloud Scheduler starts an execution through the Cloud Run Admin API (jobs.run), with an OAuth
# token of the scheduler's account. The call returns once the execution has started, so the
# attempt deadline is short and independent of how long the job runs.
resource "google_cloud_scheduler_job" "retry" {
  project          = var.project_id
  name             = "${var.prefix}-retry"
  region           = local.scheduler_region
  description      = "Starts the gma retry Cloud Run job."
  schedule         = var.retry_schedule
  time_zone        = var.scheduler_time_zone
  attempt_deadline = "180s"

  retry_config {
    retry_count = 1
  }

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/projects/${var.project_id}/locations/${var.region}/jobs/${google_cloud_run_v2_job.retry.name}:run"

    oauth_token {
      service_account_email = google_service_account.scheduler.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [google_cloud_run_v2_job_iam_member.scheduler_runs_retry]
}

resource "google_cloud_scheduler_job" "leech" {
  project          = var.project_id
  name             = "${var.prefix}-leech"
  region           = local.scheduler_region
  description      = "Starts the gma leech Cloud Run job."
  schedule         = var.leech_schedule
  time_zone        = var.scheduler_time_zone
  attempt_deadline = "180s"

  retry_config {
    retry_count = 1
  }

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/projects/${var.project_id}/locations/${var.region}/jobs/${google_cloud_run_v2_job.leech.name}:run"

    oauth_token {
      service_account_email = google_service_account.scheduler.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [google_cloud_run_v2_job_iam_member.scheduler_runs_leech]
}

# gma views refresh: brings the typed event tables up to date with the events the server (and
# retry, and imports) landed. A scheduled job rather than a follow-mode service: it costs only
# while it runs, a failed run is simply redone by the next (a refresh is idempotent: a delivery
# the table holds is never appended again), and analysts' dashboards refresh on a schedule too.
# Its first run on a dataset from before typed tables builds them from all stored events; a run
# stopped by its timeout goes on from the last chunk it finished.
resource "google_cloud_run_v2_job" "refresh" {
  project             = var.project_id
  name                = "${var.prefix}-refresh"
  location            = var.region
  labels              = var.labels
  deletion_protection = var.deletion_protection

  template {
    # N tasks split the 16 typed tables by a hash of their name (CLOUD_RUN_TASK_INDEX and
    # CLOUD_RUN_TASK_COUNT); all run at once.
    task_count  = var.refresh_task_count
    parallelism = var.refresh_task_count

    template {
      service_account = google_service_account.refresh.email
      timeout         = "${var.refresh_timeout_minutes * 60}s"
      max_retries     = 0

      containers {
        image = var.image
        args  = ["views", "refresh"]

        resources {
          limits = {
            cpu    = var.refresh_cpu
            memory = var.refresh_memory
          }
        }

        dynamic "env" {
          for_each = local.refresh_env
          content {
            name  = env.key
            value = env.value
          }
        }
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_bigquery_dataset_iam_member.data_editor,
    google_project_iam_member.bigquery_job_user,
  ]
}

resource "google_cloud_scheduler_job" "refresh" {
  project          = var.project_id
  name             = "${var.prefix}-refresh"
  region           = local.scheduler_region
  description      = "Starts the gma views refresh Cloud Run job."
  schedule         = var.refresh_schedule
  time_zone        = var.scheduler_time_zone
  attempt_deadline = "180s"

  retry_config {
    retry_count = 1
  }

  http_target {
    http_method = "POST"
    uri         = "https://run.googleapis.com/v2/projects/${var.project_id}/locations/${var.region}/jobs/${google_cloud_run_v2_job.refresh.name}:run"

    oauth_token {
      service_account_email = google_service_account.scheduler.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }

  depends_on = [google_cloud_run_v2_job_iam_member.scheduler_runs_refresh]
}
