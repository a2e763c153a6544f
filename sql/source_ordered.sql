-- Wraps a pipeline's source query (${source}) to read its rows after @after, oldest first.
SELECT *
FROM (${source}) AS src
WHERE src.${time} > @after
ORDER BY src.${time}
