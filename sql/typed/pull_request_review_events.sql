-- pull_request_review_events as a table: the columns of views/pull_request_review_events.sql for every delivery, kept up to date
-- by the refresh (gma views refresh). Generated from the view by
-- GMA_BLESS=1 cargo test -p gma-pipeline --lib views::typed_tests, so do not edit it by hand.
CREATE TABLE IF NOT EXISTS `${dataset}pull_request_review_events` (
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
  state STRING,
  body STRING,
  reviewer STRING,
  reviewer_id INT64,
  author_association STRING,
  commit_id STRING,
  html_url STRING,
  submitted_at TIMESTAMP,
  pull_request_id INT64,
  pull_request_number INT64,
  pull_request_state STRING,
  pull_request_url STRING,
  pull_request_author STRING,
  pull_request_author_id INT64,
  pull_request_created_at TIMESTAMP
)
PARTITION BY DATE(received)
CLUSTER BY organization, repository_full_name;
