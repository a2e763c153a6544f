//! gma's pipeline core and the connectors every gma component lands into or reads from.
//!
//! Today this crate holds the pieces the webhook server and `gma query` stand on:
//!
//! - [`blob`]: blob stores (local directory, memory, Google Cloud Storage) with atomic streamed
//!   uploads and create-if-absent, for log archives, large payloads and the retry job's lock;
//! - [`event`]: a webhook delivery as gma stores it, with the columns lifted from its payload;
//! - [`event_sink`]: where the webhook server lands events: the embedded store or BigQuery;
//! - [`store`]: the embedded event store of the data directory, a write-ahead log with group
//!   commit that a compactor folds into day-partitioned Parquet;
//! - [`warehouse`]: SQL over the stored tables (DataFusion locally), in BigQuery's dialect;
//! - [`flow`]: the pipeline framework (sources → async transforms → sinks, sharded, bounded or
//!   following its source) that gma's batch jobs are written in;
//! - [`github`]: a GitHub REST client for the batch jobs (webhook deliveries, installation
//!   tokens, workflow-run logs) that honours GitHub's rate limits;
//! - [`sql`]: the SQL files of the repository's `sql/` folder, by name;
//! - [`import`]: `gma import`, a bulk load of NDJSON files into the store;
//! - [`views`]: the analyst views of the repository's `views/` folder, by name and in
//!   dependency order;
//! - [`lock`]: a lease lock held as one blob-store object, renewed while held, so one run of a
//!   job (`gma retry`) works at a time.
//!
//! The key decision: an event is acknowledged only once its log record is fsynced, and many
//! concurrent appends share one fsync, so durability does not cost throughput. Everything after
//! that (Parquet, queries) can be rebuilt from the log.
#![deny(missing_docs)]

pub mod blob;
pub mod event;
pub mod event_sink;
pub mod flow;
pub mod github;
pub mod import;
pub mod lock;
pub mod schema;
pub mod sql;
pub mod store;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod views;
pub mod warehouse;
