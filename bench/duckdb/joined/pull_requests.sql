-- DuckDB equivalent of views/pull_requests.sql in its shape (see workflow_runs.sql).
CREATE OR REPLACE VIEW pull_requests AS
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
    e.* EXCLUDE (event, action, requested_reviewer, requested_team, label),
    CASE WHEN readiness.opened_ready THEN e.created_at ELSE readiness.first_ready_for_review_at END
      AS ready_at
  FROM pull_request_events AS e
  JOIN (
    SELECT delivery_id
    FROM (
      SELECT
        delivery_id,
        row_number() OVER (
          PARTITION BY id
          ORDER BY updated_at DESC NULLS LAST, received DESC, delivery_id DESC
        ) AS version
      FROM pull_request_events
      WHERE id IS NOT NULL
    )
    WHERE version = 1
  ) AS newest
    ON newest.delivery_id = e.delivery_id
  JOIN (
    SELECT
      id,
      max(CASE WHEN action = 'opened' AND NOT coalesce(draft, false) THEN 1 ELSE 0 END) = 1 AS opened_ready,
      min(CASE WHEN action = 'ready_for_review' THEN updated_at END) AS first_ready_for_review_at
    FROM pull_request_events
    WHERE id IS NOT NULL
    GROUP BY id
  ) AS readiness
    ON readiness.id = e.id
);
