-- DuckDB equivalent of views/pull_request_events.sql.
CREATE OR REPLACE VIEW pull_request_events AS
SELECT
  *,
  date_diff('second', created_at, closed_at) AS open_duration_seconds
FROM (
  SELECT
    * EXCLUDE (signature, payload, payload_uri),
    TRY_CAST(json_extract_string(payload, '$.pull_request.id') AS BIGINT) AS id,
    TRY_CAST(json_extract_string(payload, '$.pull_request.number') AS BIGINT) AS number,
    json_extract_string(payload, '$.pull_request.title') AS title,
    json_extract_string(payload, '$.pull_request.state') AS state,
    TRY_CAST(json_extract_string(payload, '$.pull_request.draft') AS BOOLEAN) AS draft,
    TRY_CAST(json_extract_string(payload, '$.pull_request.locked') AS BOOLEAN) AS locked,
    json_extract_string(payload, '$.pull_request.active_lock_reason') AS active_lock_reason,
    json_extract_string(payload, '$.pull_request.user.login') AS author,
    TRY_CAST(json_extract_string(payload, '$.pull_request.user.id') AS BIGINT) AS author_id,
    json_extract_string(payload, '$.pull_request.author_association') AS author_association,
    json_extract_string(payload, '$.pull_request.base.ref') AS base_ref,
    json_extract_string(payload, '$.pull_request.base.sha') AS base_sha,
    json_extract_string(payload, '$.pull_request.head.ref') AS head_ref,
    json_extract_string(payload, '$.pull_request.head.sha') AS head_sha,
    json_extract_string(payload, '$.pull_request.head.repo.full_name') AS head_repository_full_name,
    TRY_CAST(json_extract_string(payload, '$.pull_request.head.repo.id') AS BIGINT) AS head_repository_id,
    TRY_CAST(json_extract_string(payload, '$.pull_request.merged') AS BOOLEAN) AS merged,
    TRY_CAST(json_extract_string(payload, '$.pull_request.merged_at') AS TIMESTAMPTZ) AS merged_at,
    json_extract_string(payload, '$.pull_request.merged_by.login') AS merged_by,
    TRY_CAST(json_extract_string(payload, '$.pull_request.merged_by.id') AS BIGINT) AS merged_by_id,
    json_extract_string(payload, '$.pull_request.merge_commit_sha') AS merge_commit_sha,
    json_extract_string(payload, '$.pull_request.mergeable_state') AS mergeable_state,
    TRY_CAST(json_extract_string(payload, '$.pull_request.maintainer_can_modify') AS BOOLEAN) AS maintainer_can_modify,
    TRY_CAST(json_extract_string(payload, '$.pull_request.additions') AS BIGINT) AS additions,
    TRY_CAST(json_extract_string(payload, '$.pull_request.deletions') AS BIGINT) AS deletions,
    TRY_CAST(json_extract_string(payload, '$.pull_request.changed_files') AS BIGINT) AS changed_files,
    TRY_CAST(json_extract_string(payload, '$.pull_request.commits') AS BIGINT) AS commits,
    TRY_CAST(json_extract_string(payload, '$.pull_request.comments') AS BIGINT) AS comments,
    TRY_CAST(json_extract_string(payload, '$.pull_request.review_comments') AS BIGINT) AS review_comments,
    json_extract_string(payload, '$.requested_reviewer.login') AS requested_reviewer,
    json_extract_string(payload, '$.requested_team.slug') AS requested_team,
    json_extract_string(payload, '$.label.name') AS label,
    json_extract_string(payload, '$.pull_request.html_url') AS html_url,
    TRY_CAST(json_extract_string(payload, '$.pull_request.created_at') AS TIMESTAMPTZ) AS created_at,
    TRY_CAST(json_extract_string(payload, '$.pull_request.updated_at') AS TIMESTAMPTZ) AS updated_at,
    TRY_CAST(json_extract_string(payload, '$.pull_request.closed_at') AS TIMESTAMPTZ) AS closed_at
  FROM unique_events
  WHERE event = 'pull_request'
);
