-- pr_cycle_time: per merged pull request, where its time went from first commit to merge:
-- coding, pickup, review and merge.
--
-- Definitions (durations in seconds, NULL when the events of a step were not seen):
-- - first_commit_at: the author time of the oldest commit pushed to the pull request's head
--   branch (in its head repository, by id, so a renamed repository's earlier pushes count)
--   after the previous merge from that branch and before this merge (pushed at the push's
--   `pushed_at`, or when it was received if it has none, so a redelivery does not move it).
--   Found through the branch, not the merge commit, so squash and rebase merges (which rewrite
--   commits) are measured the same as merge commits.
-- - ready_at: when it was opened, or first marked ready for review if it was opened as a draft.
-- - first_review_at: the first review submitted before the merge by someone other than the
--   author; approved_at: the last approving one. `reviews` counts those reviews.
-- - coding_seconds = opened_at - first_commit_at (0 when the first commit came after opening)
-- - pickup_seconds = first_review_at - ready_at
-- - review_seconds = approved_at - first_review_at (merged_at when merged without approval)
-- - merge_seconds = merged_at - approved_at
-- - first_review_latency_seconds = first_review_at - opened_at
-- - cycle_seconds = merged_at - first_commit_at (opened_at when no push was seen)
WITH merged AS (
  SELECT
    organization,
    organization_id,
    repository_full_name,
    repository,
    repository_id,
    id,
    number,
    title,
    author,
    author_id,
    base_ref,
    head_ref,
    head_repository_full_name,
    head_repository_id,
    merge_commit_sha,
    additions,
    deletions,
    pr_size,
    html_url,
    created_at AS opened_at,
    ready_at,
    merged_at,
    LAG(merged_at) OVER (
      PARTITION BY head_repository_id, head_ref
      ORDER BY merged_at, id
    ) AS previous_merge_at
  FROM `${dataset}pull_requests`
  WHERE merged_at IS NOT NULL
),
-- Each pull request's reviews and pushes are joined beside it and aggregated in one step, so
-- the pull requests are read once (a CTE named three times is computed three times locally).
times AS (
  SELECT
    merged.organization,
    merged.organization_id,
    merged.repository_full_name,
    merged.repository,
    merged.repository_id,
    merged.id,
    merged.number,
    merged.title,
    merged.author,
    merged.author_id,
    merged.base_ref,
    merged.head_ref,
    merged.head_repository_full_name,
    merged.head_repository_id,
    merged.merge_commit_sha,
    merged.additions,
    merged.deletions,
    merged.pr_size,
    merged.html_url,
    merged.opened_at,
    merged.merged_at,
    MIN(push.first_commit_timestamp) AS first_commit_at,
    COALESCE(merged.ready_at, merged.opened_at) AS ready_at,
    MIN(review.submitted_at) AS first_review_at,
    MAX(IF(review.state = 'approved', review.submitted_at, NULL)) AS approved_at,
    COUNT(DISTINCT review.id) AS reviews
  FROM merged
  LEFT JOIN `${dataset}pull_request_reviews` AS review
    ON review.pull_request_id = merged.id
    AND NOT review.reviewer_is_author
    AND review.submitted_at <= merged.merged_at
  LEFT JOIN `${dataset}push_events` AS push
    ON push.repository_id = merged.head_repository_id
    AND push.ref = CONCAT('refs/heads/', merged.head_ref)
    AND COALESCE(push.pushed_at, push.received) <= merged.merged_at
    AND (
      merged.previous_merge_at IS NULL
      OR COALESCE(push.pushed_at, push.received) > merged.previous_merge_at
    )
  GROUP BY
    merged.organization,
    merged.organization_id,
    merged.repository_full_name,
    merged.repository,
    merged.repository_id,
    merged.id,
    merged.number,
    merged.title,
    merged.author,
    merged.author_id,
    merged.base_ref,
    merged.head_ref,
    merged.head_repository_full_name,
    merged.head_repository_id,
    merged.merge_commit_sha,
    merged.additions,
    merged.deletions,
    merged.pr_size,
    merged.html_url,
    merged.opened_at,
    merged.merged_at,
    merged.ready_at
)
SELECT
  *,
  IF(first_commit_at > opened_at, 0, TIMESTAMP_DIFF(opened_at, first_commit_at, SECOND)) AS coding_seconds,
  TIMESTAMP_DIFF(first_review_at, ready_at, SECOND) AS pickup_seconds,
  TIMESTAMP_DIFF(COALESCE(approved_at, merged_at), first_review_at, SECOND) AS review_seconds,
  TIMESTAMP_DIFF(merged_at, approved_at, SECOND) AS merge_seconds,
  TIMESTAMP_DIFF(first_review_at, opened_at, SECOND) AS first_review_latency_seconds,
  TIMESTAMP_DIFF(merged_at, COALESCE(first_commit_at, opened_at), SECOND) AS cycle_seconds
FROM times
