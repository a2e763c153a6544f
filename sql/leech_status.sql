-- What the leech job did with each workflow run attempt's logs: one row per try. SUCCESS and
-- NOT_FOUND are final; FAILURE is retried by later runs with backoff until the attempt cap.
--
-- The first ten columns are GMA's (leech_status, later artifacts_status), so a GMA deployment's
-- table carries over; the rest say which run attempt a row is about and how the try went.
CREATE TABLE IF NOT EXISTS `${dataset}leech_status` (
  delivery_id STRING NOT NULL OPTIONS(description = "the workflow_run event the run was found in"),
  processed_at TIMESTAMP NOT NULL OPTIONS(description = "when the try ended"),
  status STRING NOT NULL OPTIONS(description = "SUCCESS, NOT_FOUND (logs gone: final) or FAILURE (retried)"),
  workflow_uri STRING NOT NULL OPTIONS(description = "the run's page on GitHub"),
  logs_uri STRING NOT NULL OPTIONS(description = "where the logs zip is (or would be) archived"),
  github_actor STRING NOT NULL OPTIONS(description = "who triggered the run"),
  organization_name STRING NOT NULL OPTIONS(description = "the repository's owner"),
  repository_name STRING NOT NULL OPTIONS(description = "the repository's name"),
  repository_slug STRING NOT NULL OPTIONS(description = "owner/name"),
  job_name STRING NOT NULL OPTIONS(description = "the workflow's name"),
  run_id INT64 OPTIONS(description = "workflow_run.id"),
  run_attempt INT64 OPTIONS(description = "workflow_run.run_attempt"),
  attempts INT64 OPTIONS(description = "tries so far for this run attempt, this one included"),
  bytes INT64 OPTIONS(description = "the archived zip's size"),
  error STRING OPTIONS(description = "why the try failed")
)
PARTITION BY DATE(processed_at)
CLUSTER BY repository_slug;
