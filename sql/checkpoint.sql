-- The retry job's checkpoints: how far back each run examined a webhook's deliveries. Append-only,
-- one row per run and webhook; the highest delivery id per (instance, hook) counts. Every failed
-- delivery with an id at or below it has been recovered, found landed, or given up on.
--
-- The first three columns are GMA's, so a GMA deployment's table carries over: its rows have no
-- hook (the App's hook) and an empty or NULL instance for github.com.
CREATE TABLE IF NOT EXISTS `${dataset}checkpoint` (
  delivery_id STRING NOT NULL OPTIONS(description = "GitHub's numeric hook delivery id (not the GUID): every failure at or below it is handled"),
  created TIMESTAMP NOT NULL OPTIONS(description = "when the run that wrote the row started"),
  github_instance_url STRING OPTIONS(description = "the GitHub instance's host; empty or NULL for github.com"),
  hook STRING OPTIONS(description = "the webhook: app (also when NULL), repos/OWNER/REPO/hooks/ID or orgs/ORG/hooks/ID"),
  run_id STRING OPTIONS(description = "the run that wrote the row")
);
