-- team_events: every `team` event, one row per delivery, with its payload's columns.
--
-- A team was created, edited, deleted, or added to or removed from a repository.
--
-- The common columns (received, delivery_id, event, action, enterprise, organization,
-- repository, sender, with their ids) come from unique_events, so a redelivered event
-- is one row. A payload kept out of the row (payload_uri) gives NULL columns.
SELECT
  * EXCEPT (signature, payload, payload_uri),
  SAFE_CAST(JSON_VALUE(payload, '$.team.id') AS INT64) AS id,
  JSON_VALUE(payload, '$.team.name') AS name,
  JSON_VALUE(payload, '$.team.slug') AS slug,
  JSON_VALUE(payload, '$.team.description') AS description,
  JSON_VALUE(payload, '$.team.privacy') AS privacy,
  JSON_VALUE(payload, '$.team.notification_setting') AS notification_setting,
  JSON_VALUE(payload, '$.team.permission') AS permission,
  SAFE_CAST(JSON_VALUE(payload, '$.team.parent.id') AS INT64) AS parent_id,
  JSON_VALUE(payload, '$.team.parent.name') AS parent_name,
  SAFE_CAST(JSON_VALUE(payload, '$.team.deleted') AS BOOL) AS deleted,
  JSON_VALUE(payload, '$.team.html_url') AS html_url,
  JSON_VALUE(payload, '$.team.members_url') AS members_url
FROM `${dataset}unique_events`
WHERE event = 'team'
