-- workflow_runs: one row per workflow run, its newest attempt, its newest state (from workflow_run_events).
--
-- Newest = the highest `run_attempt`, then the latest `updated_at`, then the delivery received
-- last, then the greatest delivery_id, so a tie still gives one row (GMA's views returned every
-- tied row). `received` and `delivery_id` name the delivery that brought this state.
SELECT
  e.* EXCEPT (event, action)
FROM `${dataset}workflow_run_events` AS e
JOIN (
  SELECT delivery_id
  FROM (
    SELECT
      delivery_id,
      ROW_NUMBER() OVER (
        PARTITION BY id
        ORDER BY run_attempt DESC NULLS LAST, updated_at DESC NULLS LAST, received DESC, delivery_id DESC
      ) AS version
    FROM `${dataset}workflow_run_events`
    WHERE id IS NOT NULL
  )
  WHERE version = 1
) AS newest
  ON newest.delivery_id = e.delivery_id
