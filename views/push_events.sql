-- push_events: every `push` event, one row per delivery, with its payload's columns.
--
-- Commits were pushed to `ref` (a full ref: refs/heads/main). `compare_url` is the payload's
-- `compare` (GMA's later queries read `compare_url`, which GitHub never sends). `commits` is the
-- JSON array of up to 2048 commits, oldest first, so `first_commit_timestamp` is the oldest
-- commit's author time. `pushed_at` is when the push happened (the payload's
-- `repository.pushed_at`, Unix seconds in push payloads), which a redelivery does not move as it
-- moves `received`. push has no action.
--
-- The common columns (received, delivery_id, event, action, enterprise, organization,
-- repository, sender, with their ids) come from unique_events, so a redelivered event
-- is one row. A payload kept out of the row (payload_uri) gives NULL columns.
SELECT
  * EXCEPT (signature, payload, payload_uri),
  JSON_VALUE(payload, '$.ref') AS ref,
  JSON_VALUE(payload, '$.before') AS before_sha,
  JSON_VALUE(payload, '$.after') AS after_sha,
  SAFE_CAST(JSON_VALUE(payload, '$.created') AS BOOL) AS created,
  SAFE_CAST(JSON_VALUE(payload, '$.deleted') AS BOOL) AS deleted,
  SAFE_CAST(JSON_VALUE(payload, '$.forced') AS BOOL) AS forced,
  JSON_VALUE(payload, '$.base_ref') AS base_ref,
  JSON_VALUE(payload, '$.compare') AS compare_url,
  JSON_VALUE(payload, '$.pusher.name') AS pusher,
  JSON_QUERY(payload, '$.commits') AS commits,
  ARRAY_LENGTH(JSON_QUERY_ARRAY(payload, '$.commits')) AS commit_count,
  JSON_VALUE(payload, '$.head_commit.id') AS head_commit_id,
  TIMESTAMP(JSON_VALUE(payload, '$.head_commit.timestamp')) AS head_commit_timestamp,
  TIMESTAMP(JSON_VALUE(payload, '$.commits[0].timestamp')) AS first_commit_timestamp,
  JSON_VALUE(payload, '$.repository.default_branch') AS repository_default_branch,
  TIMESTAMP_SECONDS(SAFE_CAST(JSON_VALUE(payload, '$.repository.pushed_at') AS INT64)) AS pushed_at
FROM `${dataset}unique_events`
WHERE event = 'push'
