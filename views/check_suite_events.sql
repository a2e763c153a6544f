-- check_suite_events: every `check_suite` event, one row per delivery, with its payload's columns.
--
-- A check suite groups the check runs of one app on one commit; `action` is completed, requested
-- or rerequested.
--
-- The common columns (received, delivery_id, event, action, enterprise, organization,
-- repository, sender, with their ids) come from unique_events, so a redelivered event
-- is one row. A payload kept out of the row (payload_uri) gives NULL columns.
SELECT
  * EXCEPT (signature, payload, payload_uri),
  SAFE_CAST(JSON_VALUE(payload, '$.check_suite.id') AS INT64) AS id,
  JSON_VALUE(payload, '$.check_suite.status') AS status,
  JSON_VALUE(payload, '$.check_suite.conclusion') AS conclusion,
  JSON_VALUE(payload, '$.check_suite.head_branch') AS head_branch,
  JSON_VALUE(payload, '$.check_suite.head_sha') AS head_sha,
  JSON_VALUE(payload, '$.check_suite.before') AS before_sha,
  JSON_VALUE(payload, '$.check_suite.after') AS after_sha,
  JSON_VALUE(payload, '$.check_suite.app.slug') AS app,
  SAFE_CAST(JSON_VALUE(payload, '$.check_suite.app.id') AS INT64) AS app_id,
  SAFE_CAST(JSON_VALUE(payload, '$.check_suite.latest_check_runs_count') AS INT64) AS latest_check_runs_count,
  TIMESTAMP(JSON_VALUE(payload, '$.check_suite.created_at')) AS created_at,
  TIMESTAMP(JSON_VALUE(payload, '$.check_suite.updated_at')) AS updated_at
FROM `${dataset}unique_events`
WHERE event = 'check_suite'
