-- The refresh requests written after the requested_after parameter, oldest first.
SELECT requested, received_from, received_until
FROM `${dataset}refresh_requests`
WHERE requested > @requested_after
ORDER BY requested
