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
-- Each failure's restore is found in one ordered pass over its repository's and environment's
-- failures and successes, so the view grows with the number of deployments, not its square.
WITH restore_timeline AS (
  SELECT
    organization,
    organization_id,
    repository_full_name,
    repository,
    repository_id,
    environment,
    deployment_id,
    final_state_at AS happened_at,
    0 AS is_success,
    CAST(NULL AS TIMESTAMP) AS success_at
  FROM `${dataset}deployment_outcomes`
  WHERE is_production AND final_state IN ('failure', 'error')
  UNION ALL
  SELECT
    CAST(NULL AS STRING) AS organization,
    CAST(NULL AS INT64) AS organization_id,
    CAST(NULL AS STRING) AS repository_full_name,
    CAST(NULL AS STRING) AS repository,
    repository_id,
    environment,
    CAST(NULL AS INT64) AS deployment_id,
    first_success_at AS happened_at,
    1 AS is_success,
    first_success_at AS success_at
  FROM `${dataset}deployment_outcomes`
  WHERE is_production AND first_success_at IS NOT NULL
),
-- Per failure, the first success after it (later in time; at the same instant, failures first).
failed AS (
  SELECT * EXCEPT (is_success, success_at)
  FROM (
    SELECT
      organization,
      organization_id,
      repository_full_name,
      repository,
      repository_id,
      environment,
      deployment_id,
      happened_at AS started_at,
      is_success,
      success_at,
      IF(
        repository_id IS NULL OR environment IS NULL OR happened_at IS NULL,
        NULL,
        MIN(success_at) OVER (
          PARTITION BY repository_id, environment
          ORDER BY happened_at DESC, is_success
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        )
      ) AS restored_at
    FROM restore_timeline
  )
  WHERE is_success = 0
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
