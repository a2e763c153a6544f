-- DuckDB equivalent of views/workflow_run_events.sql.
CREATE OR REPLACE VIEW workflow_run_events AS
SELECT
  *,
  CASE WHEN status = 'completed' THEN date_diff('second', run_started_at, updated_at) END AS duration_seconds
FROM (
  SELECT
    * EXCLUDE (signature, payload, payload_uri),
    TRY_CAST(json_extract_string(payload, '$.workflow_run.id') AS BIGINT) AS id,
    TRY_CAST(json_extract_string(payload, '$.workflow_run.run_attempt') AS BIGINT) AS run_attempt,
    TRY_CAST(json_extract_string(payload, '$.workflow_run.run_number') AS BIGINT) AS run_number,
    json_extract_string(payload, '$.workflow_run.name') AS workflow_name,
    TRY_CAST(json_extract_string(payload, '$.workflow_run.workflow_id') AS BIGINT) AS workflow_id,
    json_extract_string(payload, '$.workflow_run.path') AS path,
    json_extract_string(payload, '$.workflow_run.display_title') AS display_title,
    json_extract_string(payload, '$.workflow_run.event') AS workflow_event,
    json_extract_string(payload, '$.workflow_run.status') AS status,
    json_extract_string(payload, '$.workflow_run.conclusion') AS conclusion,
    json_extract_string(payload, '$.workflow_run.head_branch') AS head_branch,
    json_extract_string(payload, '$.workflow_run.head_sha') AS head_sha,
    json_extract_string(payload, '$.workflow_run.actor.login') AS actor,
    json_extract_string(payload, '$.workflow_run.triggering_actor.login') AS triggering_actor,
    json_extract_string(payload, '$.workflow_run.html_url') AS html_url,
    json_extract_string(payload, '$.workflow.html_url') AS workflow_html_url,
    TRY_CAST(json_extract_string(payload, '$.workflow_run.created_at') AS TIMESTAMPTZ) AS created_at,
    TRY_CAST(json_extract_string(payload, '$.workflow_run.run_started_at') AS TIMESTAMPTZ) AS run_started_at,
    TRY_CAST(json_extract_string(payload, '$.workflow_run.updated_at') AS TIMESTAMPTZ) AS updated_at
  FROM unique_events
  WHERE event = 'workflow_run'
);
