-- deployment_events as a table: the columns of views/deployment_events.sql for every delivery, kept up to date
-- by the refresh (gma views refresh). Generated from the view by
-- GMA_BLESS=1 cargo test -p gma-pipeline --lib views::typed_tests, so do not edit it by hand.
CREATE TABLE IF NOT EXISTS `${dataset}deployment_events` (
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
  environment STRING,
  original_environment STRING,
  production_environment BOOL,
  transient_environment BOOL,
  ref STRING,
  sha STRING,
  task STRING,
  description STRING,
  creator STRING,
  creator_id INT64,
  deployment_payload STRING,
  workflow_run_id INT64,
  created_at TIMESTAMP,
  updated_at TIMESTAMP
)
PARTITION BY DATE(received)
CLUSTER BY organization, repository_full_name;
