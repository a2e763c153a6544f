-- DuckDB equivalent of views/pull_request_review_events.sql.
CREATE OR REPLACE VIEW pull_request_review_events AS
SELECT
  * EXCLUDE (signature, payload, payload_uri),
  TRY_CAST(json_extract_string(payload, '$.review.id') AS BIGINT) AS id,
  json_extract_string(payload, '$.review.state') AS state,
  json_extract_string(payload, '$.review.body') AS body,
  json_extract_string(payload, '$.review.user.login') AS reviewer,
  TRY_CAST(json_extract_string(payload, '$.review.user.id') AS BIGINT) AS reviewer_id,
  json_extract_string(payload, '$.review.author_association') AS author_association,
  json_extract_string(payload, '$.review.commit_id') AS commit_id,
  json_extract_string(payload, '$.review.html_url') AS html_url,
  TRY_CAST(json_extract_string(payload, '$.review.submitted_at') AS TIMESTAMPTZ) AS submitted_at,
  TRY_CAST(json_extract_string(payload, '$.pull_request.id') AS BIGINT) AS pull_request_id,
  TRY_CAST(json_extract_string(payload, '$.pull_request.number') AS BIGINT) AS pull_request_number,
  json_extract_string(payload, '$.pull_request.state') AS pull_request_state,
  json_extract_string(payload, '$.pull_request.html_url') AS pull_request_url,
  json_extract_string(payload, '$.pull_request.user.login') AS pull_request_author,
  TRY_CAST(json_extract_string(payload, '$.pull_request.user.id') AS BIGINT) AS pull_request_author_id,
  TRY_CAST(json_extract_string(payload, '$.pull_request.created_at') AS TIMESTAMPTZ) AS pull_request_created_at
FROM unique_events
WHERE event = 'pull_request_review';
