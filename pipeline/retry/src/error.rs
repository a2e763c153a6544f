//! Why a retry run failed.

use gma_pipeline::flow::FlowError;
use gma_pipeline::flow::rows::RowError;
use gma_pipeline::github::GitHubError;
use gma_pipeline::lock::LockError;
use gma_pipeline::warehouse::WarehouseError;

/// Errors that end a run. The checkpoint has been written as far as was safe before any of
/// them is returned, so the next run continues where this one stopped.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// The run's configuration cannot work.
    #[error("{0}")]
    Config(String),
    /// The retry lock could not be taken or kept.
    #[error("the retry lock")]
    Lock(#[from] LockError),
    /// Reading the checkpoints failed.
    #[error(
        "reading the checkpoints failed; check the warehouse (the checkpoint table) and run again"
    )]
    Checkpoint(#[source] WarehouseError),
    /// Listing a webhook's deliveries failed.
    #[error("listing the deliveries of hook {hook}")]
    List {
        /// The webhook.
        hook: String,
        /// What failed.
        #[source]
        source: GitHubError,
    },
    /// The query over the events table failed.
    #[error("asking the events table which failed deliveries landed")]
    Lookup(#[source] WarehouseError),
    /// Writing a checkpoint or failure row failed.
    #[error("writing {table}")]
    Write {
        /// The table.
        table: String,
        /// What failed.
        #[source]
        source: WarehouseError,
    },
    /// A row did not convert.
    #[error(transparent)]
    Rows(#[from] RowError),
    /// The recovery pipeline failed.
    #[error("recovering events")]
    Flow(#[from] FlowError),
    /// GitHub (or the events sink) stopped answering during recovery: the events left are
    /// recovered by the next run.
    #[error(
        "recovery stopped after {recovered} events: {message}; the checkpoint stays before the \
         {left} events left, which the next run recovers"
    )]
    Unavailable {
        /// Events recovered before it stopped.
        recovered: u64,
        /// Events not recovered.
        left: u64,
        /// What failed.
        message: String,
    },
}
