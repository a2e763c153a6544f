-- workflow_run_events: every `workflow_run` event, one row per delivery, with its payload's columns.
--
-- A workflow run was requested, started (in_progress) or completed. `duration_seconds` runs from
-- the attempt's start to its last update, and only once it is completed (GMA computed it for
-- running runs too).
--
-- The common columns (received, delivery_id, event, action, enterprise, organization,
-- repository, sender, with their ids) come from unique_events, so a redelivered event
-- is one row. A payload kept out of the row (payload_uri) gives NULL columns.
SELECT
  *,
  IF(status = 'completed', TIMESTAMP_DIFF(updated_at, run_started_at, SECOND), NULL) AS duration_seconds
FROM (
  SELECT
    * EXCEPT (signature, payload, payload_uri),
    SAFE_CAST(JSON_VALUE(payload, '$.workflow_run.id') AS INT64) AS id,
    SAFE_CAST(JSON_VALUE(payload, '$.workflow_run.run_attempt') AS INT64) AS run_attempt,
    SAFE_CAST(JSON_VALUE(payload, '$.workflow_run.run_number') AS INT64) AS run_number,
    JSON_VALUE(payload, '$.workflow_run.name') AS workflow_name,
    SAFE_CAST(JSON_VALUE(payload, '$.workflow_run.workflow_id') AS INT64) AS workflow_id,
    JSON_VALUE(payload, '$.workflow_run.path') AS path,
    JSON_VALUE(payload, '$.workflow_run.display_title') AS display_title,
    JSON_VALUE(payload, '$.workflow_run.event') AS workflow_event,
    JSON_VALUE(payload, '$.workflow_run.status') AS status,
    JSON_VALUE(payload, '$.workflow_run.conclusion') AS conclusion,
    JSON_VALUE(payload, '$.workflow_run.head_branch') AS head_branch,
    JSON_VALUE(payload, '$.workflow_run.head_sha') AS head_sha,
    JSON_VALUE(payload, '$.workflow_run.actor.login') AS actor,
    JSON_VALUE(payload, '$.workflow_run.triggering_actor.login') AS triggering_actor,
    JSON_VALUE(payload, '$.workflow_run.html_url') AS html_url,
    JSON_VALUE(payload, '$.workflow.html_url') AS workflow_html_url,
    TIMESTAMP(JSON_VALUE(payload, '$.workflow_run.created_at')) AS created_at,
    TIMESTAMP(JSON_VALUE(payload, '$.workflow_run.run_started_at')) AS run_started_at,
    TIMESTAMP(JSON_VALUE(payload, '$.workflow_run.updated_at')) AS updated_at
  FROM `${dataset}unique_events`
  WHERE event = 'workflow_run'
)
