-- dora_lead_time: per merged pull request that reached production, the time from its first
-- commit to the deployment that shipped it.
--
-- Definitions:
-- - the deployment that shipped it: the first production deployment (see deployment_outcomes)
--   of the same repository to succeed at or after the merge whose commit is the pull request's
--   merge commit, or whose ref is its base branch and that was created at or after the merge.
--   Webhooks carry no commit ancestry, so a deployment of the base branch created after the
--   merge is taken to contain it (one created before it deploys an older commit of the branch,
--   even when it succeeds after the merge).
-- - lead_time_seconds = deployed_at - first_commit_at (see pr_cycle_time; opened_at when no
--   push was seen). Measured from the pull request's own commits, so squash merges, whose merge
--   commit is new, are measured right (Four Keys' lead time breaks on them).
-- - merge_to_deploy_seconds = deployed_at - merged_at.
-- Pull requests not deployed yet have no row.
WITH shipped AS (
  SELECT
    pr.*,
    deployment.deployment_id,
    deployment.environment,
    deployment.sha AS deployed_sha,
    deployment.first_success_at AS deployed_at,
    ROW_NUMBER() OVER (
      PARTITION BY pr.id
      ORDER BY deployment.first_success_at, deployment.deployment_id
    ) AS nth
  FROM `${dataset}pr_cycle_time` AS pr
  JOIN `${dataset}deployment_outcomes` AS deployment
    ON deployment.repository_id = pr.repository_id
  WHERE deployment.is_production
    AND deployment.first_success_at >= pr.merged_at
    AND (
      deployment.sha = pr.merge_commit_sha
      OR (deployment.ref = pr.base_ref AND deployment.created_at >= pr.merged_at)
    )
)
SELECT
  organization,
  organization_id,
  repository_full_name,
  repository,
  repository_id,
  id AS pull_request_id,
  number AS pull_request_number,
  author,
  merge_commit_sha,
  first_commit_at,
  opened_at,
  merged_at,
  deployment_id,
  environment,
  deployed_sha,
  deployed_at,
  TIMESTAMP_DIFF(deployed_at, COALESCE(first_commit_at, opened_at), SECOND) AS lead_time_seconds,
  TIMESTAMP_DIFF(deployed_at, merged_at, SECOND) AS merge_to_deploy_seconds
FROM shipped
WHERE nth = 1
