//! `gma retry`: the scheduled job that recovers every webhook delivery GitHub failed to land.
//!
//! GitHub never retries a failed delivery and keeps it redeliverable for only a few days. A run:
//!
//! 1. takes the retry lock (a lease in the blob store), so one run works at a time;
//! 2. reads its checkpoints, one per webhook ([`checkpoint`]);
//! 3. lists each webhook's deliveries, newest first, back to its checkpoint or the redelivery
//!    window ([`scan`]);
//! 4. groups attempts by GUID: an event needs recovery only if no attempt succeeded; then ONE
//!    query asks the warehouse which of those landed anyway and which failed before
//!    ([`candidates`]);
//! 5. recovers the rest, oldest first, as a pipeline with bounded concurrency ([`recover`]):
//!    GitHub redelivers them, or gma fetches each delivery's payload and lands it itself;
//! 6. moves each checkpoint only as far as every older failure was handled, so a crash or a
//!    time budget never skips an event;
//! 7. reports what it did ([`summary`]).
//!
//! An event that keeps failing is given up on after a set number of runs and recorded in
//! `failure_events` with the reason, instead of being retried forever.
#![deny(missing_docs)]

pub mod candidates;
pub mod checkpoint;
pub mod error;
pub mod fetch;
pub mod job;
pub mod options;
pub mod recover;
pub mod scan;
pub mod summary;

pub use error::RetryError;
pub use job::{RetryJob, RetryOutcome, RetryTables};
pub use options::{RecoveryMode, RetryOptions};
pub use summary::RetrySummary;
