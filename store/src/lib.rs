//! gma's embedded event store: a webhook delivery as gma keeps it, and the folder on one machine
//! that keeps it durably. The webhook server (`gma-ingest`) needs nothing else, so this crate
//! builds neither DataFusion nor an HTTP client.
//!
//! - [`event`]: a webhook delivery as gma stores it, with the columns lifted from its payload;
//! - [`schema`]: the events table's Arrow schema and a batch builder for it;
//! - [`event_sink`]: where the webhook server lands events ([`EventSink`]); the store is one,
//!   BigQuery (in `gma-pipeline`) another;
//! - `testing` (feature `test-util`, for tests): an event builder and the rows a data directory
//!   holds;
//! - the store itself, [`EventStore`]:
//!
//! ```text
//!  append ──▶ bounded queue ──▶ writer thread ──write+fdatasync──▶ wal/NNN.wal ──▶ 2xx
//!                                    │ (group commit: one fsync per batch)
//!                                    └── sealed segment ──▶ compactor ──▶ tables/events/day=…/*.parquet
//! ```
//!
//! - **Durable before acknowledged.** [`EventStore::append`] returns only after the record is
//!   fsynced. A crash (even `kill -9`) loses nothing that was acknowledged; a torn record at the
//!   end of the log is detected by its checksum and dropped on the next open.
//! - **Deduplicated on `delivery_id`.** The writer thread owns an index of every stored id,
//!   rebuilt on open, so a redelivered event is stored once.
//! - **Queryable at once.** Readers ([`snapshot::read_snapshot`]) see the Parquet files plus the
//!   log's records, so an event can be queried as soon as it is acknowledged.
//! - **One writer.** A lock file keeps a second process from writing the same folder.
//! - **Bulk loads skip the log.** [`bulk`] writes imported rows straight to Parquet files,
//!   deduplicated through the same index.

#![deny(missing_docs)]

pub mod event;
pub mod event_sink;
pub mod schema;

pub mod bulk;
mod chain;
mod compactor;
mod index;
pub mod layout;
mod metrics;
mod record;
pub mod snapshot;
mod spool;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
#[cfg(test)]
mod tests;
mod writer;

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

pub use bulk::{BulkStats, BulkWriter, EncodedRowGroup, Reservation, RowGroupEncoder};
pub use chain::error_chain;
pub use compactor::day_of;
pub use event_sink::EventSink;
pub use layout::Layout;
pub use metrics::StoreMetrics;
pub use snapshot::{Snapshot, read_snapshot};
pub use spool::{Spool, SpoolGuard};

use crate::event::{Event, Payload};
use compactor::CompactorMsg;
use writer::{Command, Writer};

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The event is stored and durable.
    Landed,
    /// An event with this delivery id was stored before; nothing new was stored.
    Duplicate,
}

/// Errors of the event store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process writes this data directory.
    #[error(
        "another gma process is writing the data directory {0} (it holds the LOCK file); stop it, or point this one at another --data-dir"
    )]
    Locked(PathBuf),
    /// An I/O error, with what the store was doing.
    #[error("{context}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A Parquet error, with what the store was doing.
    #[error("{context}")]
    Parquet {
        /// What the store was doing.
        context: String,
        /// The Parquet error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// An Arrow error, with what the store was doing.
    #[error("{context}")]
    Arrow {
        /// What the store was doing.
        context: String,
        /// The Arrow error.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// A stored file is not what the store wrote.
    #[error("{path} is damaged: {reason}; move it aside to start without it")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The store cannot take writes now (a failed fsync, a full disk); retry later.
    #[error("the event store cannot write: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The store is shutting down.
    #[error("the event store is shutting down")]
    Closed,
}

impl StoreError {
    /// An I/O error while doing `context`.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// A Parquet error while doing `context`.
    pub fn parquet(context: impl Into<String>, source: parquet::errors::ParquetError) -> Self {
        Self::Parquet {
            context: context.into(),
            source,
        }
    }

    /// An Arrow error while doing `context`.
    pub fn arrow(context: impl Into<String>, source: arrow::error::ArrowError) -> Self {
        Self::Arrow {
            context: context.into(),
            source,
        }
    }
}

/// How the store rolls and seals its log.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Seal the active log segment once it holds this many bytes.
    pub segment_max_bytes: u64,
    /// Seal the active log segment once it is this old, so that a quiet server's events reach
    /// Parquet too.
    pub seal_after: Duration,
    /// Appends that may wait for the writer before `append` itself waits (backpressure).
    pub queue_depth: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            segment_max_bytes: 64 * 1024 * 1024,
            seal_after: Duration::from_secs(300),
            queue_depth: 4096,
        }
    }
}

