-- Wraps the source query of a pipeline with the rows this run takes: its shard (a stable hash of
-- the key column, so N tasks split the rows with no overlap and no coordination) and only rows
-- after the watermark parameter, oldest first. Both predicates are on the output columns of the
-- source, and both backends push them down into its scan.
-- (No parameter names or quotes in these comments: bqemulator counts them as placeholders.)
SELECT *
FROM (${source}) AS src
WHERE ABS(MOD(FARM_FINGERPRINT(CAST(src.${key} AS STRING)), @shard_count)) = @shard_index
  AND src.${time} > @after
ORDER BY src.${time}
