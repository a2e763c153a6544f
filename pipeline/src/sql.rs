//! The SQL files of the repository's `sql/` folder, one constant each.
//!
//! SQL is data: it lives in `.sql` files in BigQuery's dialect and reaches Rust only through
//! this module, so a reader finds every statement gma runs in one place.

use std::fmt;

/// A table gma owns: its name and its DDL in `sql/` (BigQuery dialect, `${dataset}` placeholder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableDef {
    /// The table's name, without dataset.
    pub name: &'static str,
    /// `CREATE TABLE IF NOT EXISTS ...` in BigQuery's dialect.
    pub ddl: &'static str,
}

impl TableDef {
    /// The same table under a configured name (e.g. GMA's `EVENTS_TABLE_ID`). The name is
    /// configuration, set once per process, so it is kept for the process's life.
    ///
    /// # Errors
    /// [`BadTableName`] when `name` is not a plain table name.
    pub fn renamed(self, name: &str) -> Result<TableDef, BadTableName> {
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(BadTableName {
                table: self.name,
                name: name.to_owned(),
            });
        }
        Ok(TableDef {
            name: Box::leak(name.to_owned().into_boxed_str()),
            ddl: self.ddl,
        })
    }
}

impl fmt::Display for TableDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A configured name for one of gma's tables that is not a plain table name.
#[derive(Debug, thiserror::Error)]
#[error("table {name}: a name for the {table} table must be letters, digits and underscores")]
pub struct BadTableName {
    /// The table's own name (`events`, `checkpoint`, ...).
    pub table: &'static str,
    /// The name configured for it.
    pub name: String,
}

// One constant per table: alike in shape only, each names its own file (`include_str!` takes a
// literal path, so no helper can build them from the name).

/// DDL of the `events` table: GMA's columns plus the ones gma lifts at ingest.
pub const EVENTS_DDL: &str = include_str!("../../sql/events.sql");

/// The `events` table.
pub const EVENTS: TableDef = TableDef {
    name: "events",
    ddl: EVENTS_DDL,
};

/// The `watermarks` table: how far follow-mode pipelines have come.
pub const WATERMARKS: TableDef = TableDef {
    name: "watermarks",
    ddl: include_str!("../../sql/watermarks.sql"),
};

/// The retry job's `checkpoint` table: how far back each webhook's deliveries were examined.
pub const CHECKPOINT: TableDef = TableDef {
    name: "checkpoint",
    ddl: include_str!("../../sql/checkpoint.sql"),
};

/// The retry job's `failure_events` table: events it failed to recover, and gave up on.
pub const FAILURE_EVENTS: TableDef = TableDef {
    name: "failure_events",
    ddl: include_str!("../../sql/failure_events.sql"),
};

/// The leech job's `leech_status` table: one row per try at archiving a run attempt's logs.
pub const LEECH_STATUS: TableDef = TableDef {
    name: "leech_status",
    ddl: include_str!("../../sql/leech_status.sql"),
};

/// The `workflow_logs` table: one row per file of each archived logs zip.
pub const WORKFLOW_LOGS: TableDef = TableDef {
    name: "workflow_logs",
    ddl: include_str!("../../sql/workflow_logs.sql"),
};

/// The `refresh_requests` table: ranges of `received` that jobs landed old events into, for the
/// typed tables' refresh to take.
pub const REFRESH_REQUESTS: TableDef = TableDef {
    name: "refresh_requests",
    ddl: include_str!("../../sql/refresh_requests.sql"),
};

/// Every table gma owns, in creation order (the typed tables are [`TYPED_TABLES`]).
pub const TABLES: &[TableDef] = &[
    EVENTS,
    WATERMARKS,
    CHECKPOINT,
    FAILURE_EVENTS,
    LEECH_STATUS,
    WORKFLOW_LOGS,
    REFRESH_REQUESTS,
];

macro_rules! typed_tables {
    ($($name:literal),* $(,)?) => {
        /// The typed event tables: one per event view of `views/` (the same name), holding its
        /// columns for every delivery, kept up to date by the refresh (`gma views refresh`). Their
        /// DDL in `sql/typed/` is generated from the views (`GMA_BLESS=1`) and checked by tests.
        pub const TYPED_TABLES: &[TableDef] = &[$(TableDef {
            name: $name,
            ddl: include_str!(concat!("../../sql/typed/", $name, ".sql")),
        },)*];
    };
}

typed_tables![
    "check_run_events",
    "check_suite_events",
    "create_events",
    "delete_events",
    "deployment_events",
    "deployment_status_events",
    "issue_comment_events",
    "issue_events",
    "pull_request_events",
    "pull_request_review_comment_events",
    "pull_request_review_events",
    "push_events",
    "release_events",
    "team_events",
    "workflow_job_events",
    "workflow_run_events",
];

/// The typed table named `name`, if there is one.
pub fn typed_table(name: &str) -> Option<TableDef> {
    TYPED_TABLES.iter().find(|t| t.name == name).copied()
}

/// The events of one type a refresh step takes (`${events_table}`, `@event`, `@after`,
/// `@until`).
pub const REFRESH_WINDOW: &str = include_str!("../../sql/refresh_window.sql");

/// The rows a refresh step appends to a typed table (`${projection}`, `${table}`,
/// `@held_after`).
pub const REFRESH_ROWS: &str = include_str!("../../sql/refresh_rows.sql");

/// The refresh requests written after `@requested_after`.
pub const REFRESH_PENDING: &str = include_str!("../../sql/refresh_pending.sql");

/// The newest watermark of every typed table's refresh.
pub const REFRESH_WATERMARKS: &str = include_str!("../../sql/refresh_watermarks.sql");

