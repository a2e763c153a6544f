//! The knobs of a refresh.

use std::time::Duration;

use gma_pipeline::flow::Shard;
use tokio_util::sync::CancellationToken;

/// How long after its `received` time an event may still land and be taken by the next
/// incremental refresh: events reach the events table a little out of order when several
/// servers (Cloud Run instances) land them, and a server's clock is its own.
pub const DEFAULT_LATENESS: Duration = Duration::from_secs(3600);

/// How far before a window a redelivered copy of one of its deliveries may have been received:
/// GitHub keeps a failed delivery redeliverable for 3 days, and the store or BigQuery may hold
/// the first copy. A step compares the window's delivery ids with the table's rows received this
/// long before the window, so a late copy is never appended twice.
pub const REDELIVERY_HORIZON: Duration = Duration::from_secs(3 * 86_400);

/// How one refresh runs.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    /// The typed tables this task refreshes (tables hash to shards by name).
    pub shard: Shard,
    /// See [`DEFAULT_LATENESS`].
    pub lateness: Duration,
    /// Day chunks refreshed at once.
    pub concurrency: usize,
    /// Only these typed tables (by name); all when empty.
    pub tables: Vec<String>,
    /// Show a progress bar (set it when stderr is a terminal).
    pub progress_bar: bool,
    /// Cancelled on SIGTERM/SIGINT: chunks in flight finish, nothing new starts, and the
    /// watermarks of unfinished tables stay where they were.
    pub shutdown: CancellationToken,
}

impl Default for RefreshOptions {
    fn default() -> Self {
        Self {
            shard: Shard::ALL,
            lateness: DEFAULT_LATENESS,
            concurrency: 2,
            tables: Vec::new(),
            progress_bar: false,
            shutdown: CancellationToken::new(),
        }
    }
}
