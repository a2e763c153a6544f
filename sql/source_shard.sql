-- Wraps the source query of a pipeline with the shard this run takes: a stable hash of the key
-- column, so N tasks split the rows with no overlap and no coordination.
SELECT *
FROM (${source}) AS src
WHERE ABS(MOD(FARM_FINGERPRINT(CAST(src.${key} AS STRING)), @shard_count)) = @shard_index