/// The embedded event store of one data directory, open for writing.
#[derive(Debug)]
pub struct EventStore {
    layout: Layout,
    tx: mpsc::Sender<Command>,
    healthy: Arc<AtomicBool>,
    metrics: Arc<StoreMetrics>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    _lock: File,
}

/// What opening found in the log.
struct Recovery {
    index: HashSet<index::DeliveryKey>,
    next_segment: u64,
    segments: Vec<u64>,
    events: usize,
}

impl EventStore {
    /// Opens (creating if needed) the store in `dir`: takes the writer's lock, truncates a torn
    /// log tail, rebuilds the delivery-id index, queues unsealed segments for compaction and
    /// starts the writer and compactor threads.
    ///
    /// # Errors
    /// [`StoreError::Locked`] if another process writes `dir`; I/O and Parquet errors reading
    /// what is there.
    pub fn open(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self, StoreError> {
        let layout = Layout::new(dir.as_ref());
        let root = layout.root().display().to_string();
        layout
            .create_dirs()
            .map_err(|e| StoreError::io(format!("creating the data directory {root}"), e))?;
        let lock_path = layout.lock_path();
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::io(format!("opening {}", lock_path.display()), e))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked(layout.root().to_path_buf()));
        }
        let recovery = recover(&layout)?;
        tracing::info!(
            data_dir = %root,
            stored_events = recovery.index.len(),
            log_events = recovery.events,
            log_segments = recovery.segments.len(),
            "Opened the event store."
        );

        let metrics = Arc::new(StoreMetrics::default());
        let healthy = Arc::new(AtomicBool::new(true));
        let (compactor_tx, compactor_rx) = std_mpsc::channel();
        for id in &recovery.segments {
            let _ = compactor_tx.send(CompactorMsg::Segment(*id));
        }
        let (tx, rx) = mpsc::channel(options.queue_depth.max(1));
        let writer = Writer::new(
            layout.clone(),
            recovery.index,
            recovery.next_segment,
            &options,
            compactor_tx,
            Arc::clone(&metrics),
            Arc::clone(&healthy),
        );
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| StoreError::io(format!("starting the {name} thread"), e))
        };
        let compactor_layout = layout.clone();
        let compactor_metrics = Arc::clone(&metrics);
        let threads = vec![
            spawn(
                "gma-compactor",
                Box::new(move || compactor::run(compactor_layout, compactor_rx, compactor_metrics)),
            )?,
            spawn("gma-log-writer", Box::new(move || writer.run(rx)))?,
        ];
        let ticker = tx.clone();
        spawn(
            "gma-log-ticker",
            Box::new(move || {
                while !ticker.is_closed() {
                    std::thread::sleep(Duration::from_secs(1));
                    if ticker.blocking_send(Command::Tick).is_err() {
                        break;
                    }
                }
            }),
        )?;
        Ok(Self {
            layout,
            tx,
            healthy,
            metrics,
            threads: Mutex::new(threads),
            _lock: lock,
        })
    }

    /// The data directory's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The store's counters.
    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    /// Stores `event` unless its delivery id is stored already, and returns once it is durable.
    /// A spilled payload's file must be synced already ([`Spool::finish`] does).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the write or fsync failed (nothing is stored; retry),
    /// [`StoreError::Closed`] if the store is shutting down.
    pub async fn append(&self, event: &Event) -> Result<AppendOutcome, StoreError> {
        let frame = record::encode_parts(event);
        let (reply, answer) = oneshot::channel();
        let command = Command::Append {
            key: index::key(&event.headers.delivery_id),
            frame,
            spilled: matches!(event.payload, Payload::Spilled(_)),
            reply,
        };
        self.tx
            .send(command)
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Starts a spool file for a body too large to hold in memory.
    ///
    /// # Errors
    /// The I/O error of creating the file.
    pub async fn spool(&self) -> Result<Spool, StoreError> {
        let dir = self.layout.payload_dir();
        Spool::create(&dir)
            .await
            .map_err(|e| StoreError::io(format!("creating a spool file in {}", dir.display()), e))
    }

    /// Seals the active log segment and waits until every sealed segment is compacted into
    /// Parquet.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] with the compactor's error if a segment cannot be compacted.
    pub async fn compact_now(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Seal(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Checks that the store can take writes: the writer runs and a probe file can be written
    /// and synced in the log folder (which catches a full or read-only disk).
    ///
    /// After a failed commit the probe writes a full megabyte, so a disk with a few bytes left
    /// is not reported healthy; once that succeeds the store counts as recovered.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] saying what is wrong.
    pub async fn check_writable(&self) -> Result<(), StoreError> {
        static PROBES: AtomicU64 = AtomicU64::new(0);
        if self.tx.is_closed() {
            return Err(StoreError::Closed);
        }
        let recovering = !self.healthy.load(Ordering::Relaxed);
        let size = if recovering { 1024 * 1024 } else { 2 };
        let n = PROBES.fetch_add(1, Ordering::Relaxed);
        let probe = self.layout.wal_dir().join(format!(".healthz-{n}"));
        let written = tokio::task::spawn_blocking(move || {
            let result =
                fs::write(&probe, vec![b'.'; size]).and_then(|()| File::open(&probe)?.sync_all());
            let _ = fs::remove_file(&probe);
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable {
            reason: e.to_string(),
        })?;
        match written {
            Ok(()) => {
                self.healthy.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(error) if recovering => Err(StoreError::Unavailable {
                reason: format!(
                    "the last write to the log failed, and a 1 MiB probe in {} fails too: {error}",
                    self.layout.wal_dir().display()
                ),
            }),
            Err(error) => Err(StoreError::Unavailable {
                reason: format!(
                    "cannot write to {}: {error}",
                    self.layout.wal_dir().display()
                ),
            }),
        }
    }

    /// Stops taking appends, makes every queued one durable, seals the log and compacts it, then
    /// returns. Appends after this fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        let _ = self.tx.send(Command::Shutdown).await;
        let threads = match self.threads.lock() {
            Ok(mut threads) => std::mem::take(&mut *threads),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

impl Drop for EventStore {
    fn drop(&mut self) {
        let _ = self.tx.try_send(Command::Shutdown);
    }
}

/// Appends a logged event to `builder`, reading a spilled payload from its file. `segment`
/// names the log segment in errors.
pub(crate) fn append_stored(
    builder: &mut crate::schema::EventBatchBuilder,
    event: &Event,
    segment: &Path,
) -> Result<(), StoreError> {
    let id = &event.headers.delivery_id;
    let bytes = event
        .payload
        .to_bytes()
        .map_err(|e| StoreError::io(format!("reading the payload of delivery {id}"), e))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| StoreError::Corrupt {
        path: segment.to_path_buf(),
        reason: format!("the payload of delivery {id} is not UTF-8: {e}"),
    })?;
    builder.append(event, text);
    Ok(())
}

/// Reads the log and the Parquet files to rebuild the index, truncating a torn log tail and
/// removing spool files no record points at.
fn recover(layout: &Layout) -> Result<Recovery, StoreError> {
    let wal = layout.wal_dir();
    let segments = layout
        .list_segments()
        .map_err(|e| StoreError::io(format!("listing {}", wal.display()), e))?;
    let mut index = HashSet::new();
    let mut referenced = HashSet::new();
    let mut events = 0;
    let mut max_segment = segments.last().copied().unwrap_or(0);
    for &id in &segments {
        let path = layout.segment_path(id);
        let data = fs::read(&path)
            .map(Bytes::from)
            .map_err(|e| StoreError::io(format!("reading {}", path.display()), e))?;
        let scan = record::scan(&data, &layout.payload_dir());
        if let Some(reason) = &scan.torn {
            tracing::warn!(segment = %path.display(), reason = %reason, dropped_bytes = data.len() as u64 - scan.valid_len, "Dropping the torn end of a log segment: a crash cut a write short. No acknowledged event is lost.");
            let file = File::options()
                .write(true)
                .open(&path)
                .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
            file.set_len(scan.valid_len)
                .and_then(|()| file.sync_all())
                .map_err(|e| StoreError::io(format!("truncating {}", path.display()), e))?;
        }
        for event in &scan.events {
            index.insert(index::key(&event.headers.delivery_id));
            if let Payload::Spilled(payload) = &event.payload {
                referenced.insert(payload.clone());
            }
        }
        events += scan.events.len();
    }
    bulk::remove_abandoned(layout);
    let table = layout.table_dir(layout::EVENTS_TABLE);
    for file in layout
        .list_parquet(layout::EVENTS_TABLE)
        .map_err(|e| StoreError::io(format!("listing {}", table.display()), e))?
    {
        max_segment = max_segment.max(file.segment);
        index.extend(index::keys_in_parquet(&file.path)?);
    }
    let payloads = layout.payload_dir();
    let entries = fs::read_dir(&payloads)
        .map_err(|e| StoreError::io(format!("listing {}", payloads.display()), e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if !referenced.contains(&path) {
            tracing::info!(path = %path.display(), "Removing a spool file of a delivery that was never acknowledged.");
            let _ = fs::remove_file(&path);
        }
    }
    Ok(Recovery {
        index,
        next_segment: max_segment + 1,
        segments,
        events,
    })
}
