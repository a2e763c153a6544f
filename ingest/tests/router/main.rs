//! The webhook server's router driven in-process (`tower::ServiceExt::oneshot`, no socket)
//! over an event store in a temporary directory, or over a sink that fails or stalls.
//!
//! - `support`: the router, its store, requests and answers.
//! - `webhook`: every status of `POST /webhook` and what lands.
//! - `routes`: `/healthz`, `/version`, `/metrics`, wrong methods and paths.
//! - `sink`: statuses that depend on the sink: unavailable, slow, a request dropped mid-landing.
//!
//! What needs a real connection (truncated and chunked bodies on the wire, a graceful stop with
//! a request in flight) and the `gma` binary are tested in the workspace's `tests/it`.

mod routes;
mod sink;
mod support;
mod webhook;
