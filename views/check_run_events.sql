-- check_run_events: every `check_run` event, one row per delivery, with its payload's columns.
--
-- A check run is one check (a CI job, a linter) on a commit; `action` is created, completed,
-- rerequested or requested_action.
--
-- The common columns (received, delivery_id, event, action, enterprise, organization,
-- repository, sender, with their ids) come from unique_events, so a redelivered event
-- is one row. A payload kept out of the row (payload_uri) gives NULL columns.
SELECT
  *,
  TIMESTAMP_DIFF(completed_at, started_at, SECOND) AS duration_seconds
FROM (
  SELECT
    * EXCEPT (signature, payload, payload_uri),
    SAFE_CAST(JSON_VALUE(payload, '$.check_run.id') AS INT64) AS id,
    JSON_VALUE(payload, '$.check_run.name') AS name,
    JSON_VALUE(payload, '$.check_run.status') AS status,
    JSON_VALUE(payload, '$.check_run.conclusion') AS conclusion,
    JSON_VALUE(payload, '$.check_run.head_sha') AS head_sha,
    TIMESTAMP(JSON_VALUE(payload, '$.check_run.started_at')) AS started_at,
    TIMESTAMP(JSON_VALUE(payload, '$.check_run.completed_at')) AS completed_at,
    SAFE_CAST(JSON_VALUE(payload, '$.check_run.check_suite.id') AS INT64) AS check_suite_id,
    JSON_VALUE(payload, '$.check_run.app.slug') AS app,
    SAFE_CAST(JSON_VALUE(payload, '$.check_run.app.id') AS INT64) AS app_id,
    SAFE_CAST(JSON_VALUE(payload, '$.check_run.deployment.id') AS INT64) AS deployment_id,
    JSON_VALUE(payload, '$.check_run.details_url') AS details_url,
    JSON_VALUE(payload, '$.check_run.external_id') AS external_id,
    JSON_VALUE(payload, '$.check_run.html_url') AS html_url,
    JSON_VALUE(payload, '$.check_run.output.title') AS output_title,
    JSON_VALUE(payload, '$.check_run.output.summary') AS output_summary,
    JSON_VALUE(payload, '$.check_run.output.text') AS output_text
  FROM `${dataset}unique_events`
  WHERE event = 'check_run'
)
