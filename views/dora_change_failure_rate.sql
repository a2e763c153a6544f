-- dora_change_failure_rate: per repository, production environment and day (UTC), the share
-- of finished deployments that failed.
--
-- Definition (DORA's change failure rate, counting failed deployments, not incidents): a
-- production deployment (see deployment_outcomes) counts on the day it ended, as failed when
-- its final state is `failure` or `error`. change_failure_rate = failed_deployments /
-- deployments. To rate a longer period, sum both counts and divide; do not average the rates.
-- The organization and repository columns are the newest names of the repository that day, so
-- a renamed repository still has one row.
SELECT
  MAX(newest_organization) AS organization,
  MAX(newest_organization_id) AS organization_id,
  MAX(newest_repository_full_name) AS repository_full_name,
  MAX(newest_repository) AS repository,
  repository_id,
  environment,
  day,
  COUNT(*) AS deployments,
  COUNTIF(final_state IN ('failure', 'error')) AS failed_deployments,
  SAFE_DIVIDE(COUNTIF(final_state IN ('failure', 'error')), COUNT(*)) AS change_failure_rate
FROM (
  SELECT
    repository_id,
    environment,
    final_state,
    DATE(final_state_at) AS day,
    FIRST_VALUE(organization) OVER newest AS newest_organization,
    FIRST_VALUE(organization_id) OVER newest AS newest_organization_id,
    FIRST_VALUE(repository_full_name) OVER newest AS newest_repository_full_name,
    FIRST_VALUE(repository) OVER newest AS newest_repository
  FROM `${dataset}deployment_outcomes`
  WHERE is_production AND final_state IS NOT NULL
  WINDOW newest AS (
    PARTITION BY repository_id, environment, DATE(final_state_at)
    ORDER BY final_state_at DESC, deployment_id DESC
  )
)
GROUP BY repository_id, environment, day
