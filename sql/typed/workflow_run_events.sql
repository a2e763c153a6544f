-- workflow_run_events as a table: the columns of views/workflow_run_events.sql for every delivery, kept up to date
-- by the refresh (gma views refresh). Generated from the view by
-- GMA_BLESS=1 cargo test -p gma-pipeline --lib views::typed_tests, so do not edit it by hand.
CREATE TABLE IF NOT EXISTS `${dataset}workflow_run_events` (
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
  run_attempt INT64,
  run_number INT64,
  workflow_name STRING,
  workflow_id INT64,
  path STRING,
  display_title STRING,
  workflow_event STRING,
  status STRING,
  conclusion STRING,
  head_branch STRING,
  head_sha STRING,
  actor STRING,
  triggering_actor STRING,
  html_url STRING,
  workflow_html_url STRING,
  created_at TIMESTAMP,
  run_started_at TIMESTAMP,
  updated_at TIMESTAMP,
  duration_seconds INT64
)
PARTITION BY DATE(received)
CLUSTER BY organization, repository_full_name;
