-- pull_request_reviews: one row per review, its newest state (from pull_request_review_events).
--
-- Newest = the delivery received last, then the greatest delivery_id, so a tie still gives one
-- row (GMA's views returned every tied row). `received` and `delivery_id` name the delivery that
-- brought this state. `reviewer_is_author` says whether the pull request's author reviewed it.
SELECT
  e.* EXCEPT (event, action),
  e.reviewer_id = e.pull_request_author_id AS reviewer_is_author
FROM `${dataset}pull_request_review_events` AS e
JOIN (
  SELECT delivery_id
  FROM (
    SELECT
      delivery_id,
      ROW_NUMBER() OVER (
        PARTITION BY id
        ORDER BY received DESC, delivery_id DESC
      ) AS version
    FROM `${dataset}pull_request_review_events`
    WHERE id IS NOT NULL
  )
  WHERE version = 1
) AS newest
  ON newest.delivery_id = e.delivery_id
