-- Creates or replaces one of gma's views, given its name and its file of views/.
CREATE OR REPLACE VIEW `${dataset}${view}` AS
${query}
