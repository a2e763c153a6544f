-- Watermarks of pipelines run in follow mode: how far each pipeline (and shard) has processed its
-- source, by the source's time column. Append-only; the newest row per (pipeline, shard) counts,
-- so a run that crashes before writing leaves the previous watermark in force.
CREATE TABLE IF NOT EXISTS `${dataset}watermarks` (
  pipeline STRING NOT NULL OPTIONS(description = "the pipeline's name, e.g. leech"),
  shard STRING NOT NULL OPTIONS(description = "the shard, as index/count (0/1 when unsharded)"),
  watermark TIMESTAMP NOT NULL OPTIONS(description = "every source row at or before this time has been processed"),
  updated TIMESTAMP NOT NULL OPTIONS(description = "when the watermark was written")
);
