-- pull_request_events: every `pull_request` event, one row per delivery, with its payload's columns.
--
-- A pull request changed (`action`: opened, synchronize, closed, reopened, review_requested,
-- ready_for_review, labeled, ...). `merged_by` is the login (GMA's early view cast the object to a
-- TIMESTAMP, always NULL). `requested_reviewer` and `requested_team` are set on review_requested
-- and review_request_removed, `label` on labeled and unlabeled. `open_duration_seconds` runs from
-- creation to closing (NULL while open).
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
    SAFE_CAST(JSON_VALUE(payload, '$.pull_request.id') AS INT64) AS id,
    SAFE_CAST(JSON_VALUE(payload, '$.pull_request.number') AS INT64) AS number,
    JSON_VALUE(payload, '$.pull_request.title') AS title,
    JSON_VALUE(payload, '$.pull_request.state') AS state,
    SAFE_CAST(JSON_VALUE(payload, '$.pull_request.draft') AS BOOL) AS draft,
    SAFE_CAST(JSON_VALUE(payload, '$.pull_request.locked') AS BOOL) AS locked,
    JSON_VALUE(payload, '$.pull_request.active_lock_reason') AS active_lock_reason,
    JSON_VALUE(payload, '$.pull_request.user.login') AS author,
    SAFE_CAST(JSON_VALUE(payload, '$.pull_request.user.id') AS INT64) AS author_id,
    JSON_VALUE(payload, '$.pull_request.author_association') AS author_association,
    JSON_VALUE(payload, '$.pull_request.base.ref') AS base_ref,
    JSON_VALUE(payload, '$.pull_request.base.sha') AS base_sha,
    JSON_VALUE(payload, '$.pull_request.head.ref') AS head_ref,
    JSON_VALUE(payload, '$.pull_request.head.sha') AS head_sha,
    JSON_VALUE(payload, '$.pull_request.head.repo.full_name') AS head_repository_full_name,
    SAFE_CAST(JSON_VALUE(payload, '$.pull_request.head.repo.id') AS INT64) AS head_repository_id,
    SAFE_CAST(JSON_VALUE(payload, '$.pull_request.merged') AS BOOL) AS merged,
    TIMESTAMP(JSON_VALUE(payload, '$.pull_request.merged_at')) AS merged_at,
    JSON_VALUE(payload, '$.pull_request.merged_by.login') AS merged_by,
    SAFE_CAST(JSON_VALUE(payload, '$.pull_request.merged_by.id') AS INT64) AS merged_by_id,
    JSON_VALUE(payload, '$.pull_request.merge_commit_sha') AS merge_commit_sha,
    JSON_VALUE(payload, '$.pull_request.mergeable_state') AS mergeable_state,
    SAFE_CAST(JSON_VALUE(payload, '$.pull_request.maintainer_can_modify') AS BOOL) AS maintainer_can_modify,
    SAFE_CAST(JSON_VALUE(payload, '$.pull_request.additions') AS INT64) AS additions,
    SAFE_CAST(JSON_VALUE(payload, '$.pull_request.deletions') AS INT64) AS deletions,
    SAFE_CAST(JSON_VALUE(payload, '$.pull_request.changed_files') AS INT64) AS changed_files,
    SAFE_CAST(JSON_VALUE(payload, '$.pull_request.commits') AS INT64) AS commits,
    SAFE_CAST(JSON_VALUE(payload, '$.pull_request.comments') AS INT64) AS comments,
    SAFE_CAST(JSON_VALUE(payload, '$.pull_request.review_comments') AS INT64) AS review_comments,
    JSON_VALUE(payload, '$.requested_reviewer.login') AS requested_reviewer,
    JSON_VALUE(payload, '$.requested_team.slug') AS requested_team,
    JSON_VALUE(payload, '$.label.name') AS label,
    JSON_VALUE(payload, '$.pull_request.html_url') AS html_url,
    TIMESTAMP(JSON_VALUE(payload, '$.pull_request.created_at')) AS created_at,
    TIMESTAMP(JSON_VALUE(payload, '$.pull_request.updated_at')) AS updated_at,
    TIMESTAMP(JSON_VALUE(payload, '$.pull_request.closed_at')) AS closed_at
  FROM `${dataset}unique_events`
  WHERE event = 'pull_request'
)
