-- deployments: one row per deployment, its newest state (from deployment_events).
--
-- Newest = the latest `updated_at`, then the delivery received last, then the greatest
-- delivery_id, so a tie still gives one row (GMA's views returned every tied row). `received`
-- and `delivery_id` name the delivery that brought this state.
SELECT
  e.* EXCEPT (event, action)
FROM `${dataset}deployment_events` AS e
JOIN (
  SELECT delivery_id
  FROM (
    SELECT
      delivery_id,
      ROW_NUMBER() OVER (
        PARTITION BY id
        ORDER BY updated_at DESC NULLS LAST, received DESC, delivery_id DESC
      ) AS version
    FROM `${dataset}deployment_events`
    WHERE id IS NOT NULL
  )
  WHERE version = 1
) AS newest
  ON newest.delivery_id = e.delivery_id
