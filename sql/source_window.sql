-- Wraps a pipeline's source query (${source}) with the rows this run takes: its shard (a stable
-- hash of the key column, so N tasks split the rows with no overlap and no coordination) and only
-- rows after @after (the watermark, in follow mode), oldest first. Both predicates are on the
-- source's output columns, and both backends push them down into the source's scan.
SELECT *
FROM (${source}) AS src
WHERE ABS(MOD(FARM_FINGERPRINT(CAST(src.${key} AS STRING)), @shard_count)) = @shard_index
  AND src.${time} > @after
ORDER BY src.${time}
