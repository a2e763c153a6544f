-- Wraps a pipeline's source query (${source}) with the rows this run takes: its shard (a stable
-- hash of the key column, so N tasks split the rows with no overlap and no coordination) and, in
-- follow mode, only rows after the watermark, oldest first. Both predicates are on the source's
-- output columns, and both backends push them down into the source's scan.
SELECT *
FROM (${source}) AS source
WHERE ABS(MOD(FARM_FINGERPRINT(CAST(source.${key} AS STRING)), @shard_count)) = @shard_index
  AND ${time} > @after
ORDER BY ${time}
