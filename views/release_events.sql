-- release_events: every `release` event, one row per delivery, with its payload's columns.
--
-- A release was published, created, edited, deleted or changed state. `body` is the text (GMA's
-- view returned it quoted).
--
-- The common columns (received, delivery_id, event, action, enterprise, organization,
-- repository, sender, with their ids) come from unique_events, so a redelivered event
-- is one row. A payload kept out of the row (payload_uri) gives NULL columns.
SELECT
  * EXCEPT (signature, payload, payload_uri),
  SAFE_CAST(JSON_VALUE(payload, '$.release.id') AS INT64) AS id,
  JSON_VALUE(payload, '$.release.tag_name') AS tag_name,
  JSON_VALUE(payload, '$.release.name') AS name,
  JSON_VALUE(payload, '$.release.body') AS body,
  SAFE_CAST(JSON_VALUE(payload, '$.release.draft') AS BOOL) AS draft,
  SAFE_CAST(JSON_VALUE(payload, '$.release.prerelease') AS BOOL) AS prerelease,
  JSON_VALUE(payload, '$.release.target_commitish') AS target_commitish,
  JSON_VALUE(payload, '$.release.author.login') AS author,
  SAFE_CAST(JSON_VALUE(payload, '$.release.author.id') AS INT64) AS author_id,
  JSON_VALUE(payload, '$.release.html_url') AS html_url,
  JSON_VALUE(payload, '$.release.tarball_url') AS tarball_url,
  JSON_VALUE(payload, '$.release.zipball_url') AS zipball_url,
  JSON_VALUE(payload, '$.release.upload_url') AS upload_url,
  TIMESTAMP(JSON_VALUE(payload, '$.release.created_at')) AS created_at,
  TIMESTAMP(JSON_VALUE(payload, '$.release.published_at')) AS published_at
FROM `${dataset}unique_events`
WHERE event = 'release'
