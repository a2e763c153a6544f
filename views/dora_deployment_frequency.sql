-- dora_deployment_frequency: per repository, production environment and day (UTC), how many
-- deployments succeeded.
--
-- Definition (DORA's deployment frequency): a production deployment (see deployment_outcomes)
-- counts once, on the day of its first `success` status; failed deployments do not count.
-- Days without a deployment have no row: count the rows of a period for the days with one, sum
-- `deployments` for the total.
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
  COUNT(*) AS deployments
FROM (
  SELECT
    repository_id,
    environment,
    DATE(first_success_at) AS day,
    FIRST_VALUE(organization) OVER newest AS newest_organization,
    FIRST_VALUE(organization_id) OVER newest AS newest_organization_id,
    FIRST_VALUE(repository_full_name) OVER newest AS newest_repository_full_name,
    FIRST_VALUE(repository) OVER newest AS newest_repository
  FROM `${dataset}deployment_outcomes`
  WHERE is_production AND first_success_at IS NOT NULL
  WINDOW newest AS (
    PARTITION BY repository_id, environment, DATE(first_success_at)
    ORDER BY first_success_at DESC, deployment_id DESC
  )
)
GROUP BY repository_id, environment, day
