-- DuckDB equivalent of views/workflow_runs.sql in its shape: the newest version chosen over
-- the columns its order needs, then its row read whole (run.py's twin sorts whole rows).
CREATE OR REPLACE VIEW workflow_runs AS
SELECT
  e.* EXCLUDE (event, action)
FROM workflow_run_events AS e
JOIN (
  SELECT delivery_id
  FROM (
    SELECT
      delivery_id,
      row_number() OVER (
        PARTITION BY id
        ORDER BY run_attempt DESC NULLS LAST, updated_at DESC NULLS LAST, received DESC, delivery_id DESC
      ) AS version
    FROM workflow_run_events
    WHERE id IS NOT NULL
  )
  WHERE version = 1
) AS newest
  ON newest.delivery_id = e.delivery_id;
