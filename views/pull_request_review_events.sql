-- pull_request_review_events: every `pull_request_review` event, one row per delivery, with its payload's columns.
--
-- A review of a pull request was submitted, edited or dismissed (`state`: approved,
-- changes_requested, commented, dismissed), with the pull request's author for reviewer
-- comparisons.
--
-- The common columns (received, delivery_id, event, action, enterprise, organization,
-- repository, sender, with their ids) come from unique_events, so a redelivered event
-- is one row. A payload kept out of the row (payload_uri) gives NULL columns.
SELECT
  * EXCEPT (signature, payload, payload_uri),
  SAFE_CAST(JSON_VALUE(payload, '$.review.id') AS INT64) AS id,
  JSON_VALUE(payload, '$.review.state') AS state,
  JSON_VALUE(payload, '$.review.body') AS body,
  JSON_VALUE(payload, '$.review.user.login') AS reviewer,
  SAFE_CAST(JSON_VALUE(payload, '$.review.user.id') AS INT64) AS reviewer_id,
  JSON_VALUE(payload, '$.review.author_association') AS author_association,
  JSON_VALUE(payload, '$.review.commit_id') AS commit_id,
  JSON_VALUE(payload, '$.review.html_url') AS html_url,
  TIMESTAMP(JSON_VALUE(payload, '$.review.submitted_at')) AS submitted_at,
  SAFE_CAST(JSON_VALUE(payload, '$.pull_request.id') AS INT64) AS pull_request_id,
  SAFE_CAST(JSON_VALUE(payload, '$.pull_request.number') AS INT64) AS pull_request_number,
  JSON_VALUE(payload, '$.pull_request.state') AS pull_request_state,
  JSON_VALUE(payload, '$.pull_request.html_url') AS pull_request_url,
  JSON_VALUE(payload, '$.pull_request.user.login') AS pull_request_author,
  SAFE_CAST(JSON_VALUE(payload, '$.pull_request.user.id') AS INT64) AS pull_request_author_id,
  TIMESTAMP(JSON_VALUE(payload, '$.pull_request.created_at')) AS pull_request_created_at
FROM `${dataset}unique_events`
WHERE event = 'pull_request_review'
