-- How many events of each type were received on each day of a refresh's window (after, until]:
-- the refresh packs the days that hold events of a typed table's type into chunks of bounded
-- size and never queries a day without any. Reads two columns of the window's partitions.
SELECT event, CAST(DATE(received) AS STRING) AS day, COUNT(*) AS events
FROM `${dataset}${events_table}`
WHERE received > @after
  AND received <= @until
GROUP BY event, day
