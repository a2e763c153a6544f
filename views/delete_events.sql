-- delete_events: every `delete` event, one row per delivery, with its payload's columns.
--
-- A branch or tag was deleted (`ref_type` says which; `ref` is its short name).
--
-- The common columns (received, delivery_id, event, action, enterprise, organization,
-- repository, sender, with their ids) come from unique_events, so a redelivered event
-- is one row. A payload kept out of the row (payload_uri) gives NULL columns.
SELECT
  * EXCEPT (signature, payload, payload_uri),
  JSON_VALUE(payload, '$.ref') AS ref,
  JSON_VALUE(payload, '$.ref_type') AS ref_type,
  JSON_VALUE(payload, '$.pusher_type') AS pusher_type
FROM `${dataset}unique_events`
WHERE event = 'delete'
