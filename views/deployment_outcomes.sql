-- deployment_outcomes: one row per deployment, from its statuses: whether it counts as
-- production, when it first succeeded and how it ended. The DORA views read it.
--
-- Definitions:
-- - is_production: GitHub marks the deployment `production_environment`, or its environment is
--   one of the production environments setting, compared without case (by default
--   `production` and `prod`).
-- - final_state: the state of its newest terminal status (success, failure or error), NULL
--   while it has none. A later `inactive` status (GitHub sets it when a newer deployment
--   replaces this one) does not hide how it ended.
-- - first_success_at: the creation time of its first `success` status.
-- Built from deployment_status events alone, which carry their deployment, so it works when
-- only those are subscribed (as Four Keys reads them).
SELECT
  * EXCEPT (version, state),
  IF(state IN ('success', 'failure', 'error'), state, NULL) AS final_state,
  IF(state IN ('success', 'failure', 'error'), state_at, NULL) AS final_state_at
FROM (
  SELECT
    organization,
    organization_id,
    repository_full_name,
    repository,
    repository_id,
    deployment_id,
    COALESCE(deployment_environment, environment) AS environment,
    deployment_sha AS sha,
    deployment_ref AS ref,
    COALESCE(
      production_environment
      OR LOWER(COALESCE(deployment_environment, environment)) IN UNNEST(${production_environments}),
      FALSE
    ) AS is_production,
    deployment_created_at AS created_at,
    state,
    created_at AS state_at,
    MIN(IF(state = 'success', created_at, NULL)) OVER (PARTITION BY deployment_id) AS first_success_at,
    ROW_NUMBER() OVER (
      PARTITION BY deployment_id
      ORDER BY
        IF(state IN ('success', 'failure', 'error'), 0, 1),
        created_at DESC NULLS LAST,
        received DESC,
        delivery_id DESC
    ) AS version
  FROM `${dataset}deployment_status_events`
  WHERE deployment_id IS NOT NULL
)
WHERE version = 1
