//! Bulk loads into the events table that skip the write-ahead log: `gma import`'s path.
//!
//! ```text
//!  ids ──reserve──▶ writer thread (index)      encode (any thread)         BulkWriter (one thread)
//!  rows of the new ids ──▶ RecordBatch ──▶ RowGroupEncoder ──▶ EncodedRowGroup ──▶ day file, .tmp
//!                                                                 close: fsync, rename, fsync dir
//! ```
//!
//! - **Dedupe stays with the writer thread.** [`EventStore::reserve`] asks the thread that owns
//!   the delivery-id index which ids are new and holds them there, so neither a later duplicate
//!   in the same load nor a webhook append of the same id can store a second copy. A
//!   [`Reservation`] that is dropped before its rows are durable gives its ids back.
//! - **Parallel encoding.** Row groups are encoded and zstd-compressed by
//!   [`RowGroupEncoder::encode`] on any thread; the [`BulkWriter`] only appends the encoded
//!   bytes to one open file per day.
//! - **Durable files, never half a file.** A file is written as `imp-N.parquet.tmp`, fsynced,
//!   renamed and its folder fsynced, as the compactor does; `N` comes from the segment counter
//!   so it never collides with a compacted file. Its ids count as stored only then. A crash
//!   leaves at most `.tmp` files, removed on the next open, and re-running the import stores
//!   what was not durable.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::file::writer::SerializedFileWriter;
use tokio::sync::{mpsc, oneshot};

use super::compactor::writer_properties;
use super::index::{self, DeliveryKey};
use super::layout::{EVENTS_TABLE, Layout, fsync_dir};
use super::writer::Command;
use super::{EventStore, StoreError};
use crate::schema::events_schema;

/// A file is closed and a new one started for its day once it holds this many bytes.
const MAX_FILE_BYTES: usize = 512 * 1024 * 1024;
/// Days with an open file at once; writing another day closes the one written longest ago.
const MAX_OPEN_DAYS: usize = 32;

/// Delivery ids a bulk load holds in the store's index until its rows are durable.
///
/// Dropping it without [`BulkWriter::finish`] having made its rows durable gives the new ids
/// back, so a failed load can be run again.
#[derive(Debug)]
pub struct Reservation {
    /// Per id asked for, in order: its key if it was new (and is now held), `None` if it was
    /// stored already or came earlier in the same request.
    keys: Vec<Option<DeliveryKey>>,
    tx: mpsc::Sender<Command>,
}

impl Reservation {
    /// Whether the `i`-th id of the request was new (and is held by this reservation).
    pub fn is_new(&self, i: usize) -> bool {
        self.keys.get(i).is_some_and(Option::is_some)
    }

    /// How many of the requested ids were new.
    pub fn new_count(&self) -> usize {
        self.keys.iter().flatten().count()
    }

    /// How many ids the request had.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the request had no ids.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Moves the ids at `positions` (positions in the original request) into a reservation of
    /// their own, e.g. the rows of one day.
    pub fn split_off(&mut self, positions: impl IntoIterator<Item = usize>) -> Reservation {
        let keys = positions
            .into_iter()
            .map(|i| self.keys.get_mut(i).and_then(Option::take))
            .collect();
        Reservation {
            keys,
            tx: self.tx.clone(),
        }
    }

