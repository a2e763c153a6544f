-- pull_request_review_comment_events: every `pull_request_review_comment` event, one row per delivery, with its payload's columns.
--
-- A comment on a line of a pull request's diff was created, edited or deleted.
--
-- The common columns (received, delivery_id, event, action, enterprise, organization,
-- repository, sender, with their ids) come from unique_events, so a redelivered event
-- is one row. A payload kept out of the row (payload_uri) gives NULL columns.
SELECT
  * EXCEPT (signature, payload, payload_uri),
  SAFE_CAST(JSON_VALUE(payload, '$.comment.id') AS INT64) AS id,
  JSON_VALUE(payload, '$.comment.body') AS body,
  JSON_VALUE(payload, '$.comment.user.login') AS commenter,
  SAFE_CAST(JSON_VALUE(payload, '$.comment.user.id') AS INT64) AS commenter_id,
  JSON_VALUE(payload, '$.comment.author_association') AS author_association,
  JSON_VALUE(payload, '$.comment.commit_id') AS commit_sha,
  JSON_VALUE(payload, '$.comment.diff_hunk') AS diff_hunk,
  JSON_VALUE(payload, '$.comment.path') AS path,
  SAFE_CAST(JSON_VALUE(payload, '$.comment.line') AS INT64) AS line,
  SAFE_CAST(JSON_VALUE(payload, '$.comment.in_reply_to_id') AS INT64) AS in_reply_to_id,
  SAFE_CAST(JSON_VALUE(payload, '$.comment.pull_request_review_id') AS INT64) AS pull_request_review_id,
  SAFE_CAST(JSON_VALUE(payload, '$.pull_request.id') AS INT64) AS pull_request_id,
  SAFE_CAST(JSON_VALUE(payload, '$.pull_request.number') AS INT64) AS pull_request_number,
  JSON_VALUE(payload, '$.comment.html_url') AS html_url,
  TIMESTAMP(JSON_VALUE(payload, '$.comment.created_at')) AS created_at,
  TIMESTAMP(JSON_VALUE(payload, '$.comment.updated_at')) AS updated_at
FROM `${dataset}unique_events`
WHERE event = 'pull_request_review_comment'
