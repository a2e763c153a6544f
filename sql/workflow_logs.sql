-- The archived logs, indexed: one row per file of a run attempt's logs zip (one per job and one
-- per step), so logs are queryable without opening archives.
CREATE TABLE IF NOT EXISTS `${dataset}workflow_logs` (
  run_id INT64 NOT NULL OPTIONS(description = "workflow_run.id"),
  run_attempt INT64 NOT NULL OPTIONS(description = "workflow_run.run_attempt"),
  repository_slug STRING NOT NULL OPTIONS(description = "owner/name"),
  path STRING NOT NULL OPTIONS(description = "the file's path in the zip"),
  job_name STRING NOT NULL OPTIONS(description = "the job the file belongs to"),
  step_number INT64 OPTIONS(description = "the step's number; NULL for a whole job's log"),
  step_name STRING OPTIONS(description = "the step's name"),
  uncompressed_bytes INT64 NOT NULL OPTIONS(description = "the file's size"),
  lines INT64 NOT NULL OPTIONS(description = "its number of lines"),
  first_error STRING OPTIONS(description = "its first error annotation line, without the timestamp"),
  logs_uri STRING NOT NULL OPTIONS(description = "the archive the file is in"),
  indexed_at TIMESTAMP NOT NULL OPTIONS(description = "when the archive was indexed")
)
PARTITION BY DATE(indexed_at)
CLUSTER BY repository_slug, run_id;
