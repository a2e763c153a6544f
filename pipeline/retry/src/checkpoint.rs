//! Checkpoints: per webhook, the delivery id at or below which every failure is handled.
//!
//! The table is append-only and the highest id counts, so a run that dies before writing leaves
//! the previous checkpoint in force, and a checkpoint never moves back. A run moves it only as
//! far as every older failure was recovered, found landed or given up on: a crash or a time
//! budget never skips an event.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use gma_pipeline::flow::{TableWriter, rows};
use gma_pipeline::sql;
use gma_pipeline::warehouse::{ParamValue, Params, Warehouse};
use serde::{Deserialize, Serialize};

use crate::error::RetryError;
use crate::job::RetryTables;
use crate::scan::HookScan;

/// The value of `github_instance_url` for an instance: empty for github.com, as GMA writes it.
pub fn instance_column(instance: &str) -> String {
    if instance == "github.com" {
        String::new()
    } else {
        instance.to_owned()
    }
}

#[derive(Deserialize)]
struct Row {
    hook: String,
    delivery_id: Option<i64>,
}

/// Every webhook's checkpoint on `instance` (`github.com`, or an Enterprise host), by the
/// webhook's name (`app`, `repos/o/r/hooks/1`, ...).
///
/// # Errors
/// [`RetryError::Checkpoint`] when the query fails.
pub async fn read(
    warehouse: &dyn Warehouse,
    tables: &RetryTables,
    instance: &str,
) -> Result<HashMap<String, i64>, RetryError> {
    let params = Params::new().with("instance", ParamValue::String(instance_column(instance)));
    let result = warehouse
        .query(&tables.resolve(sql::RETRY_CHECKPOINTS), &params)
        .await
        .map_err(RetryError::Checkpoint)?;
    let mut out = HashMap::new();
    for batch in &result.batches {
        for row in rows::from_batch::<Row>(batch)? {
            if let Some(id) = row.delivery_id {
                out.insert(row.hook, id);
            }
        }
    }
    Ok(out)
}

/// One row of the checkpoint table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointRow {
    /// The delivery id, as text (GMA's column type).
    pub delivery_id: String,
    /// When the run started.
    pub created: DateTime<Utc>,
    /// The instance (empty for github.com).
    pub github_instance_url: String,
    /// The webhook.
    pub hook: String,
    /// The run.
    pub run_id: String,
}

/// Appends checkpoint rows to the checkpoint table (`table`).
///
/// # Errors
/// [`RetryError::Write`] when the warehouse refuses.
pub async fn write(table: &TableWriter, rows_to_write: &[CheckpointRow]) -> Result<(), RetryError> {
    crate::job::append(table, rows_to_write).await
}

/// The checkpoint a webhook may move to after this run, if it moves: the newest delivery when
/// every failure of the listing was handled, else just below the oldest one left. `None` when
/// the listing did not reach the old checkpoint (interrupted) or nothing moves forward.
pub fn advance(scan: &HookScan, oldest_unhandled: Option<i64>) -> Option<i64> {
    if !scan.end.is_complete() {
        return None;
    }
    let next = match oldest_unhandled {
        None => scan.newest_id?,
        Some(oldest) => oldest - 1,
    };
    match scan.checkpoint {
        Some(old) if next <= old => None,
        _ => Some(next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::ScanEnd;
    use gma_pipeline::github::HookRef;

    fn scan(checkpoint: Option<i64>, newest: Option<i64>, end: ScanEnd) -> HookScan {
        HookScan {
            hook: HookRef::App,
            checkpoint,
            pages: 1,
            scanned: 1,
            newest_id: newest,
            oldest_seen: None,
            end,
        }
    }

    #[test]
    fn moves_only_as_far_as_every_older_failure_is_handled() {
        let s = scan(Some(10), Some(50), ScanEnd::Checkpoint);
        assert_eq!(advance(&s, None), Some(50));
        assert_eq!(advance(&s, Some(20)), Some(19));
        assert_eq!(advance(&s, Some(11)), None, "nothing older than 11 is new");
        assert_eq!(advance(&s, Some(5)), None, "never backwards");
        let first = scan(None, Some(50), ScanEnd::End);
        assert_eq!(advance(&first, Some(1)), Some(0));
        assert_eq!(
            advance(&scan(None, None, ScanEnd::End), None),
            None,
            "no deliveries"
        );
        assert_eq!(
            advance(&scan(Some(10), Some(50), ScanEnd::Interrupted), None),
            None
        );
        assert_eq!(instance_column("github.com"), "");
        assert_eq!(instance_column("ghe.acme.com"), "ghe.acme.com");
    }
}
