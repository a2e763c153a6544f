-- Drops a view of gma's made by an earlier version where its typed table now belongs (an event view
-- before typed tables); run only once the table API said the name is a view.
DROP VIEW IF EXISTS `${dataset}${view}`
