# The dataset, gma's tables (from the DDL files in sql/) and the analyst views (from views/).

resource "google_bigquery_dataset" "gma" {
  project     = var.project_id
  dataset_id  = var.dataset_id
  location    = var.dataset_location
  description = "gma: GitHub webhook events, retry bookkeeping, Actions logs index, and analyst views."
  labels      = var.labels

  # Never drop the events with the infrastructure: destroying a dataset that holds tables fails.
  delete_contents_on_destroy = false

  depends_on = [google_project_service.apis]
}

# Job ids are unique in a project forever, also after the job is gone from terraform's state. A
# random suffix per state keeps a fresh state (or a second deployment) from colliding.
resource "random_id" "ddl_jobs" {
  byte_length = 4
}

# One DDL job per table, running the file of sql/ as it is (CREATE TABLE IF NOT EXISTS, with the
# partitioning and clustering it declares). The job id carries a hash of the statement: editing
# a file runs a new job. An existing table is left as it is (IF NOT EXISTS), so this never drops
# data; a changed column list needs an ALTER TABLE (docs/operations.md). gma creates missing
# tables from the same files on its own as well; creating them here lets the views be created
# before the first event lands. Destroying a job only forgets it: the table stays.
resource "google_bigquery_job" "table" {
  for_each = toset(local.tables)

  project  = var.project_id
  location = var.dataset_location
  job_id   = "gma_table_${local.table_names[each.key]}_${substr(sha256(local.table_ddl[each.key]), 0, 16)}_${random_id.ddl_jobs.hex}"
  labels   = var.labels

  query {
    query          = local.table_ddl[each.key]
    use_legacy_sql = false
    # BigQuery refuses DDL jobs that carry a disposition; the provider sets one unless told not to.
    create_disposition = ""
    write_disposition  = ""
  }
}

# The views, one resource per dependency layer (locals.tf). BigQuery checks a view's query when
# it is created, so each layer waits for the tables and for the layer before it.
resource "google_bigquery_table" "views_base" {
  for_each = toset(local.views_base)

  project             = var.project_id
  dataset_id          = google_bigquery_dataset.gma.dataset_id
  table_id            = each.key
  labels              = var.labels
  deletion_protection = false

  view {
    query          = local.view_sql[each.key]
    use_legacy_sql = false
  }

  depends_on = [google_bigquery_job.table]
}

# The event views' layer: typed tables, one DDL job each (the views of later layers read them).
# The job id carries a hash of the script, as for the tables above; an existing table and its
# rows are left alone.
resource "google_bigquery_job" "typed_table" {
  for_each = toset(local.views_events)

  project  = var.project_id
  location = var.dataset_location
  job_id   = "gma_typed_${each.key}_${substr(sha256(local.typed_table_script[each.key]), 0, 16)}_${random_id.ddl_jobs.hex}"
  labels   = var.labels

  query {
    query              = local.typed_table_script[each.key]
    use_legacy_sql     = false
    create_disposition = ""
    write_disposition  = ""
  }

  depends_on = [google_bigquery_job.table]
}

# Earlier versions of the module created the event views as views: forget them without
# destroying (the typed table job drops the view and creates the table of the same name, which
# a destroy would delete).
removed {
  from = google_bigquery_table.views_events

  lifecycle {
    destroy = false
  }
}

resource "google_bigquery_table" "views_latest_state" {
  for_each = toset(local.views_latest_state)

  project             = var.project_id
  dataset_id          = google_bigquery_dataset.gma.dataset_id
  table_id            = each.key
  labels              = var.labels
  deletion_protection = false

  view {
    query          = local.view_sql[each.key]
    use_legacy_sql = false
  }

  depends_on = [google_bigquery_job.table, google_bigquery_job.typed_table, google_bigquery_table.views_base]
}

resource "google_bigquery_table" "views_metrics" {
  for_each = toset(local.views_metrics)

  project             = var.project_id
  dataset_id          = google_bigquery_dataset.gma.dataset_id
  table_id            = each.key
  labels              = var.labels
  deletion_protection = false

  view {
    query          = local.view_sql[each.key]
    use_legacy_sql = false
  }

  depends_on = [google_bigquery_job.table, google_bigquery_table.views_latest_state]
}

resource "google_bigquery_table" "views_dora" {
  for_each = toset(local.views_dora)

  project             = var.project_id
  dataset_id          = google_bigquery_dataset.gma.dataset_id
  table_id            = each.key
  labels              = var.labels
  deletion_protection = false

  view {
    query          = local.view_sql[each.key]
    use_legacy_sql = false
  }

  depends_on = [google_bigquery_job.table, google_bigquery_table.views_metrics]
}
