-- dora_time_to_restore: every production failure and incident, and how long service took to
-- be restored.
--
-- Two sources, told apart by `source`:
-- - 'deployment': a production deployment whose final state is `failure` or `error` (see
--   deployment_outcomes), restored by the next production deployment of the same repository
--   and environment that succeeded: started_at is when it failed, restored_at when that next
--   deployment first succeeded (DevLake's "failed deployment recovery time").
-- - 'incident': an issue carrying one of the incident labels setting (compared without case;
--   by default `incident`), from its creation (started_at) to its closing (restored_at).
-- restore_seconds = restored_at - started_at; NULL while not restored. Take the median of
-- restore_seconds over a period for DORA's time to restore.
WITH failed AS (
  SELECT
    failure.organization,
    failure.organization_id,
    failure.repository_full_name,
    failure.repository,
    failure.repository_id,
    failure.environment,
    failure.deployment_id,
    failure.final_state_at AS started_at,
    MIN(fix.first_success_at) AS restored_at
  FROM `${dataset}deployment_outcomes` AS failure
  LEFT JOIN `${dataset}deployment_outcomes` AS fix
    ON fix.repository_id = failure.repository_id
    AND fix.environment = failure.environment
    AND fix.is_production
    AND fix.first_success_at > failure.final_state_at
  WHERE failure.is_production AND failure.final_state IN ('failure', 'error')
  GROUP BY
    failure.organization,
    failure.organization_id,
    failure.repository_full_name,
    failure.repository,
    failure.repository_id,
    failure.environment,
    failure.deployment_id,
    failure.final_state_at
),
incidents AS (
  SELECT DISTINCT
    issue.organization,
    issue.organization_id,
    issue.repository_full_name,
    issue.repository,
    issue.repository_id,
    issue.number,
    issue.html_url,
    issue.created_at AS started_at,
    issue.closed_at AS restored_at
  FROM `${dataset}issues` AS issue, UNNEST(JSON_QUERY_ARRAY(issue.labels)) AS label
  WHERE LOWER(JSON_VALUE(label, '$.name')) IN UNNEST(${incident_labels})
    AND NOT issue.is_deleted
)
SELECT
  'deployment' AS source,
  organization,
  organization_id,
  repository_full_name,
  repository,
  repository_id,
  environment,
  deployment_id,
  CAST(NULL AS INT64) AS issue_number,
  CAST(NULL AS STRING) AS html_url,
  started_at,
  restored_at,
  TIMESTAMP_DIFF(restored_at, started_at, SECOND) AS restore_seconds
FROM failed
UNION ALL
SELECT
  'incident' AS source,
  organization,
  organization_id,
  repository_full_name,
  repository,
  repository_id,
  CAST(NULL AS STRING) AS environment,
  CAST(NULL AS INT64) AS deployment_id,
  number AS issue_number,
  html_url,
  started_at,
  restored_at,
  TIMESTAMP_DIFF(restored_at, started_at, SECOND) AS restore_seconds
FROM incidents
