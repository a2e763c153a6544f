-- deployment_events: every `deployment` event, one row per delivery, with its payload's columns.
--
-- A deployment was created: a request to deploy `sha` (or `ref`) to `environment`. Its outcome
-- arrives as deployment_status events. `creator` is the login (GMA's view returned it quoted).
--
-- The common columns (received, delivery_id, event, action, enterprise, organization,
-- repository, sender, with their ids) come from unique_events, so a redelivered event
-- is one row. A payload kept out of the row (payload_uri) gives NULL columns.
SELECT
  * EXCEPT (signature, payload, payload_uri),
  SAFE_CAST(JSON_VALUE(payload, '$.deployment.id') AS INT64) AS id,
  JSON_VALUE(payload, '$.deployment.environment') AS environment,
  JSON_VALUE(payload, '$.deployment.original_environment') AS original_environment,
  SAFE_CAST(JSON_VALUE(payload, '$.deployment.production_environment') AS BOOL) AS production_environment,
  SAFE_CAST(JSON_VALUE(payload, '$.deployment.transient_environment') AS BOOL) AS transient_environment,
  JSON_VALUE(payload, '$.deployment.ref') AS ref,
  JSON_VALUE(payload, '$.deployment.sha') AS sha,
  JSON_VALUE(payload, '$.deployment.task') AS task,
  JSON_VALUE(payload, '$.deployment.description') AS description,
  JSON_VALUE(payload, '$.deployment.creator.login') AS creator,
  SAFE_CAST(JSON_VALUE(payload, '$.deployment.creator.id') AS INT64) AS creator_id,
  JSON_QUERY(payload, '$.deployment.payload') AS deployment_payload,
  SAFE_CAST(JSON_VALUE(payload, '$.workflow_run.id') AS INT64) AS workflow_run_id,
  TIMESTAMP(JSON_VALUE(payload, '$.deployment.created_at')) AS created_at,
  TIMESTAMP(JSON_VALUE(payload, '$.deployment.updated_at')) AS updated_at
FROM `${dataset}unique_events`
WHERE event = 'deployment'
