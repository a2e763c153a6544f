-- DuckDB equivalent of views/unique_events.sql, for bench/views.sh: one row per delivery (the
-- copy received first, ties broken by the payload's hash), reading the same Parquet files as
-- gma (`${events}` is replaced by the script with read_parquet of the data directory's files).
CREATE OR REPLACE VIEW unique_events AS
SELECT
  received,
  delivery_id,
  event,
  action,
  enterprise,
  TRY_CAST(json_extract_string(payload, '$.enterprise.id') AS BIGINT) AS enterprise_id,
  organization,
  organization_id,
  repository AS repository_full_name,
  substr(repository, strpos(repository, '/') + 1) AS repository,
  repository_id,
  json_extract_string(payload, '$.repository.visibility') AS repository_visibility,
  sender,
  sender_id,
  installation_id,
  signature,
  payload,
  payload_uri
FROM (
  SELECT
    *,
    row_number() OVER (
      PARTITION BY delivery_id, event
      ORDER BY received, payload_sha256 DESC
    ) AS copy
  FROM ${events}
)
WHERE copy = 1;
