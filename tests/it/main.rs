//! gma's integration tests: one binary, one module per area.
//!
//! - `support`: the `gma` binary's path, an in-process server on a loopback port over a fresh
//!   data directory, queries of a data directory.
//! - `boundaries`: the crate graph keeps docs/architecture.md's boundaries.
//! - `bigquery_sink`: `gma serve --sink bigquery` against bqemulator.
//! - `disk_full`: a full disk answers 503, loses nothing acknowledged, recovers.
//! - `http`: what only real HTTP shows: truncated and chunked bodies, a graceful stop with a
//!   delivery in flight (every other status is tested on the router in `gma-ingest`).
//! - `import`: `gma import` of fixture files, then `gma query`; the data directory's lock.
//! - `landing`: payloads land byte-identical with their lifted columns, also large ones, and
//!   concurrent deliveries share fsyncs.
//! - `process`: the `gma` binary itself: `gma query` output, SIGTERM, and SIGKILL under load.
//! - `leech`: `gma leech` archives and indexes run logs from the fake GitHub.
//! - `readme`: README.md's commands work as written.
//! - `retry`: `gma retry` against the fake GitHub, locally through `gma serve` and on
//!   BigQuery + GCS stand-ins.
//! - `views`: the analyst views through `gma query` and `gma views`.
//! - `terraform`: the terraform module creates every table and view, in a working order, and
//!   sets only environment variables `gma` reads.

mod bigquery_sink;
mod boundaries;
mod disk_full;
mod http;
mod import;
mod landing;
mod leech;
mod process;
mod readme;
mod refresh;
mod retry;
mod support;
mod terraform;
mod views;
