//! gma's pipeline framework and the connectors its jobs read from and write to.
//!
//! - [`flow`]: the framework (sources → async transforms → sinks, sharded, bounded or following
//!   its source) that `gma import`, `gma retry` and `gma leech` are written in;
//! - [`warehouse`]: SQL over gma's tables in BigQuery's dialect, on DataFusion over the data
//!   directory ([`warehouse::local`]) or on BigQuery (`warehouse::bigquery`, feature `bigquery`,
//!   which also holds the webhook server's BigQuery event sink);
//! - [`blob`]: blob stores (local directory, memory, and Google Cloud Storage with feature
//!   `gcs`) with atomic streamed uploads and create-if-absent;
//! - [`github`]: a GitHub REST client (webhook deliveries, installation tokens, workflow-run
//!   logs) that honours GitHub's rate limits;
//! - [`lock`]: a lease lock held as one blob-store object, so one run of a job works at a time;
//! - [`sql`] and [`views`]: the repository's `sql/` and `views/` files, by name.
//!
//! The event and the embedded store it lands in are the `gma-store` crate, which this one
//! builds on; the webhook server depends on that crate alone.
#![deny(missing_docs)]

pub mod blob;
pub mod error;
pub mod flow;
pub mod github;
pub mod lock;
pub mod sql;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod tls;
pub mod views;
pub mod warehouse;
