-- DuckDB equivalent of views/pull_request_reviews.sql in its shape (see workflow_runs.sql).
CREATE OR REPLACE VIEW pull_request_reviews AS
SELECT
  e.* EXCLUDE (event, action),
  e.reviewer_id = e.pull_request_author_id AS reviewer_is_author
FROM pull_request_review_events AS e
JOIN (
  SELECT delivery_id
  FROM (
    SELECT
      delivery_id,
      row_number() OVER (
        PARTITION BY id
        ORDER BY received DESC, delivery_id DESC
      ) AS version
    FROM pull_request_review_events
    WHERE id IS NOT NULL
  )
  WHERE version = 1
) AS newest
  ON newest.delivery_id = e.delivery_id;
