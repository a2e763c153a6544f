-- The watermark a follow-mode pipeline resumes from: the newest one written for its shard.
SELECT MAX(watermark) AS watermark
FROM `${dataset}watermarks`
WHERE pipeline = @pipeline AND shard = @shard
