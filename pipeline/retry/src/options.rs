//! What a retry run does and within which bounds.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gma_pipeline::github::HookRef;
use tokio_util::sync::CancellationToken;

/// How a failed event is recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Ask GitHub to deliver it again (`POST .../attempts`): it reaches ingest like any
    /// delivery. GMA's way, and the default.
    #[default]
    Redeliver,
    /// Read the delivery's original headers and payload from GitHub and land it straight into
    /// the events table: works while the receiver is down or refuses the event.
    Fetch,
}

impl FromStr for RecoveryMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "redeliver" => Ok(Self::Redeliver),
            "fetch" => Ok(Self::Fetch),
            other => Err(format!(
                "{other:?} is no recovery mode; use redeliver or fetch"
            )),
        }
    }
}

/// The knobs of one run.
#[derive(Debug, Clone)]
pub struct RetryOptions {
    /// The webhooks whose deliveries are examined.
    pub hooks: Vec<HookRef>,
    /// How events are recovered.
    pub mode: RecoveryMode,
    /// How far back GitHub keeps deliveries redeliverable (3 days on github.com, 7 on GitHub
    /// Enterprise Server): the listing stops there.
    pub window: Duration,
    /// A backfill's lower bound on `delivered_at`: examine this window instead of going back to
    /// the checkpoint; checkpoints are neither read nor written.
    pub since: Option<DateTime<Utc>>,
    /// A backfill's upper bound on `delivered_at`.
    pub until: Option<DateTime<Utc>>,
    /// List what would be recovered; change nothing.
    pub dry_run: bool,
    /// The run's time budget: once spent, no further recovery starts, and the checkpoint stays
    /// before the events left, which the next run recovers.
    pub max_duration: Option<Duration>,
    /// Runs that may fail to recover one event before it is given up on.
    pub give_up_after: u32,
    /// Recoveries in flight at once.
    pub concurrency: usize,
    /// Deliveries per listed page (GitHub's maximum is 100).
    pub per_page: u8,
    /// How long before the window closes an unrecovered failure raises the alert.
    pub alert_margin: Duration,
    /// This run's id, in checkpoint and failure rows and logs.
    pub run_id: String,
    /// Show a progress bar (set when stderr is a terminal).
    pub progress_bar: bool,
    /// Cancelled on SIGTERM/SIGINT: no further recovery starts, the checkpoint is written as far
    /// as is safe.
    pub shutdown: CancellationToken,
}

impl Default for RetryOptions {
    fn default() -> Self {
        Self {
            hooks: vec![HookRef::App],
            mode: RecoveryMode::Redeliver,
            window: Duration::from_secs(3 * 24 * 3600),
            since: None,
            until: None,
            dry_run: false,
            max_duration: None,
            give_up_after: 5,
            concurrency: 4,
            per_page: 100,
            alert_margin: Duration::from_secs(24 * 3600),
            run_id: new_run_id(),
            progress_bar: false,
            shutdown: CancellationToken::new(),
        }
    }
}

impl RetryOptions {
    /// Whether this run is a backfill over `since`/`until` (no checkpoints).
    pub fn is_backfill(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }
}

/// A run id unique enough for logs and rows: start time and process id.
pub fn new_run_id() -> String {
    format!(
        "{}-{}",
        Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        std::process::id()
    )
}
