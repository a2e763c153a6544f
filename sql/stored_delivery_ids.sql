-- Which of a batch of delivery ids the events table holds already: a backfill skips them.
SELECT DISTINCT delivery_id
FROM `${dataset}${events_table}`
WHERE delivery_id IN UNNEST(@ids)
