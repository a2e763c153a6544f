-- How far the refresh has brought each typed table: the newest watermark per table, kept in the
-- watermarks table under the pipeline name of its refresh.
SELECT pipeline, MAX(watermark) AS watermark
FROM `${dataset}watermarks`
WHERE STARTS_WITH(pipeline, 'views_refresh')
GROUP BY pipeline
