//! What a refresh did, for the command's output and the logs.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gma_pipeline::warehouse::local::compact::Compacted;

/// What one refresh did.
#[derive(Debug, Clone, Default)]
pub struct RefreshSummary {
    /// Rows appended, per typed table refreshed.
    pub rows: BTreeMap<&'static str, u64>,
    /// Chunks (of whole days) planned, over all tables.
    pub chunks: u64,
    /// Tables that failed (they keep their watermarks, so the next run redoes them).
    pub failed_tables: u64,
    /// The first failure, as the whole error chain.
    pub first_failure: Option<String>,
    /// The tables built from all stored events on this run (their first refresh).
    pub built: Vec<&'static str>,
    /// Up to when the tables refreshed hold every event.
    pub until: Option<DateTime<Utc>>,
    /// How long it took.
    pub elapsed: Duration,
    /// What the compaction after it did, when one ran (locally).
    pub compacted: Option<Compacted>,
}

impl RefreshSummary {
    /// Rows appended over all tables.
    pub fn total_rows(&self) -> u64 {
        self.rows.values().sum()
    }
}

impl fmt::Display for RefreshSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refreshed {} typed tables ({} failed): {} rows appended in {} chunks in {:.1} s",
            self.rows.len(),
            self.failed_tables,
            self.total_rows(),
            self.chunks,
            self.elapsed.as_secs_f64()
        )?;
        if !self.built.is_empty() {
            write!(
                f,
                "; built from all stored events: {}",
                self.built.join(", ")
            )?;
        }
        if let Some(until) = self.until {
            write!(f, "; up to date until {}", until.to_rfc3339())?;
        }
        if let Some(compacted) = self.compacted.filter(|c| c.folders > 0) {
            write!(
                f,
                "; compacted {} folders ({} files merged)",
                compacted.folders, compacted.files_replaced
            )?;
        }
        Ok(())
    }
}
