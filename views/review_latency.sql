-- review_latency: per pull request and reviewer, how long the reviewer took to give a first
-- review.
--
-- Definitions:
-- - requested_at: when the reviewer's review was first requested (a review_requested event
--   naming them; the pull request's `updated_at` then); for a reviewer never requested, when
--   the pull request became ready: opened, or first marked ready for review if opened as a
--   draft.
-- - first_review_at: the reviewer's first submitted review, and first_review_state its state.
-- - latency_seconds = first_review_at - requested_at; NULL while the review is awaited.
-- Reviews by the pull request's author are left out; a team's request (requested_team) is not
-- a person's and is not counted here.
WITH requests AS (
  SELECT id AS pull_request_id, requested_reviewer AS reviewer, MIN(updated_at) AS requested_at
  FROM `${dataset}pull_request_events`
  WHERE action = 'review_requested' AND requested_reviewer IS NOT NULL
  GROUP BY id, requested_reviewer
),
reviews AS (
  SELECT
    pull_request_id,
    reviewer,
    submitted_at AS first_review_at,
    state AS first_review_state
  FROM (
    SELECT
      pull_request_id,
      reviewer,
      submitted_at,
      state,
      ROW_NUMBER() OVER (
        PARTITION BY pull_request_id, reviewer
        ORDER BY submitted_at, id
      ) AS nth
    FROM `${dataset}pull_request_reviews`
    WHERE NOT reviewer_is_author AND submitted_at IS NOT NULL
  )
  WHERE nth = 1
),
pairs AS (
  SELECT pull_request_id, reviewer FROM requests
  UNION DISTINCT
  SELECT pull_request_id, reviewer FROM reviews
)
SELECT
  pr.organization,
  pr.organization_id,
  pr.repository_full_name,
  pr.repository,
  pr.repository_id,
  pairs.pull_request_id,
  pr.number AS pull_request_number,
  pr.author AS pull_request_author,
  pairs.reviewer,
  requests.requested_at IS NOT NULL AS was_requested,
  COALESCE(requests.requested_at, pr.ready_at, pr.created_at) AS requested_at,
  reviews.first_review_at,
  reviews.first_review_state,
  TIMESTAMP_DIFF(
    reviews.first_review_at,
    COALESCE(requests.requested_at, pr.ready_at, pr.created_at),
    SECOND
  ) AS latency_seconds
FROM pairs
JOIN `${dataset}pull_requests` AS pr ON pr.id = pairs.pull_request_id
LEFT JOIN requests
  ON requests.pull_request_id = pairs.pull_request_id AND requests.reviewer = pairs.reviewer
LEFT JOIN reviews
  ON reviews.pull_request_id = pairs.pull_request_id AND reviews.reviewer = pairs.reviewer
