//! `gma leech`: archive the logs of every completed workflow run before GitHub deletes them.
#![deny(missing_docs)]
pub mod index;
