-- The one query a retry run makes about the events GitHub failed to deliver: for each GUID, whether
-- the events table holds it anyway (a later attempt landed, or another path stored it), how many
-- earlier runs failed to recover it, and whether a run gave up on it.
--
-- The time bound lets BigQuery prune the day partitions of events; the caller sets it days before
-- the oldest failed attempt.
WITH
landed AS (
  SELECT DISTINCT delivery_id
  FROM `${dataset}${events_table}`
  WHERE received >= @received_after AND delivery_id IN UNNEST(@guids)
),
failures AS (
  SELECT
    delivery_id,
    COUNT(DISTINCT run_id) AS failed_runs,
    LOGICAL_OR(COALESCE(given_up, FALSE)) AS given_up
  FROM `${dataset}${failure_table}`
  WHERE delivery_id IN UNNEST(@guids)
  GROUP BY delivery_id
)
SELECT
  guid,
  landed.delivery_id IS NOT NULL AS landed,
  COALESCE(failures.failed_runs, 0) AS failed_runs,
  COALESCE(failures.given_up, FALSE) AS given_up
FROM UNNEST(@guids) AS guid
LEFT JOIN landed ON landed.delivery_id = guid
LEFT JOIN failures ON failures.delivery_id = guid
