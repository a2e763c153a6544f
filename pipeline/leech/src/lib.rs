//! `gma leech`: archive the logs of every completed workflow run before GitHub deletes them
//! (after 90 days by default, often fewer).
//!
//! A pipeline on `gma-pipeline`:
//!
//! - **source**: ONE query over the events table (`sql/leech_source.sql`): completed
//!   `workflow_run` events, one row per run attempt however often the event was redelivered,
//!   without the attempts already archived, found gone, failed too often, or failed too recently;
//!   sharded by run id, bounded or following new events;
//! - **archive** ([`archive`]): an installation token (cached per installation), the logs zip
//!   streamed from GitHub's storage host (which never sees the token) into the blob store at
//!   `{owner}/{repo}/{run_id}/{attempt}/logs.zip`, then indexed from the stored bytes
//!   ([`index`]);
//! - **sinks**: one `workflow_logs` row per file of the zip, then one `leech_status` row per try
//!   (SUCCESS, NOT_FOUND, or FAILURE retried with backoff up to a cap).
//!
//! Re-running over the same rows stores nothing twice: finished attempts leave the source, and
//! a zip stored by a try that died before its status row is indexed instead of downloaded again.
#![deny(missing_docs)]

pub mod archive;
pub mod index;
pub mod job;
pub mod rows;
pub mod summary;

pub use job::{LeechError, LeechJob, LeechOptions, LeechTables};
pub use summary::LeechSummary;
