-- issue_events: every `issues` event, one row per delivery, with its payload's columns.
--
-- An issue changed (`action`: opened, edited, closed, reopened, labeled, assigned, ...).
-- `labels` is the issue's labels as a JSON array; `label` the one added or removed by a labeled or
-- unlabeled action. `open_duration_seconds` runs from creation to closing (NULL while open).
--
-- The common columns (received, delivery_id, event, action, enterprise, organization,
-- repository, sender, with their ids) come from unique_events, so a redelivered event
-- is one row. A payload kept out of the row (payload_uri) gives NULL columns.
SELECT
  *,
  TIMESTAMP_DIFF(closed_at, created_at, SECOND) AS open_duration_seconds
FROM (
  SELECT
    * EXCEPT (signature, payload, payload_uri),
    SAFE_CAST(JSON_VALUE(payload, '$.issue.id') AS INT64) AS id,
    SAFE_CAST(JSON_VALUE(payload, '$.issue.number') AS INT64) AS number,
    JSON_VALUE(payload, '$.issue.title') AS title,
    JSON_VALUE(payload, '$.issue.body') AS body,
    JSON_VALUE(payload, '$.issue.state') AS state,
    JSON_VALUE(payload, '$.issue.state_reason') AS state_reason,
    SAFE_CAST(JSON_VALUE(payload, '$.issue.locked') AS BOOL) AS locked,
    JSON_VALUE(payload, '$.issue.active_lock_reason') AS active_lock_reason,
    SAFE_CAST(JSON_VALUE(payload, '$.issue.draft') AS BOOL) AS draft,
    JSON_VALUE(payload, '$.issue.user.login') AS author,
    SAFE_CAST(JSON_VALUE(payload, '$.issue.user.id') AS INT64) AS author_id,
    JSON_VALUE(payload, '$.issue.author_association') AS author_association,
    JSON_VALUE(payload, '$.issue.assignee.login') AS assignee,
    SAFE_CAST(JSON_VALUE(payload, '$.issue.comments') AS INT64) AS comments,
    JSON_QUERY(payload, '$.issue.labels') AS labels,
    JSON_VALUE(payload, '$.label.name') AS label,
    JSON_VALUE(payload, '$.issue.html_url') AS html_url,
    TIMESTAMP(JSON_VALUE(payload, '$.issue.created_at')) AS created_at,
    TIMESTAMP(JSON_VALUE(payload, '$.issue.updated_at')) AS updated_at,
    TIMESTAMP(JSON_VALUE(payload, '$.issue.closed_at')) AS closed_at
  FROM `${dataset}unique_events`
  WHERE event = 'issues'
)
