//! A consistent read of the events table while a server may be writing it: the compacted
//! Parquet files plus every record still in the log.
//!
//! Segments are read first. A Parquet file compacted from a segment that was read is skipped,
//! and a segment that vanished before it could be read has been compacted already (the log is
//! trimmed only after its Parquet is durable), so each event is seen exactly once.

use std::collections::HashSet;
use std::path::PathBuf;

use arrow::array::RecordBatch;
use bytes::Bytes;

use super::layout::{EVENTS_TABLE, Layout};
use super::record::scan;
use super::{StoreError, append_stored};
use crate::schema::EventBatchBuilder;

/// What a reader sees of the events table at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Compacted Parquet files to read.
    pub parquet_files: Vec<PathBuf>,
    /// Events still in the log, as batches of the events schema.
    pub tail: Vec<RecordBatch>,
}

/// Rows per tail batch.
const TAIL_BATCH_ROWS: usize = 4096;

/// Reads a snapshot of the events table in the data directory `layout`. It takes no lock and
/// changes nothing, so it runs beside a writing server.
///
/// # Errors
/// An I/O error listing or reading the folders, or a payload file that vanished three times in a
/// row (a compaction racing this read).
pub fn read_snapshot(layout: &Layout) -> Result<Snapshot, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_snapshot(layout) {
            Err(StoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && attempt < 3 => {}
            other => return other,
        }
    }
}

fn try_snapshot(layout: &Layout) -> Result<Snapshot, StoreError> {
    let wal = layout.wal_dir();
    let segments = layout
        .list_segments()
        .map_err(|e| StoreError::io(format!("listing {}", wal.display()), e))?;
    let mut read = HashSet::new();
    let mut builder = EventBatchBuilder::new();
    let mut tail = Vec::new();
    for id in segments {
        let path = layout.segment_path(id);
        let data = match std::fs::read(&path) {
            Ok(data) => Bytes::from(data),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(StoreError::io(format!("reading {}", path.display()), error)),
        };
        read.insert(id);
        for event in scan(&data, &layout.payload_dir()).events {
            append_stored(&mut builder, &event, &path)?;
            if builder.len() >= TAIL_BATCH_ROWS {
                tail.push(
                    builder
                        .finish()
                        .map_err(|e| StoreError::arrow("reading the log", e))?,
                );
            }
        }
    }
    if !builder.is_empty() {
        tail.push(
            builder
                .finish()
                .map_err(|e| StoreError::arrow("reading the log", e))?,
        );
    }
    let table = layout.table_dir(EVENTS_TABLE);
    let parquet_files = layout
        .list_parquet(EVENTS_TABLE)
        .map_err(|e| StoreError::io(format!("listing {}", table.display()), e))?
        .into_iter()
        .filter(|file| !read.contains(&file.segment))
        .map(|file| file.path)
        .collect();
    Ok(Snapshot {
        parquet_files,
        tail,
    })
}