/// The events of each type received on each day of a window (`${events_table}`, `@after`,
/// `@until`).
pub const REFRESH_DAYS: &str = include_str!("../../sql/refresh_days.sql");

/// The newest watermark of a pipeline's shard (`@pipeline`, `@shard`).
pub const LATEST_WATERMARK: &str = include_str!("../../sql/latest_watermark.sql");

/// Wraps a source query to take a shard of its rows after a watermark, oldest first
/// (`${source}`, `${key}`, `${time}`, `@shard_index`, `@shard_count`, `@after`).
pub const SOURCE_WINDOW: &str = include_str!("../../sql/source_window.sql");

/// Wraps a source query to take a shard of its rows (`${source}`, `${key}`, `@shard_index`,
/// `@shard_count`).
pub const SOURCE_SHARD: &str = include_str!("../../sql/source_shard.sql");

/// Wraps a source query to take its rows after a watermark, oldest first (`${source}`,
/// `${time}`, `@after`).
pub const SOURCE_ORDERED: &str = include_str!("../../sql/source_ordered.sql");

/// Which of `@ids` the events table (`${events_table}`, its configured name) holds already.
pub const STORED_DELIVERY_IDS: &str = include_str!("../../sql/stored_delivery_ids.sql");

/// The retry job's checkpoint per webhook (`${checkpoint_table}`, `@instance`).
pub const RETRY_CHECKPOINTS: &str = include_str!("../../sql/retry_checkpoints.sql");

/// What the warehouse knows about the GUIDs of failed deliveries (`${events_table}`,
/// `${failure_table}`, `@guids`, `@received_after`): landed, failed runs, given up.
pub const RETRY_CANDIDATES: &str = include_str!("../../sql/retry_candidates.sql");

/// The leech job's source: completed run attempts not archived yet (`${events_table}`,
/// `${status_table}`, `@max_attempts`, `@backoff_seconds`, `@now`, `@since`, `@until`,
/// `@repo`).
pub const LEECH_SOURCE: &str = include_str!("../../sql/leech_source.sql");

/// Creates or replaces a view of `views/` (`${view}`, its name; `${query}`, its SELECT).
pub const CREATE_VIEW: &str = include_str!("../../sql/create_view.sql");

/// Drops the view `${view}` (where its typed table now belongs).
pub const DROP_VIEW: &str = include_str!("../../sql/drop_view.sql");

/// Puts configured table names into a SQL file's table placeholders: `("events_table",
/// "webhook_events")` replaces `${events_table}`. (`${dataset}` is the warehouse's to resolve.)
pub fn name_tables(sql: &str, names: &[(&str, &str)]) -> String {
    names
        .iter()
        .fold(sql.to_owned(), |sql, (placeholder, name)| {
            sql.replace(&format!("${{{placeholder}}}"), name)
        })
}

/// What `${dataset}` resolves to on BigQuery for the dataset `project.dataset`:
/// `project.dataset.` (see [`resolve`]). A function of the names alone, so DDL can be printed
/// in a build without the BigQuery client.
pub fn bigquery_prefix(project: &str, dataset: &str) -> String {
    format!("{project}.{dataset}.")
}

/// Resolves the `${dataset}` placeholder of a SQL file: `prefix` is `"project.dataset."` on
/// BigQuery and empty locally, where tables live in the default schema.
pub fn resolve(sql: &str, prefix: &str) -> String {
    sql.replace("${dataset}", prefix)
}

/// `sql` without its comments (`--` to the end of a line, outside quotes and backticks), for
/// statements composed of several files: BigQuery's emulator reads quotes and `@` in comments
/// as the start of strings and parameters.
pub fn strip_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    for line in sql.lines() {
        let mut quote: Option<char> = None;
        let mut previous = '\0';
        let mut end = line.len();
        for (at, c) in line.char_indices() {
            match quote {
                Some(open) if c == open && previous != '\\' => quote = None,
                Some(_) => {}
                None if matches!(c, '\'' | '"' | '`') => quote = Some(c),
                None if c == '-' && previous == '-' => {
                    end = at - 1;
                    break;
                }
                None => {}
            }
            previous = c;
        }
        let kept = line[..end].trim_end();
        if !kept.is_empty() {
            out.push_str(kept);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_stripped_outside_quotes() {
        let sql = "-- a comment's quote\nSELECT '--not' AS `a--b`, 1 -- trailing\n  -- indented\nFROM t\n";
        assert_eq!(strip_comments(sql), "SELECT '--not' AS `a--b`, 1\nFROM t\n");
    }

    #[test]
    fn comments_name_no_parameters() {
        // bqemulator counts `@name` in comments as placeholders and then refuses the query.
        let files = [
            EVENTS_DDL,
            WATERMARKS.ddl,
            LATEST_WATERMARK,
            SOURCE_WINDOW,
            SOURCE_SHARD,
            SOURCE_ORDERED,
            STORED_DELIVERY_IDS,
            CHECKPOINT.ddl,
            FAILURE_EVENTS.ddl,
            RETRY_CHECKPOINTS,
            RETRY_CANDIDATES,
            LEECH_STATUS.ddl,
            WORKFLOW_LOGS.ddl,
            LEECH_SOURCE,
            CREATE_VIEW,
            DROP_VIEW,
            REFRESH_REQUESTS.ddl,
            REFRESH_WINDOW,
            REFRESH_ROWS,
            REFRESH_PENDING,
            REFRESH_WATERMARKS,
            REFRESH_DAYS,
        ];
        for file in files.into_iter().chain(TYPED_TABLES.iter().map(|t| t.ddl)) {
            for line in file.lines().filter(|l| l.trim_start().starts_with("--")) {
                assert!(!line.contains('@'), "a comment names a parameter: {line}");
            }
        }
    }
}
