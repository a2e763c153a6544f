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
    merge_commit_sha,
    additions,
    deletions,
    pr_size,
    html_url,
    created_at AS opened_at,
    merged_at,
    lag(merged_at) OVER (
      PARTITION BY head_repository_full_name, head_ref
      ORDER BY merged_at, id
    ) AS previous_merge_at
  FROM pull_requests
  WHERE merged_at IS NOT NULL
),
ready AS (
  SELECT id, min(updated_at) AS ready_at
  FROM pull_request_events
  WHERE action = 'ready_for_review'
  GROUP BY id
),
reviewed AS (
  SELECT
    merged.id,
    min(review.submitted_at) AS first_review_at,
    max(CASE WHEN review.state = 'approved' THEN review.submitted_at END) AS approved_at,
    count(*) AS reviews
  FROM merged
  JOIN pull_request_reviews AS review ON review.pull_request_id = merged.id
  WHERE NOT review.reviewer_is_author AND review.submitted_at <= merged.merged_at
  GROUP BY merged.id
),
committed AS (
  SELECT merged.id, min(push.first_commit_timestamp) AS first_commit_at
  FROM merged
  JOIN push_events AS push
    ON push.repository_full_name = merged.head_repository_full_name
    AND push.ref = concat('refs/heads/', merged.head_ref)
  WHERE push.received <= merged.merged_at
    AND (merged.previous_merge_at IS NULL OR push.received > merged.previous_merge_at)
  GROUP BY merged.id
),
times AS (
  SELECT
    merged.* EXCLUDE (previous_merge_at),
    committed.first_commit_at,
    coalesce(ready.ready_at, merged.opened_at) AS ready_at,
    reviewed.first_review_at,
    reviewed.approved_at,
    coalesce(reviewed.reviews, 0) AS reviews
  FROM merged
  LEFT JOIN committed ON committed.id = merged.id
  LEFT JOIN ready ON ready.id = merged.id
  LEFT JOIN reviewed ON reviewed.id = merged.id
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
