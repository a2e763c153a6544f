//! Where the store keeps what in the data directory.
//!
//! ```text
//! gma-data/
//!   LOCK                                   held by the one process that writes
//!   wal/00000000000000000007.wal           log segments, oldest first
//!   wal/payloads/…                         large payloads the log records point at
//!   tables/events/day=2026-11-28/seg-00000000000000000006.parquet
//!   tables/events/day=2026-11-28/imp-00000000000000000009.parquet   written by `gma import`
//!   tmp/spill/datafusion-XXXXXX/…          running queries' spill files, a folder per open warehouse
//! ```
//!
//! A Parquet file is named after the segment it was compacted from, so a reader that read a
//! segment from the log knows to skip that segment's Parquet files, and compacting a segment
//! twice (after a crash) overwrites instead of duplicating.
//!
//! A bulk-imported file (`imp-N`) skips the log. Its number is drawn from the same counter as
//! segment numbers, so no log segment ever has it: readers never skip it, and it can never
//! collide with a compacted file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Name of the only table the store writes today.
pub const EVENTS_TABLE: &str = "events";

/// A compacted Parquet file of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetFile {
    /// Its path.
    pub path: PathBuf,
    /// The log segment it was compacted from; for an imported file, the number it drew from
    /// the segment counter (no log segment has that number).
    pub segment: u64,
}

/// The paths of one data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout of the data directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The data directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The lock file a writing process holds.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("LOCK")
    }

    /// The folder of log segments.
    pub fn wal_dir(&self) -> PathBuf {
        self.root.join("wal")
    }

    /// The folder of payloads too large to keep in a log record.
    pub fn payload_dir(&self) -> PathBuf {
        self.wal_dir().join("payloads")
    }

    /// The path of log segment `id`.
    pub fn segment_path(&self, id: u64) -> PathBuf {
        self.wal_dir().join(format!("{id:020}.wal"))
    }

    /// The folder local queries spill to when they outgrow their memory limit; each open
    /// warehouse makes its own folder in it and removes it when done.
    pub fn spill_dir(&self) -> PathBuf {
        self.root.join("tmp").join("spill")
    }

    /// The folder of a table's Parquet files.
    pub fn table_dir(&self, table: &str) -> PathBuf {
        self.root.join("tables").join(table)
    }

    /// The folder of one day's partition of a table.
    pub fn day_dir(&self, table: &str, day: &str) -> PathBuf {
        self.table_dir(table).join(format!("day={day}"))
    }

    /// The Parquet file holding segment `segment`'s rows of day `day`.
    pub fn parquet_path(&self, table: &str, day: &str, segment: u64) -> PathBuf {
        self.day_dir(table, day)
            .join(format!("seg-{segment:020}.parquet"))
    }

    /// The Parquet file number `id` of a bulk import wrote for day `day`.
    pub fn import_parquet_path(&self, table: &str, day: &str, id: u64) -> PathBuf {
        self.day_dir(table, day)
            .join(format!("imp-{id:020}.parquet"))
    }

    /// Creates the folders a writer needs.
    ///
    /// # Errors
    /// The I/O error of the first folder that could not be created.
    pub fn create_dirs(&self) -> io::Result<()> {
        fs::create_dir_all(self.payload_dir())?;
        fs::create_dir_all(self.table_dir(EVENTS_TABLE))?;
        fsync_dir(&self.root)?;
        fsync_dir(&self.wal_dir())
    }

    /// The ids of the log segments present, oldest first. A missing folder has none.
    ///
    /// # Errors
    /// The I/O error of listing the folder.
    pub fn list_segments(&self) -> io::Result<Vec<u64>> {
        let mut ids = Vec::new();
        for entry in read_dir_if_exists(&self.wal_dir())? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name.strip_suffix(".wal").and_then(|s| s.parse().ok()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// The compacted Parquet files of `table`, in path order. Files still being written
    /// (`.tmp`) are not listed.
    ///
    /// # Errors
    /// The I/O error of listing a folder.
    pub fn list_parquet(&self, table: &str) -> io::Result<Vec<ParquetFile>> {
        let mut files = Vec::new();
        for day in read_dir_if_exists(&self.table_dir(table))? {
            let day = day?;
            if !day.file_type()?.is_dir() {
                continue;
            }
            for file in read_dir_if_exists(&day.path())? {
                let file = file?;
                let name = file.file_name();
                let name = name.to_string_lossy();
                let segment = name
                    .strip_prefix("seg-")
                    .or_else(|| name.strip_prefix("imp-"))
                    .and_then(|s| s.strip_suffix(".parquet"))
                    .and_then(|s| s.parse().ok());
                if let Some(segment) = segment {
                    files.push(ParquetFile {
                        path: file.path(),
                        segment,
                    });
                }
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }
}

fn read_dir_if_exists(
    path: &Path,
) -> io::Result<Box<dyn Iterator<Item = io::Result<fs::DirEntry>>>> {
    match fs::read_dir(path) {
        Ok(entries) => Ok(Box::new(entries)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Box::new(std::iter::empty())),
        Err(error) => Err(error),
    }
}

/// Makes a folder's entries (created, renamed or removed files) durable.
///
/// # Errors
/// The I/O error of opening or syncing the folder.
pub fn fsync_dir(path: &Path) -> io::Result<()> {
    fs::File::open(path)?.sync_all()
}
