//! Test helpers shared by gma's crates, so no crate keeps its own copy: webhook fixtures,
//! deliveries signed the way GitHub signs them and, with the `net` feature (on by default), a
//! `gma serve` child process to load, kill and restart, the emulators' buckets and datasets,
//! and a fake GitHub API. Dev-only: nothing here ships.
//!
//! Without `net` the crate builds no HTTP client and no server, so the webhook server's own
//! tests can sign and build deliveries without pulling either in.

mod delivery;
mod fixtures;

#[cfg(feature = "net")]
pub mod emulators;
#[cfg(feature = "net")]
pub mod github;
#[cfg(feature = "net")]
mod server;

pub use delivery::{Delivery, sign};
pub use fixtures::{Fixture, fixtures, fixtures_in, repo_root, shared_payloads};
#[cfg(feature = "net")]
pub use server::{GmaServer, free_port};
