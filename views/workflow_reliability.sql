-- workflow_reliability: per repository, workflow and week (starting Monday, UTC), how often its
-- runs succeeded and how long they took.
--
-- Definitions, over completed runs in their newest attempt (workflow_runs), by the week their
-- attempt started:
-- - runs: all of them; successes, failures (failure, timed_out, startup_failure), cancelled.
-- - success_rate = successes / (successes + failures); cancelled and skipped runs are neither.
-- - p50, p90 and p95_duration_seconds: nearest-rank percentiles of duration_seconds (the
--   smallest duration at least that share of timed runs reach), the same on every backend;
--   avg_duration_seconds the mean.
-- `workflow_name` is the newest name the workflow had in that week, and the organization and
-- repository columns the newest names of the repository (so a rename makes no second row).
WITH runs AS (
  SELECT
    organization,
    organization_id,
    repository_full_name,
    repository,
    repository_id,
    workflow_id,
    workflow_name,
    -- The Monday on or before the start (day 0 of Unix time was a Thursday), computed with
    -- arithmetic because the BigQuery emulator has no ISOWEEK in views.
    TIMESTAMP_SECONDS(
      86400 * (
        DIV(UNIX_SECONDS(run_started_at), 86400)
        - MOD(DIV(UNIX_SECONDS(run_started_at), 86400) + 3, 7)
      )
    ) AS week,
    run_started_at,
    conclusion,
    duration_seconds
  FROM `${dataset}workflow_runs`
  WHERE status = 'completed' AND run_started_at IS NOT NULL
),
ranked AS (
  SELECT
    *,
    ROW_NUMBER() OVER (
      PARTITION BY repository_id, workflow_id, week
      ORDER BY duration_seconds NULLS LAST, run_started_at
    ) AS duration_rank,
    COUNT(duration_seconds) OVER (PARTITION BY repository_id, workflow_id, week) AS timed_runs,
    FIRST_VALUE(workflow_name) OVER newest AS newest_name,
    FIRST_VALUE(organization) OVER newest AS newest_organization,
    FIRST_VALUE(organization_id) OVER newest AS newest_organization_id,
    FIRST_VALUE(repository_full_name) OVER newest AS newest_repository_full_name,
    FIRST_VALUE(repository) OVER newest AS newest_repository
  FROM runs
  WINDOW newest AS (
    PARTITION BY repository_id, workflow_id, week
    ORDER BY run_started_at DESC, workflow_name DESC, repository_full_name DESC
  )
)
SELECT
  MAX(newest_organization) AS organization,
  MAX(newest_organization_id) AS organization_id,
  MAX(newest_repository_full_name) AS repository_full_name,
  MAX(newest_repository) AS repository,
  repository_id,
  workflow_id,
  MAX(newest_name) AS workflow_name,
  week,
  COUNT(*) AS runs,
  COUNTIF(conclusion = 'success') AS successes,
  COUNTIF(conclusion IN ('failure', 'timed_out', 'startup_failure')) AS failures,
  COUNTIF(conclusion = 'cancelled') AS cancelled,
  SAFE_DIVIDE(
    COUNTIF(conclusion = 'success'),
    COUNTIF(conclusion IN ('success', 'failure', 'timed_out', 'startup_failure'))
  ) AS success_rate,
  MAX(IF(duration_rank = CAST(CEIL(timed_runs * 0.5) AS INT64), duration_seconds, NULL)) AS p50_duration_seconds,
  MAX(IF(duration_rank = CAST(CEIL(timed_runs * 0.9) AS INT64), duration_seconds, NULL)) AS p90_duration_seconds,
  MAX(IF(duration_rank = CAST(CEIL(timed_runs * 0.95) AS INT64), duration_seconds, NULL)) AS p95_duration_seconds,
  AVG(duration_seconds) AS avg_duration_seconds
FROM ranked
GROUP BY repository_id, workflow_id, week