    /// Marks the ids as stored: they stay in the index for good.
    fn settle(mut self) {
        self.keys.clear();
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let keys: Vec<DeliveryKey> = self.keys.drain(..).flatten().collect();
        if keys.is_empty() {
            return;
        }
        match self.tx.try_send(Command::Release(keys)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(command)) => {
                // Drop may run inside an async task, where a blocking send would panic.
                let tx = self.tx.clone();
                let _ = std::thread::Builder::new()
                    .name("gma-release".into())
                    .spawn(move || tx.blocking_send(command));
            }
            // The store is gone, and its index with it.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

impl EventStore {
    /// Reserves the delivery ids of a bulk load (see [`Reservation`]); answers which were new.
    ///
    /// # Errors
    /// [`StoreError::Closed`] if the store is shutting down.
    pub async fn reserve(&self, delivery_ids: &[&str]) -> Result<Reservation, StoreError> {
        let keys: Vec<DeliveryKey> = delivery_ids.iter().map(|id| index::key(id)).collect();
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Reserve {
                keys: keys.clone(),
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        let fresh = answer.await.map_err(|_| StoreError::Closed)?;
        Ok(self.reservation(keys, fresh))
    }

    /// [`reserve`](Self::reserve) for a thread outside the async runtime (or in
    /// `spawn_blocking`).
    ///
    /// # Errors
    /// [`StoreError::Closed`] if the store is shutting down.
    ///
    /// # Panics
    /// When called from an async task (tokio refuses to block there).
    pub fn reserve_blocking(&self, delivery_ids: &[&str]) -> Result<Reservation, StoreError> {
        let keys: Vec<DeliveryKey> = delivery_ids.iter().map(|id| index::key(id)).collect();
        let (reply, answer) = oneshot::channel();
        self.tx
            .blocking_send(Command::Reserve {
                keys: keys.clone(),
                reply,
            })
            .map_err(|_| StoreError::Closed)?;
        let fresh = answer.blocking_recv().map_err(|_| StoreError::Closed)?;
        Ok(self.reservation(keys, fresh))
    }

    fn reservation(&self, keys: Vec<DeliveryKey>, fresh: Vec<bool>) -> Reservation {
        Reservation {
            keys: keys
                .into_iter()
                .zip(fresh)
                .map(|(key, new)| new.then_some(key))
                .collect(),
            tx: self.tx.clone(),
        }
    }

    /// A number no log segment and no other file of this store will have.
    fn allocate_file_id(&self) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .blocking_send(Command::AllocateId(reply))
            .map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)
    }
}

/// Encodes batches of the events schema into compressed Parquet row groups, on any thread.
#[derive(Debug)]
pub struct RowGroupEncoder {
    factory: ArrowRowGroupWriterFactory,
}

impl RowGroupEncoder {
    /// An encoder with the events table's Parquet settings (zstd, as the compactor writes).
    ///
    /// # Errors
    /// A Parquet error building the settings, which would be a bug here.
    pub fn new() -> Result<Self, StoreError> {
        let context = "preparing the Parquet encoder";
        let properties = writer_properties().map_err(|e| StoreError::parquet(context, e))?;
        let writer = ArrowWriter::try_new(std::io::sink(), events_schema(), Some(properties))
            .map_err(|e| StoreError::parquet(context, e))?;
        let (_, factory) = writer
            .into_serialized_writer()
            .map_err(|e| StoreError::parquet(context, e))?;
        Ok(Self { factory })
    }

    /// Encodes `batch` (rows of one UTC day `day`, `YYYY-MM-DD`) as one row group. `reservation`
    /// holds the rows' delivery ids and travels with it until the row group is durable.
    ///
    /// # Errors
    /// A Parquet error if the batch does not match the events schema (a bug).
    pub fn encode(
        &self,
        day: String,
        batch: &RecordBatch,
        reservation: Reservation,
    ) -> Result<EncodedRowGroup, StoreError> {
        let context = || format!("encoding a row group of day {day}");
        let pq = |e| StoreError::parquet(context(), e);
        let mut writers = self.factory.create_column_writers(0).map_err(pq)?;
        let schema = events_schema();
        let mut writer_iter = writers.iter_mut();
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            for leaf in compute_leaves(field, column).map_err(pq)? {
                let writer = writer_iter.next().ok_or_else(|| {
                    StoreError::parquet(
                        context(),
                        parquet::errors::ParquetError::General(
                            "more leaf columns than column writers".into(),
                        ),
                    )
                })?;
                writer.write(&leaf).map_err(pq)?;
            }
        }
        let chunks = writers
            .into_iter()
            .map(|w| w.close())
            .collect::<Result<Vec<_>, _>>()
            .map_err(pq)?;
        Ok(EncodedRowGroup {
            day,
            rows: batch.num_rows(),
            chunks,
            reservation,
        })
    }
}

/// One compressed row group of a single day, ready to be appended to a file.
#[derive(Debug)]
pub struct EncodedRowGroup {
    day: String,
    rows: usize,
    chunks: Vec<ArrowColumnChunk>,
    reservation: Reservation,
}

impl EncodedRowGroup {
    /// The UTC day of its rows.
    pub fn day(&self) -> &str {
        &self.day
    }

    /// How many rows it holds.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// What a bulk load wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BulkStats {
    /// Rows made durable.
    pub rows: u64,
    /// Parquet files written.
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
}

struct OpenFile {
    tmp: PathBuf,
    path: PathBuf,
    writer: SerializedFileWriter<File>,
    rows: u64,
    reservations: Vec<Reservation>,
    last_used: u64,
}

/// Appends encoded row groups to one open file per day and makes them durable.
///
/// Rows count as stored once [`finish`](Self::finish) returns (or their file was closed
/// earlier because it was full or its day was the least recently written). Dropping the writer
/// unfinished removes its temporary files and gives their delivery ids back.
pub struct BulkWriter {
    store: Arc<EventStore>,
    open: BTreeMap<String, OpenFile>,
    clock: u64,
    stats: BulkStats,
}

impl BulkWriter {
    /// Starts a bulk load into the events table of `store`. Its methods block (file I/O, and
    /// the writer thread's answers): call them outside async tasks or in `spawn_blocking`.
    pub fn new(store: Arc<EventStore>) -> Self {
        Self {
            store,
            open: BTreeMap::new(),
            clock: 0,
            stats: BulkStats::default(),
        }
    }

