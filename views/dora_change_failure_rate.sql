-- dora_change_failure_rate: per repository, production environment and day (UTC), the share
-- of finished deployments that failed.
--
-- Definition (DORA's change failure rate, counting failed deployments, not incidents): a
-- production deployment (see deployment_outcomes) counts on the day it ended, as failed when
-- its final state is `failure` or `error`. change_failure_rate = failed_deployments /
-- deployments. To rate a longer period, sum both counts and divide; do not average the rates.
SELECT
  organization,
  organization_id,
  repository_full_name,
  repository,
  repository_id,
  environment,
  DATE(final_state_at) AS day,
  COUNT(*) AS deployments,
  COUNTIF(final_state IN ('failure', 'error')) AS failed_deployments,
  SAFE_DIVIDE(COUNTIF(final_state IN ('failure', 'error')), COUNT(*)) AS change_failure_rate
FROM `${dataset}deployment_outcomes`
WHERE is_production AND final_state IS NOT NULL
GROUP BY
  organization,
  organization_id,
  repository_full_name,
  repository,
  repository_id,
  environment,
  DATE(final_state_at)
