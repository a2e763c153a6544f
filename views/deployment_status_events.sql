-- deployment_status_events: every `deployment_status` event, one row per delivery, with its payload's columns.
--
-- A deployment's status changed (`state`: queued, in_progress, success, failure, error, inactive),
-- with the deployment it belongs to (`deployment_*`), so DORA views need no join.
--
-- The common columns (received, delivery_id, event, action, enterprise, organization,
-- repository, sender, with their ids) come from unique_events, so a redelivered event
-- is one row. A payload kept out of the row (payload_uri) gives NULL columns.
SELECT
  * EXCEPT (signature, payload, payload_uri),
  SAFE_CAST(JSON_VALUE(payload, '$.deployment_status.id') AS INT64) AS id,
  JSON_VALUE(payload, '$.deployment_status.state') AS state,
  JSON_VALUE(payload, '$.deployment_status.description') AS description,
  JSON_VALUE(payload, '$.deployment_status.environment') AS environment,
  JSON_VALUE(payload, '$.deployment_status.target_url') AS target_url,
  JSON_VALUE(payload, '$.deployment_status.creator.login') AS creator,
  SAFE_CAST(JSON_VALUE(payload, '$.deployment_status.creator.id') AS INT64) AS creator_id,
  TIMESTAMP(JSON_VALUE(payload, '$.deployment_status.created_at')) AS created_at,
  TIMESTAMP(JSON_VALUE(payload, '$.deployment_status.updated_at')) AS updated_at,
  SAFE_CAST(JSON_VALUE(payload, '$.deployment.id') AS INT64) AS deployment_id,
  JSON_VALUE(payload, '$.deployment.sha') AS deployment_sha,
  JSON_VALUE(payload, '$.deployment.ref') AS deployment_ref,
  JSON_VALUE(payload, '$.deployment.environment') AS deployment_environment,
  SAFE_CAST(JSON_VALUE(payload, '$.deployment.production_environment') AS BOOL) AS production_environment,
  TIMESTAMP(JSON_VALUE(payload, '$.deployment.created_at')) AS deployment_created_at,
  SAFE_CAST(JSON_VALUE(payload, '$.check_run.id') AS INT64) AS check_run_id,
  SAFE_CAST(JSON_VALUE(payload, '$.workflow.id') AS INT64) AS workflow_id,
  SAFE_CAST(JSON_VALUE(payload, '$.workflow_run.id') AS INT64) AS workflow_run_id
FROM `${dataset}unique_events`
WHERE event = 'deployment_status'
