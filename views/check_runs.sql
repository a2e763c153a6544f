-- check_runs: one row per check run, its newest state (from check_run_events).
--
-- Newest = the furthest status (completed, in_progress, queued), then the latest completion,
-- then the delivery received last, then the greatest delivery_id, so a tie still gives one row
-- (GMA's views returned every tied row). `received` and `delivery_id` name the delivery that
-- brought this state.
SELECT
  e.* EXCEPT (event, action)
FROM `${dataset}check_run_events` AS e
JOIN (
  SELECT delivery_id
  FROM (
    SELECT
      delivery_id,
      ROW_NUMBER() OVER (
        PARTITION BY id
        ORDER BY CASE status WHEN 'completed' THEN 3 WHEN 'in_progress' THEN 2 ELSE 1 END DESC, completed_at DESC NULLS LAST, received DESC, delivery_id DESC
      ) AS version
    FROM `${dataset}check_run_events`
    WHERE id IS NOT NULL
  )
  WHERE version = 1
) AS newest
  ON newest.delivery_id = e.delivery_id
