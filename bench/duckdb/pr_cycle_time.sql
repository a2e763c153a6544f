-- DuckDB equivalent of views/pr_cycle_time.sql (same CTEs, same joins, same definitions).
CREATE OR REPLACE VIEW pr_cycle_time AS
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
    lag(merged_at) OVER (
      PARTITION BY head_repository_id, head_ref
      ORDER BY merged_at, id
    ) AS previous_merge_at
  FROM pull_requests
  WHERE merged_at IS NOT NULL
),
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
    min(push.first_commit_timestamp) AS first_commit_at,
    coalesce(merged.ready_at, merged.opened_at) AS ready_at,
    min(review.submitted_at) AS first_review_at,
    max(CASE WHEN review.state = 'approved' THEN review.submitted_at END) AS approved_at,
    count(DISTINCT review.id) AS reviews
  FROM merged
  LEFT JOIN pull_request_reviews AS review
    ON review.pull_request_id = merged.id
    AND NOT review.reviewer_is_author
    AND review.submitted_at <= merged.merged_at
  LEFT JOIN push_events AS push
    ON push.repository_id = merged.head_repository_id
    AND push.ref = concat('refs/heads/', merged.head_ref)
    AND coalesce(push.pushed_at, push.received) <= merged.merged_at
    AND (
      merged.previous_merge_at IS NULL
      OR coalesce(push.pushed_at, push.received) > merged.previous_merge_at
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
  CASE WHEN first_commit_at > opened_at THEN 0 ELSE date_diff('second', first_commit_at, opened_at) END AS coding_seconds,
  date_diff('second', ready_at, first_review_at) AS pickup_seconds,
  date_diff('second', first_review_at, coalesce(approved_at, merged_at)) AS review_seconds,
  date_diff('second', approved_at, merged_at) AS merge_seconds,
  date_diff('second', opened_at, first_review_at) AS first_review_latency_seconds,
  date_diff('second', coalesce(first_commit_at, opened_at), merged_at) AS cycle_seconds
FROM times;
