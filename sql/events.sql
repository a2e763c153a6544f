-- The events table: one row per landed webhook delivery.
--
-- The first five columns are GMA's (delivery_id, signature, received, event, payload), so a GMA
-- deployment's rows and queries carry over. The rest are lifted from the headers and the payload
-- at ingest, so views need not parse JSON for the common filters. `payload` is the JSON exactly as
-- GitHub signed it; `payload_uri` points at the blob store when the payload was too large to keep
-- in the row (then `payload` is NULL).
--
-- ${dataset} is replaced per backend (a BigQuery dataset, or nothing locally).
CREATE TABLE IF NOT EXISTS `${dataset}events` (
  delivery_id STRING NOT NULL OPTIONS(description = "X-GitHub-Delivery: the event's GUID, the same on every redelivery"),
  signature STRING NOT NULL OPTIONS(description = "X-Hub-Signature-256 as received"),
  received TIMESTAMP NOT NULL OPTIONS(description = "when gma received the delivery (UTC)"),
  event STRING NOT NULL OPTIONS(description = "X-GitHub-Event: the event type"),
  payload STRING OPTIONS(description = "the JSON body exactly as GitHub signed it"),
  action STRING OPTIONS(description = "payload.action"),
  hook_id INT64 OPTIONS(description = "X-GitHub-Hook-ID"),
  target_type STRING OPTIONS(description = "X-GitHub-Hook-Installation-Target-Type"),
  target_id INT64 OPTIONS(description = "X-GitHub-Hook-Installation-Target-ID"),
  installation_id INT64 OPTIONS(description = "payload.installation.id"),
  enterprise STRING OPTIONS(description = "payload.enterprise.slug"),
  organization STRING OPTIONS(description = "payload.organization.login"),
  organization_id INT64 OPTIONS(description = "payload.organization.id"),
  repository STRING OPTIONS(description = "payload.repository.full_name"),
  repository_id INT64 OPTIONS(description = "payload.repository.id"),
  sender STRING OPTIONS(description = "payload.sender.login"),
  sender_id INT64 OPTIONS(description = "payload.sender.id"),
  payload_sha256 STRING NOT NULL OPTIONS(description = "lowercase hex SHA-256 of payload"),
  payload_size INT64 NOT NULL OPTIONS(description = "payload length in bytes"),
  payload_uri STRING OPTIONS(description = "where the payload is kept when it is not in the row")
)
PARTITION BY DATE(received)
CLUSTER BY event, organization, repository;
