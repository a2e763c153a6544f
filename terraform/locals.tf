locals {
  # The repository's SQL: table DDL in sql/, one view per file in views/. The module reads them
  # from the repository it lives in (a git source downloads the whole repository).
  sql_dir   = "${path.module}/../sql"
  views_dir = "${path.module}/../views"

  # Every table gma owns: the CREATE TABLE files of sql/ (the other files there are queries).
  # A test (tests/it/terraform.rs) fails when a DDL file is missing from this list.
  tables = ["events", "watermarks", "checkpoint", "failure_events", "leech_status", "workflow_logs", "refresh_requests"]

  # Each table's name in BigQuery: table_names for those gma lets you rename, else the file's.
  table_names = merge({ for name in local.tables : name => name }, var.table_names)

  # "project.dataset." : what ${dataset} becomes on BigQuery (tables are written `${dataset}NAME`).
  dataset_prefix = "${var.project_id}.${google_bigquery_dataset.gma.dataset_id}."

  # The DDL of each table, its name and dataset filled in. Renaming replaces the backticked name.
  table_ddl = {
    for name in local.tables : name => replace(
      replace(file("${local.sql_dir}/${name}.sql"), "`$${dataset}${name}`", "`${local.dataset_prefix}${local.table_names[name]}`"),
      "$${dataset}", local.dataset_prefix,
    )
  }

  # The views, in dependency layers named as `gma views list` names them: each view reads only
  # tables and views of earlier layers, and each layer's resource (bigquery.tf) depends on the
  # one before, so BigQuery, which checks a view's query when it is created, always finds what a
  # view reads. A test checks every file of views/ is in exactly one layer, after every view it
  # reads, and in the layer gma's own list gives it.
  view_layers = ["base", "events", "latest_state", "metrics", "dora"]

  views_base = ["unique_events"]
  views_events = [
    "check_run_events",
    "check_suite_events",
    "create_events",
    "delete_events",
    "deployment_events",
    "deployment_status_events",
    "issue_comment_events",
    "issue_events",
    "pull_request_events",
    "pull_request_review_comment_events",
    "pull_request_review_events",
    "push_events",
    "release_events",
    "team_events",
    "workflow_job_events",
    "workflow_run_events",
  ]
  views_latest_state = [
    "check_runs",
    "deployment_outcomes",
    "deployment_statuses",
    "deployments",
    "issue_comments",
    "issues",
    "pull_request_review_comments",
    "pull_request_reviews",
    "pull_requests",
    "releases",
    "teams",
    "workflow_jobs",
    "workflow_runs",
  ]
  views_metrics = ["pr_cycle_time", "review_latency", "workflow_reliability"]
  views_dora = [
    "dora_deployment_frequency",
    "dora_lead_time",
    "dora_change_failure_rate",
    "dora_time_to_restore",
  ]
  views = concat(local.views_base, local.views_events, local.views_latest_state, local.views_metrics, local.views_dora)

  # The event views are typed tables (sql/typed/), kept up to date by the refresh job (jobs.tf):
  # the views of later layers read their typed columns, never every payload of all history.
  # Each is created by a script that first drops a view of the same name left by an earlier
  # version of the module (sql/typed_table_job.sql).
  typed_table_script = {
    for name in local.views_events : name => replace(
      replace(
        replace(file("${local.sql_dir}/typed_table_job.sql"), "$${ddl}", trimsuffix(trimspace(file("${local.sql_dir}/typed/${name}.sql")), ";")),
        "$${table}", name,
      ),
      "$${dataset}", local.dataset_prefix,
    )
  }

  # The placeholders of views/*.sql. Labels and environments are validated to hold no quote or
  # backslash, so quoting them is enough; the views compare them lowercased.
  view_vars = {
    dataset                 = local.dataset_prefix
    events_table            = local.table_names["events"]
    incident_labels         = "[${join(", ", [for label in var.incident_labels : "'${lower(trimspace(label))}'"])}]"
    production_environments = "[${join(", ", [for env in var.production_environments : "'${lower(trimspace(env))}'"])}]"
  }
  view_sql = { for name in local.views : name => templatefile("${local.views_dir}/${name}.sql", local.view_vars) }

  logs_bucket     = coalesce(var.logs_bucket_name, "${var.project_id}-${var.prefix}-logs")
  lock_bucket     = coalesce(var.lock_bucket_name, "${var.project_id}-${var.prefix}-lock")
  payloads_bucket = coalesce(var.payloads_bucket_name, "${var.project_id}-${var.prefix}-payloads")

  webhook_secret_id     = coalesce(var.webhook_secret_id, "${var.prefix}-webhook-secrets")
  private_key_secret_id = coalesce(var.github_private_key_secret_id, "${var.prefix}-github-private-key")

  scheduler_region = coalesce(var.scheduler_region, var.region)

  # github.com keeps failed deliveries redeliverable for 3 days, Enterprise Server for 7.
  on_github_com = trimsuffix(var.github_api_url, "/") == "https://api.github.com"
  retry_window  = local.on_github_com ? "3d" : "7d"

  # Environment of each component. Only names gma's flags read ([env: NAME] in `gma SUBCOMMAND
  # --help`); a test compares them, so a renamed flag cannot silently drop a setting. Secrets are
  # separate env blocks on the resources. PORT is Cloud Run's own.
  common_env = {
    GMA_LOG_FORMAT        = "json"
    GMA_LOG               = var.log_level
    PROJECT_ID            = var.project_id
    DATASET_ID            = google_bigquery_dataset.gma.dataset_id
    GMA_BIGQUERY_LOCATION = var.dataset_location
    EVENTS_TABLE_ID       = local.table_names["events"]
  }

  serve_env = merge(local.common_env, {
    # Where events land (--sink).
    GMA_SINK       = "bigquery"
    GMA_BLOB_STORE = "gs://${google_storage_bucket.bucket["payloads"].name}"
    # Cloud Run sends SIGTERM and kills the instance 10 s later: drain within that.
    GMA_SHUTDOWN_TIMEOUT_SECS = "8"
  })

  retry_env = merge(local.common_env, {
    # Where the jobs' tables are (--warehouse; GMA_SINK, its former name, is still read).
    GMA_WAREHOUSE        = "bigquery"
    CHECKPOINT_TABLE_ID  = local.table_names["checkpoint"]
    GMA_FAILURE_TABLE_ID = local.table_names["failure_events"]
    # In fetch mode retry lands events itself, large payloads included.
    GMA_BLOB_STORE         = "gs://${google_storage_bucket.bucket["payloads"].name}"
    GITHUB_APP_ID          = var.github_app_id
    GITHUB_API_URL         = var.github_api_url
    GMA_RETRY_HOOKS        = join(",", var.retry_hooks)
    GMA_RETRY_MODE         = var.retry_mode
    GMA_RETRY_WINDOW       = local.retry_window
    GMA_RETRY_ALERT_MARGIN = var.retry_alert_margin
    JOB_TIMEOUT            = "${var.retry_max_duration_minutes}m"
    GMA_LOCK_STORE         = "gs://${google_storage_bucket.bucket["lock"].name}"
    LOCK_TTL               = var.retry_lock_ttl
  })

  refresh_env = merge(local.common_env, {
    GMA_WAREHOUSE        = "bigquery"
    GMA_REFRESH_LATENESS = var.refresh_lateness
  })

  leech_env = merge(local.common_env, {
    GMA_WAREHOUSE              = "bigquery"
    ARTIFACTS_TABLE_ID         = local.table_names["leech_status"]
    GMA_WORKFLOW_LOGS_TABLE_ID = local.table_names["workflow_logs"]
    GITHUB_APP_ID              = var.github_app_id
    GITHUB_API_URL             = var.github_api_url
    GMA_LOGS_STORE             = "gs://${google_storage_bucket.bucket["logs"].name}"
    GMA_LEECH_CONCURRENCY      = tostring(var.leech_concurrency)
  })

  webhook_path = "/webhook"
}
