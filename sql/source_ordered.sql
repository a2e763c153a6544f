-- Wraps the source query of a pipeline to read its rows after the watermark, oldest first.
SELECT *
FROM (${source}) AS src
WHERE src.${time} > @after
ORDER BY src.${time}
