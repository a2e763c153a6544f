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
--
-- Cost: each candidate is found by an equality join (on the merge commit, or on the earliest
-- success among the base branch's deployments created at or after the merge, taken in one
-- ordered pass over the branch's deployments and merges), so the view grows with the number of
-- pull requests and deployments, not with their product. The merges are read from
-- pull_requests (pr_cycle_time's rows are its merged pull requests), and pr_cycle_time once.
WITH merges AS (
  SELECT id, repository_id, merge_commit_sha, base_ref, merged_at
  FROM `${dataset}pull_requests`
  WHERE merged_at IS NOT NULL
),
production AS (
  SELECT repository_id, deployment_id, environment, sha, ref, created_at, first_success_at
  FROM `${dataset}deployment_outcomes`
  WHERE is_production AND first_success_at IS NOT NULL
),
-- A repository's branches in time: its deployments at their creation (those that succeeded at
-- or after it) and the merges into them.
branch_timeline AS (
  SELECT
    repository_id,
    ref,
    created_at AS happened_at,
    0 AS is_merge,
    first_success_at,
    CAST(NULL AS INT64) AS pull_request_id
  FROM production
  WHERE first_success_at >= created_at
  UNION ALL
  SELECT
    repository_id,
    base_ref AS ref,
    merged_at AS happened_at,
    1 AS is_merge,
    CAST(NULL AS TIMESTAMP) AS first_success_at,
    id AS pull_request_id
  FROM merges
),
-- Per merge, the earliest first success among the branch's deployments created at or after it.
branch_next AS (
  SELECT
    pull_request_id,
    repository_id,
    ref,
    happened_at AS merged_at,
    MIN(first_success_at) OVER (
      PARTITION BY repository_id, ref
      ORDER BY happened_at DESC, is_merge
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS first_success_at
  FROM branch_timeline
),
candidates AS (
  -- A deployment of the merge commit.
  SELECT pr.id AS pull_request_id, deployment.*
  FROM merges AS pr
  JOIN production AS deployment
    ON deployment.repository_id = pr.repository_id
    AND deployment.sha = pr.merge_commit_sha
  WHERE deployment.first_success_at >= pr.merged_at
  UNION ALL
  -- The base branch's deployments that first succeeded earliest after the merge.
  SELECT branch_min.pull_request_id, deployment.*
  FROM branch_next AS branch_min
  JOIN production AS deployment
    ON deployment.repository_id = branch_min.repository_id
    AND deployment.ref = branch_min.ref
    AND deployment.first_success_at = branch_min.first_success_at
  WHERE branch_min.pull_request_id IS NOT NULL
    AND deployment.created_at >= branch_min.merged_at
    AND deployment.first_success_at >= branch_min.merged_at
  UNION ALL
  -- A deployment of the base branch recorded as succeeding before its own creation (left out of
  -- branch_timeline, whose order assumes the opposite).
  SELECT pr.id AS pull_request_id, deployment.*
  FROM merges AS pr
  JOIN production AS deployment
    ON deployment.repository_id = pr.repository_id
    AND deployment.ref = pr.base_ref
  WHERE deployment.first_success_at < deployment.created_at
    AND deployment.created_at >= pr.merged_at
    AND deployment.first_success_at >= pr.merged_at
),
shipped AS (
  SELECT
    pull_request_id,
    deployment_id,
    environment,
    sha AS deployed_sha,
    first_success_at AS deployed_at,
    ROW_NUMBER() OVER (
      PARTITION BY pull_request_id
      ORDER BY first_success_at, deployment_id
    ) AS nth
  FROM candidates
)
SELECT
  pr.organization,
  pr.organization_id,
  pr.repository_full_name,
  pr.repository,
  pr.repository_id,
  pr.id AS pull_request_id,
  pr.number AS pull_request_number,
  pr.author,
  pr.merge_commit_sha,
  pr.first_commit_at,
  pr.opened_at,
  pr.merged_at,
  shipped.deployment_id,
  shipped.environment,
  shipped.deployed_sha,
  shipped.deployed_at,
  TIMESTAMP_DIFF(shipped.deployed_at, COALESCE(pr.first_commit_at, pr.opened_at), SECOND)
    AS lead_time_seconds,
  TIMESTAMP_DIFF(shipped.deployed_at, pr.merged_at, SECOND) AS merge_to_deploy_seconds
FROM shipped
JOIN `${dataset}pr_cycle_time` AS pr ON pr.id = shipped.pull_request_id
WHERE shipped.nth = 1
