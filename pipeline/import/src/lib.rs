//! `gma import`: backfill the events table from NDJSON files (GMA's BigQuery export, or
//! recorded `{headers, payload}` deliveries), plain or gzip-compressed.
//!
//! ```text
//!  files ──▶ ChunkReader ──chunks of whole lines──▶ process_chunk ×N ──row groups──▶ BulkWriter
//!            (files.rs, chunks.rs)                  parse, lift, reserve ids,        one file per
//!                                                   encode + zstd (process.rs)       day (store::bulk)
//! ```
//!
//! - Lines are parsed where they are ([`line`]); a bad line is counted and reported with its
//!   file and line number, and the rest imports.
//! - Delivery ids are deduplicated against the store and within the import by the store's
//!   writer thread ([`EventStore::reserve`](gma_store::EventStore::reserve)), so importing
//!   the same files twice stores nothing the second time.
//! - Rows skip the write-ahead log: they are encoded into Parquet row groups in parallel and
//!   written as day-partitioned files beside the compactor's.

pub mod chunks;
pub mod files;
pub mod line;
pub mod process;
mod run;
pub mod timestamp;

use std::path::{Path, PathBuf};

pub use chunks::{Chunk, ChunkReader};
pub use files::{InputFile, discover};
pub use line::{BadLineReason, ParsedLine, parse_line};
pub use process::{BadLine, LineCounts, ProcessContext, ProcessedChunk, process_chunk};
#[cfg(feature = "bigquery")]
pub use run::import_files_to_bigquery;
pub use run::{ImportOptions, ImportSummary, import_files};

use gma_store::StoreError;

/// Why an import stopped. Bad lines do not stop it; they are counted in the summary.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A path to import does not exist or cannot be listed.
    #[error("cannot read {path}")]
    Input {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or decompressing an input file failed part way.
    #[error(
        "reading {path} failed; nothing of the unfinished files was stored, run the import again once it reads"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error (a corrupt gzip stream reads as one).
        #[source]
        source: std::io::Error,
    },
    /// A line is longer than any webhook delivery can be.
    #[error("{path}:{line}: a line longer than {max_bytes} bytes; is this an NDJSON file?")]
    LineTooLong {
        /// The file.
        path: PathBuf,
        /// Its line number.
        line: u64,
        /// The limit.
        max_bytes: usize,
    },
    /// The paths hold no NDJSON file.
    #[error("no NDJSON files (.json, .ndjson, .jsonl, optionally .gz) under {0}")]
    NothingToImport(String),
    /// The store failed to reserve ids or write a file.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stage of the import pipeline stopped the run (an unreadable file, a failed write).
    #[error(transparent)]
    Pipeline(#[from] gma_pipeline::flow::FlowError),
    /// The events were imported, but the range of days they cover could not be recorded for
    /// the typed tables' refresh (`refresh_requests`).
    #[error(
        "the events are imported, but recording their days for the typed tables failed; fix the cause and run `gma views refresh` after importing the same files again"
    )]
    RequestRefresh(#[source] gma_pipeline::warehouse::WarehouseError),
    /// Chunks of input could not be processed; their lines were not imported.
    #[error(
        "{failed} chunk(s) of input could not be imported (first: {first}); run the import again, lines already imported are skipped"
    )]
    ChunksFailed {
        /// How many chunks failed.
        failed: u64,
        /// The first failures, `stage: file:line: error`.
        first: String,
    },
}

impl ImportError {
    pub(crate) fn input(path: &Path, source: std::io::Error) -> Self {
        Self::Input {
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests;
