-- DuckDB equivalent of views/pull_request_reviews.sql.
CREATE OR REPLACE VIEW pull_request_reviews AS
SELECT
  * EXCLUDE (version),
  reviewer_id = pull_request_author_id AS reviewer_is_author
FROM (
  SELECT
    * EXCLUDE (event, action),
    row_number() OVER (
      PARTITION BY id
      ORDER BY received DESC, delivery_id DESC
    ) AS version
  FROM pull_request_review_events
  WHERE id IS NOT NULL
)
WHERE version = 1;
