-- The script terraform runs for each typed event table: a dataset deployed before typed tables
-- has a view of the same name, dropped first (gma views apply does the same through the API);
-- then the table's DDL of sql/typed/, which leaves an existing table and its rows alone.
IF EXISTS (
  SELECT 1
  FROM `${dataset}INFORMATION_SCHEMA.TABLES`
  WHERE table_name = '${table}' AND table_type = 'VIEW'
) THEN
  DROP VIEW `${dataset}${table}`;
END IF;
${ddl};
