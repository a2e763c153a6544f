-- DuckDB equivalent of views/push_events.sql.
CREATE OR REPLACE VIEW push_events AS
SELECT
  * EXCLUDE (signature, payload, payload_uri),
  json_extract_string(payload, '$.ref') AS ref,
  json_extract_string(payload, '$.before') AS before_sha,
  json_extract_string(payload, '$.after') AS after_sha,
  TRY_CAST(json_extract_string(payload, '$.created') AS BOOLEAN) AS created,
  TRY_CAST(json_extract_string(payload, '$.deleted') AS BOOLEAN) AS deleted,
  TRY_CAST(json_extract_string(payload, '$.forced') AS BOOLEAN) AS forced,
  json_extract_string(payload, '$.base_ref') AS base_ref,
  json_extract_string(payload, '$.compare') AS compare_url,
  json_extract_string(payload, '$.pusher.name') AS pusher,
  CAST(json_extract(payload, '$.commits') AS VARCHAR) AS commits,
  CAST(json_array_length(payload, '$.commits') AS BIGINT) AS commit_count,
  json_extract_string(payload, '$.head_commit.id') AS head_commit_id,
  TRY_CAST(json_extract_string(payload, '$.head_commit.timestamp') AS TIMESTAMPTZ) AS head_commit_timestamp,
  TRY_CAST(json_extract_string(payload, '$.commits[0].timestamp') AS TIMESTAMPTZ) AS first_commit_timestamp,
  json_extract_string(payload, '$.repository.default_branch') AS repository_default_branch,
  to_timestamp(TRY_CAST(json_extract_string(payload, '$.repository.pushed_at') AS BIGINT)) AS pushed_at
FROM unique_events
WHERE event = 'push';
