-- release_events as a table: the columns of views/release_events.sql for every delivery, kept up to date
-- by the refresh (gma views refresh). Generated from the view by
-- GMA_BLESS=1 cargo test -p gma-pipeline --lib views::typed_tests, so do not edit it by hand.
CREATE TABLE IF NOT EXISTS `${dataset}release_events` (
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
  tag_name STRING,
  name STRING,
  body STRING,
  draft BOOL,
  prerelease BOOL,
  target_commitish STRING,
  author STRING,
  author_id INT64,
  html_url STRING,
  tarball_url STRING,
  zipball_url STRING,
  upload_url STRING,
  created_at TIMESTAMP,
  published_at TIMESTAMP
)
PARTITION BY DATE(received)
CLUSTER BY organization, repository_full_name;
