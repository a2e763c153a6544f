-- The leech job's work: completed workflow runs whose logs are not archived yet, one row per run
-- attempt (redelivered copies of the event are one job), leaving out attempts that are done
-- (SUCCESS, NOT_FOUND), that failed as often as the cap allows, or that failed too recently
-- (backoff doubling from the given seconds with each failure). Backfill filters: completion
-- time between since and until, and one repository when repo is not empty.
WITH runs AS (
  SELECT
    delivery_id,
    received,
    SAFE_CAST(JSON_VALUE(payload, '$.workflow_run.id') AS INT64) AS run_id,
    SAFE_CAST(JSON_VALUE(payload, '$.workflow_run.run_attempt') AS INT64) AS run_attempt,
    repository_id,
    installation_id,
    COALESCE(repository, JSON_VALUE(payload, '$.repository.full_name')) AS repository_slug,
    COALESCE(JSON_VALUE(payload, '$.workflow_run.name'), '') AS workflow_name,
    COALESCE(JSON_VALUE(payload, '$.workflow_run.html_url'), '') AS workflow_uri,
    COALESCE(JSON_VALUE(payload, '$.workflow_run.actor.login'), '') AS github_actor,
    SAFE_CAST(JSON_VALUE(payload, '$.workflow_run.updated_at') AS TIMESTAMP) AS completed_at
  FROM `${dataset}${events_table}`
  WHERE event = 'workflow_run'
    AND JSON_VALUE(payload, '$.workflow_run.status') = 'completed'
),
copies AS (
  SELECT
    *,
    ROW_NUMBER() OVER (PARTITION BY run_id, run_attempt ORDER BY received, delivery_id) AS copy
  FROM runs
  WHERE run_id IS NOT NULL AND repository_slug IS NOT NULL
),
tries AS (
  SELECT
    run_id,
    run_attempt,
    COUNT(*) AS attempts,
    LOGICAL_OR(status IN ('SUCCESS', 'NOT_FOUND')) AS done,
    MAX(processed_at) AS last_try
  FROM `${dataset}${status_table}`
  WHERE run_id IS NOT NULL
  GROUP BY run_id, run_attempt
)
SELECT
  copies.delivery_id,
  copies.received,
  copies.run_id,
  COALESCE(copies.run_attempt, 1) AS run_attempt,
  copies.repository_id,
  copies.installation_id,
  copies.repository_slug,
  copies.workflow_name,
  copies.workflow_uri,
  copies.github_actor,
  copies.completed_at,
  COALESCE(tries.attempts, 0) AS attempts
FROM copies
LEFT JOIN tries
  ON tries.run_id = copies.run_id AND tries.run_attempt = COALESCE(copies.run_attempt, 1)
WHERE copies.copy = 1
  AND NOT COALESCE(tries.done, FALSE)
  AND COALESCE(tries.attempts, 0) < @max_attempts
  AND (
    tries.last_try IS NULL
    OR TIMESTAMP_DIFF(@now, tries.last_try, SECOND) >= @backoff_seconds * POW(2, tries.attempts - 1)
  )
  AND COALESCE(copies.completed_at, copies.received) >= @since
  AND COALESCE(copies.completed_at, copies.received) < @until
  AND (@repo = '' OR LOWER(copies.repository_slug) = LOWER(@repo))
