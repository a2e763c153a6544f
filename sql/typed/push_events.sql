-- push_events as a table: the columns of views/push_events.sql for every delivery, kept up to date
-- by the refresh (gma views refresh). Generated from the view by
-- GMA_BLESS=1 cargo test -p gma-pipeline --lib views::typed_tests, so do not edit it by hand.
CREATE TABLE IF NOT EXISTS `${dataset}push_events` (
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
  ref STRING,
  before_sha STRING,
  after_sha STRING,
  created BOOL,
  deleted BOOL,
  forced BOOL,
  base_ref STRING,
  compare_url STRING,
  pusher STRING,
  commits STRING,
  commit_count INT64,
  head_commit_id STRING,
  head_commit_timestamp TIMESTAMP,
  first_commit_timestamp TIMESTAMP,
  repository_default_branch STRING,
  pushed_at TIMESTAMP
)
PARTITION BY DATE(received)
CLUSTER BY organization, repository_full_name;
