-- Events the retry job failed to recover: one row per run that tried and failed, and a final row
-- (given_up) once an event failed too often and is no longer retried. The first two columns are
-- GMA's, so a GMA deployment's table carries over.
CREATE TABLE IF NOT EXISTS `${dataset}failure_events` (
  delivery_id STRING NOT NULL OPTIONS(description = "X-GitHub-Delivery: the event's GUID"),
  created TIMESTAMP NOT NULL OPTIONS(description = "when the failure was recorded"),
  hook STRING OPTIONS(description = "the webhook: app, repos/OWNER/REPO/hooks/ID or orgs/ORG/hooks/ID"),
  hook_delivery_id INT64 OPTIONS(description = "GitHub's id of the delivery attempt the recovery started from"),
  event STRING OPTIONS(description = "X-GitHub-Event: the event type"),
  action STRING OPTIONS(description = "the event's action"),
  run_id STRING OPTIONS(description = "the retry run that recorded the failure"),
  reason STRING OPTIONS(description = "what failed, in words"),
  given_up BOOL OPTIONS(description = "true when the retry job stopped retrying the event (a poison event)")
);
