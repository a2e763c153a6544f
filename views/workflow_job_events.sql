-- workflow_job_events: every `workflow_job` event, one row per delivery, with its payload's columns.
--
-- A job of a workflow run was queued, started (in_progress) or completed. `duration_seconds` runs
-- from start to completion; `queued_seconds` from creation to start.
--
-- The common columns (received, delivery_id, event, action, enterprise, organization,
-- repository, sender, with their ids) come from unique_events, so a redelivered event
-- is one row. A payload kept out of the row (payload_uri) gives NULL columns.
SELECT
  *,
  TIMESTAMP_DIFF(completed_at, started_at, SECOND) AS duration_seconds,
  TIMESTAMP_DIFF(started_at, created_at, SECOND) AS queued_seconds
FROM (
  SELECT
    * EXCEPT (signature, payload, payload_uri),
    SAFE_CAST(JSON_VALUE(payload, '$.workflow_job.id') AS INT64) AS id,
    SAFE_CAST(JSON_VALUE(payload, '$.workflow_job.run_id') AS INT64) AS run_id,
    SAFE_CAST(JSON_VALUE(payload, '$.workflow_job.run_attempt') AS INT64) AS run_attempt,
    JSON_VALUE(payload, '$.workflow_job.name') AS name,
    JSON_VALUE(payload, '$.workflow_job.workflow_name') AS workflow_name,
    JSON_VALUE(payload, '$.workflow_job.status') AS status,
    JSON_VALUE(payload, '$.workflow_job.conclusion') AS conclusion,
    JSON_VALUE(payload, '$.workflow_job.head_branch') AS head_branch,
    JSON_VALUE(payload, '$.workflow_job.head_sha') AS head_sha,
    JSON_VALUE(payload, '$.workflow_job.runner_name') AS runner_name,
    JSON_VALUE(payload, '$.workflow_job.runner_group_name') AS runner_group_name,
    JSON_QUERY(payload, '$.workflow_job.labels') AS labels,
    JSON_VALUE(payload, '$.workflow_job.html_url') AS html_url,
    TIMESTAMP(JSON_VALUE(payload, '$.workflow_job.created_at')) AS created_at,
    TIMESTAMP(JSON_VALUE(payload, '$.workflow_job.started_at')) AS started_at,
    TIMESTAMP(JSON_VALUE(payload, '$.workflow_job.completed_at')) AS completed_at
  FROM `${dataset}unique_events`
  WHERE event = 'workflow_job'
)
