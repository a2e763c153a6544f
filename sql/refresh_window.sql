-- The events of one type a refresh step takes: those received in its window. It replaces the
-- events table inside unique_events when a typed table is refreshed, so the dedupe and the
-- projection run over the window only and the day partitions outside it are never read.
SELECT *
FROM `${dataset}${events_table}`
WHERE event = @event
  AND received > @after
  AND received <= @until
