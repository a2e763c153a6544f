-- The rows a refresh step appends to one typed table: the events of its window projected through
-- the event view of the table, less the deliveries the table holds already. Only the rows of the
-- table received since the held_after parameter are compared (the window, and the redelivery
-- horizon of GitHub before it), so a step reads partitions near its window, never all history.
SELECT *
FROM (${projection}) AS typed
WHERE typed.delivery_id NOT IN (
  SELECT held.delivery_id
  FROM `${dataset}${table}` AS held
  WHERE held.received > @held_after
)
