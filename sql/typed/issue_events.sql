-- issue_events as a table: the columns of views/issue_events.sql for every delivery, kept up to date
-- by the refresh (gma views refresh). Generated from the view by
-- GMA_BLESS=1 cargo test -p gma-pipeline --lib views::typed_tests, so do not edit it by hand.
CREATE TABLE IF NOT EXISTS `${dataset}issue_events` (
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
  number INT64,
  title STRING,
  body STRING,
  state STRING,
  state_reason STRING,
  locked BOOL,
  active_lock_reason STRING,
  draft BOOL,
  author STRING,
  author_id INT64,
  author_association STRING,
  assignee STRING,
  comments INT64,
  labels STRING,
  label STRING,
  html_url STRING,
  created_at TIMESTAMP,
  updated_at TIMESTAMP,
  closed_at TIMESTAMP,
  open_duration_seconds INT64
)
PARTITION BY DATE(received)
CLUSTER BY organization, repository_full_name;
