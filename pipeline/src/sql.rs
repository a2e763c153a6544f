//! The SQL files of the repository's `sql/` folder, one constant each.
//!
//! SQL is data: it lives in `.sql` files in BigQuery's dialect and reaches Rust only through
//! this module, so a reader finds every statement gma runs in one place.

/// DDL of the `events` table: GMA's columns plus the ones gma lifts at ingest.
pub const EVENTS_DDL: &str = include_str!("../../sql/events.sql");

/// Resolves the `${dataset}` placeholder of a SQL file: `prefix` is `"project.dataset."` on
/// BigQuery and empty locally, where tables live in the default schema.
pub fn resolve(sql: &str, prefix: &str) -> String {
    sql.replace("${dataset}", prefix)
}
