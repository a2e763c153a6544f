-- unique_events: one row per webhook delivery, the copy received first, with the columns every
-- other view filters and groups by.
--
-- GitHub sends a redelivery with the same delivery_id, and a repeated import can store a row
-- twice; every other view reads this one, so neither is counted twice (GMA's first version
-- removed only byte-identical rows). The first copy is kept: its `received` is closest to when
-- the event happened, so a redelivery days later never makes an old state look newest in the
-- latest-state views, and it is the copy the typed event tables keep (they only append). Among
-- copies received at the same instant, the payload's hash decides, so the same row is chosen on
-- every run.
--
-- `repository_full_name` is owner/name and `repository` the name alone, as in GMA's views
-- (the events table's `repository` column holds the full name). `enterprise` is the
-- enterprise's slug.
SELECT
  received,
  delivery_id,
  event,
  action,
  enterprise,
  SAFE_CAST(JSON_VALUE(payload, '$.enterprise.id') AS INT64) AS enterprise_id,
  organization,
  organization_id,
  repository AS repository_full_name,
  SUBSTR(repository, STRPOS(repository, '/') + 1) AS repository,
  repository_id,
  JSON_VALUE(payload, '$.repository.visibility') AS repository_visibility,
  sender,
  sender_id,
  installation_id,
  signature,
  payload,
  payload_uri
FROM (
  SELECT
    *,
    ROW_NUMBER() OVER (
      PARTITION BY delivery_id, event
      ORDER BY received, payload_sha256 DESC
    ) AS copy
  FROM `${dataset}${events_table}`
)
WHERE copy = 1
