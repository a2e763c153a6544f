-- dora_deployment_frequency: per repository, production environment and day (UTC), how many
-- deployments succeeded.
--
-- Definition (DORA's deployment frequency): a production deployment (see deployment_outcomes)
-- counts once, on the day of its first `success` status; failed deployments do not count.
-- Days without a deployment have no row: count the rows of a period for the days with one, sum
-- `deployments` for the total.
SELECT
  organization,
  organization_id,
  repository_full_name,
  repository,
  repository_id,
  environment,
  DATE(first_success_at) AS day,
  COUNT(*) AS deployments
FROM `${dataset}deployment_outcomes`
WHERE is_production AND first_success_at IS NOT NULL
GROUP BY
  organization,
  organization_id,
  repository_full_name,
  repository,
  repository_id,
  environment,
  DATE(first_success_at)
