-- issue_comment_events: every `issue_comment` event, one row per delivery, with its payload's columns.
--
-- A comment on an issue or a pull request (`is_pull_request`) was created, edited or deleted.
-- (GMA's view had `line` and `path` columns, which issue comments never carry; they are gone.)
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
  JSON_VALUE(payload, '$.comment.html_url') AS html_url,
  SAFE_CAST(JSON_VALUE(payload, '$.issue.id') AS INT64) AS issue_id,
  SAFE_CAST(JSON_VALUE(payload, '$.issue.number') AS INT64) AS issue_number,
  TIMESTAMP(JSON_VALUE(payload, '$.comment.created_at')) AS created_at,
  TIMESTAMP(JSON_VALUE(payload, '$.comment.updated_at')) AS updated_at
FROM `${dataset}unique_events`
WHERE event = 'issue_comment'
