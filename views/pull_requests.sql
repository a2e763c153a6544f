-- pull_requests: one row per pull request, its newest state (from pull_request_events).
--
-- Newest = the latest `updated_at`, then the delivery received last, then the greatest
-- delivery_id, so a tie still gives one row (GMA's views returned every tied row). `received`
-- and `delivery_id` name the delivery that brought this state. `pr_size` buckets additions +
-- deletions (XS up to 9 lines, S 49, M 249, L 999, XL above); `submission_time` buckets how long
-- it was open until closed, from `< 10m` to `>= 30d` (NULL while open). `ready_at` is when it
-- became ready for review: its creation when it was opened ready, else when a draft was first
-- marked ready (a later trip through draft does not move it); NULL while neither was seen.
SELECT
  *,
  CASE
    WHEN additions + deletions <= 9 THEN 'XS'
    WHEN additions + deletions <= 49 THEN 'S'
    WHEN additions + deletions <= 249 THEN 'M'
    WHEN additions + deletions <= 999 THEN 'L'
    WHEN additions + deletions IS NOT NULL THEN 'XL'
  END AS pr_size,
  CASE
    WHEN open_duration_seconds IS NULL THEN NULL
    WHEN open_duration_seconds < 600 THEN '< 10m'
    WHEN open_duration_seconds < 1800 THEN '< 30m'
    WHEN open_duration_seconds < 3600 THEN '< 1h'
    WHEN open_duration_seconds < 3 * 3600 THEN '< 3h'
    WHEN open_duration_seconds < 6 * 3600 THEN '< 6h'
    WHEN open_duration_seconds < 12 * 3600 THEN '< 12h'
    WHEN open_duration_seconds < 86400 THEN '< 1d'
    WHEN open_duration_seconds < 2 * 86400 THEN '< 2d'
    WHEN open_duration_seconds < 4 * 86400 THEN '< 4d'
    WHEN open_duration_seconds < 7 * 86400 THEN '< 7d'
    WHEN open_duration_seconds < 14 * 86400 THEN '< 14d'
    WHEN open_duration_seconds < 30 * 86400 THEN '< 30d'
    ELSE '>= 30d'
  END AS submission_time
FROM (
  SELECT
    e.* EXCEPT (event, action, requested_reviewer, requested_team, label),
    IF(readiness.opened_ready, e.created_at, readiness.first_ready_for_review_at) AS ready_at
  FROM `${dataset}pull_request_events` AS e
  JOIN (
    SELECT delivery_id
    FROM (
      SELECT
        delivery_id,
        ROW_NUMBER() OVER (
          PARTITION BY id
          ORDER BY updated_at DESC NULLS LAST, received DESC, delivery_id DESC
        ) AS version
      FROM `${dataset}pull_request_events`
      WHERE id IS NOT NULL
    )
    WHERE version = 1
  ) AS newest
    ON newest.delivery_id = e.delivery_id
  JOIN (
    SELECT
      id,
      MAX(IF(action = 'opened' AND NOT COALESCE(draft, FALSE), 1, 0)) = 1 AS opened_ready,
      MIN(IF(action = 'ready_for_review', updated_at, NULL)) AS first_ready_for_review_at
    FROM `${dataset}pull_request_events`
    WHERE id IS NOT NULL
    GROUP BY id
  ) AS readiness
    ON readiness.id = e.id
)