    /// Appends `group` to its day's file, starting one if needed.
    ///
    /// # Errors
    /// An I/O or Parquet error writing the file (the load should stop; nothing of the
    /// unfinished files counts as stored).
    pub fn write(&mut self, group: EncodedRowGroup) -> Result<(), StoreError> {
        if group.rows == 0 {
            group.reservation.settle();
            return Ok(());
        }
        self.clock += 1;
        if !self.open.contains_key(&group.day) {
            if self.open.len() >= MAX_OPEN_DAYS
                && let Some(oldest) = self
                    .open
                    .iter()
                    .min_by_key(|(_, file)| file.last_used)
                    .map(|(day, _)| day.clone())
            {
                self.close_day(&oldest)?;
            }
            let file = self.start_file(&group.day)?;
            self.open.insert(group.day.clone(), file);
        }
        let Some(file) = self.open.get_mut(&group.day) else {
            return Ok(());
        };
        let context = || format!("writing {}", file.tmp.display());
        let mut row_group = file
            .writer
            .next_row_group()
            .map_err(|e| StoreError::parquet(context(), e))?;
        for chunk in group.chunks {
            chunk
                .append_to_row_group(&mut row_group)
                .map_err(|e| StoreError::parquet(context(), e))?;
        }
        row_group
            .close()
            .map_err(|e| StoreError::parquet(context(), e))?;
        file.rows += group.rows as u64;
        file.last_used = self.clock;
        file.reservations.push(group.reservation);
        if file.writer.bytes_written() >= MAX_FILE_BYTES {
            let day = group.day;
            self.close_day(&day)?;
        }
        Ok(())
    }

    /// Closes every open file durably and returns what the load wrote.
    ///
    /// # Errors
    /// An I/O or Parquet error closing a file.
    pub fn finish(mut self) -> Result<BulkStats, StoreError> {
        let days: Vec<String> = self.open.keys().cloned().collect();
        for day in days {
            self.close_day(&day)?;
        }
        Ok(std::mem::take(&mut self.stats))
    }

    fn start_file(&self, day: &str) -> Result<OpenFile, StoreError> {
        let layout: &Layout = self.store.layout();
        let id = self.store.allocate_file_id()?;
        let dir = layout.day_dir(EVENTS_TABLE, day);
        let path = layout.import_parquet_path(EVENTS_TABLE, day, id);
        let tmp = path.with_extension("parquet.tmp");
        let io = |e| StoreError::io(format!("creating {}", tmp.display()), e);
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(io)?;
            fsync_dir(&layout.table_dir(EVENTS_TABLE)).map_err(io)?;
        }
        let file = File::create(&tmp).map_err(io)?;
        let properties =
            writer_properties().map_err(|e| StoreError::parquet("preparing Parquet", e))?;
        let (writer, _) = ArrowWriter::try_new(file, events_schema(), Some(properties))
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(|e| StoreError::parquet(format!("starting {}", tmp.display()), e))?;
        Ok(OpenFile {
            tmp,
            path,
            writer,
            rows: 0,
            reservations: Vec::new(),
            last_used: 0,
        })
    }

    fn close_day(&mut self, day: &str) -> Result<(), StoreError> {
        let Some(file) = self.open.remove(day) else {
            return Ok(());
        };
        let OpenFile {
            tmp,
            path,
            writer,
            rows,
            reservations,
            ..
        } = file;
        let context = || format!("writing {}", tmp.display());
        let io = |e| StoreError::io(context(), e);
        let result = (|| {
            let mut inner = writer
                .into_inner()
                .map_err(|e| StoreError::parquet(context(), e))?;
            inner.flush().map_err(io)?;
            inner.sync_all().map_err(io)?;
            let bytes = inner.metadata().map_err(io)?.len();
            drop(inner);
            fs::rename(&tmp, &path).map_err(io)?;
            if let Some(dir) = path.parent() {
                fsync_dir(dir).map_err(io)?;
            }
            Ok(bytes)
        })();
        match result {
            Ok(bytes) => {
                for reservation in reservations {
                    reservation.settle();
                }
                self.stats.rows += rows;
                self.stats.files += 1;
                self.stats.bytes += bytes;
                Ok(())
            }
            Err(error) => {
                let _ = fs::remove_file(&tmp);
                Err(error)
            }
        }
    }
}

impl Drop for BulkWriter {
    fn drop(&mut self) {
        // Unfinished files: their rows are not stored. The reservations drop with them.
        for file in std::mem::take(&mut self.open).into_values() {
            let tmp = file.tmp.clone();
            drop(file);
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Removes the temporary files of bulk loads a crash interrupted. Runs on open, before any
/// writer starts.
pub(crate) fn remove_abandoned(layout: &Layout) {
    let table = layout.table_dir(EVENTS_TABLE);
    let Ok(days) = fs::read_dir(&table) else {
        return;
    };
    for day in days.flatten() {
        let Ok(files) = fs::read_dir(day.path()) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("imp-") && name.ends_with(".parquet.tmp") {
                let path: &Path = &file.path();
                tracing::info!(path = %path.display(), "Removing the unfinished file of an interrupted import; run the import again to store its rows.");
                let _ = fs::remove_file(path);
            }
        }
    }
}
