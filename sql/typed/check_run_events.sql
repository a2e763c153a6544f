-- check_run_events as a table: the columns of views/check_run_events.sql for every delivery, kept up to date
-- by the refresh (gma views refresh). Generated from the view by
-- GMA_BLESS=1 cargo test -p gma-pipeline --lib views::typed_tests, so do not edit it by hand.
CREATE TABLE IF NOT EXISTS `${dataset}check_run_events` (
  received TIMESTAMP NOT NULL,
  delivery_id STRING NOT NULL,
  event STRING,
  action STRING,
  enterprise STRING,
  enterprise_id INT64,
  organization STRING,
  organization_id INT64,
  repository_full_name STRING,
  repository STRING,
  repository_id INT64,
  repository_visibility STRING,
  sender STRING,
  sender_id INT64,
  installation_id INT64,
  id INT64,
  name STRING,
  status STRING,
  conclusion STRING,
  head_sha STRING,
  started_at TIMESTAMP,
  completed_at TIMESTAMP,
  check_suite_id INT64,
  app STRING,
  app_id INT64,
  deployment_id INT64,
  details_url STRING,
  external_id STRING,
  html_url STRING,
  output_title STRING,
  output_summary STRING,
  output_text STRING,
  duration_seconds INT64
)
PARTITION BY DATE(received)
CLUSTER BY organization, repository_full_name;
