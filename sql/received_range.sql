-- The oldest and newest received time of the events, where the first build of a typed table starts
-- and ends.
SELECT MIN(received) AS oldest, MAX(received) AS newest
FROM `${dataset}${events_table}`
