-- DuckDB equivalent of views/workflow_runs.sql.
CREATE OR REPLACE VIEW workflow_runs AS
SELECT
  * EXCLUDE (version)
FROM (
  SELECT
    * EXCLUDE (event, action),
    row_number() OVER (
      PARTITION BY id
      ORDER BY run_attempt DESC NULLS LAST, updated_at DESC NULLS LAST, received DESC, delivery_id DESC
    ) AS version
  FROM workflow_run_events
  WHERE id IS NOT NULL
)
WHERE version = 1;
