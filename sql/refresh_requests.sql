-- Ranges of `received` that a job landed events into after the fact (an import of old events),
-- which the refresh of the typed tables must take again besides its window of recent arrivals.
-- Append-only; a refresh takes the requests written since its last run.
CREATE TABLE IF NOT EXISTS `${dataset}refresh_requests` (
  requested TIMESTAMP NOT NULL OPTIONS(description = "when the request was written"),
  received_from TIMESTAMP NOT NULL OPTIONS(description = "the oldest received time of the landed events"),
  received_until TIMESTAMP NOT NULL OPTIONS(description = "the newest received time of the landed events"),
  events INT64 OPTIONS(description = "how many events were landed"),
  source STRING OPTIONS(description = "the job that landed them, e.g. import")
)
PARTITION BY DATE(requested);
