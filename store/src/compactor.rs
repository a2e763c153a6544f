//! The compactor: folds sealed log segments into Parquet files partitioned by day of
//! `received`, then trims the log.
//!
//! Order of durability: the Parquet file is written under a temporary name, fsynced, renamed and
//! its folder fsynced; only then is the segment deleted. A crash in between leaves both, and
//! compacting the segment again overwrites the same file names, so nothing is lost or doubled.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::DateTime;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use tokio::sync::oneshot;

use super::layout::{EVENTS_TABLE, Layout, fsync_dir};
use super::metrics::StoreMetrics;
use super::record::scan;
use super::{StoreError, append_stored, error_chain};
use crate::event::{Event, Payload};
use crate::schema::{EventBatchBuilder, events_schema};

/// zstd level of the Parquet files. On the 273-payload corpus levels 1 and 3 run at the same
/// speed (about 3 GB/s here) and 3 compresses 17% smaller.
const ZSTD_LEVEL: i32 = 3;
/// Payload bytes per Parquet row group, which bounds the compactor's memory.
const ROW_GROUP_PAYLOAD_BYTES: usize = 16 * 1024 * 1024;
/// How long compaction may go on after a shutdown request; what is left is compacted on the
/// next start, so that a backlog cannot hold up a restart.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(5);
/// Longest wait before a failed compaction is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A message to the compactor thread.
pub(crate) enum CompactorMsg {
    /// A sealed segment to compact.
    Segment(u64),
    /// Answer once every segment sent before it is compacted (or with the error that stops it).
    Barrier(oneshot::Sender<Result<(), StoreError>>),
    /// Compact what is queued (one try each, within [`SHUTDOWN_BUDGET`]) and stop.
    Shutdown,
}

/// How much lower than the request path the compactor runs (a `nice` increment).
const NICENESS: libc::c_int = 10;

/// Serves compaction requests until [`CompactorMsg::Shutdown`].
///
/// The thread lowers its own scheduling priority: compaction can always wait, while a delivery
/// waiting for its fsync holds GitHub's request open. Under a burst the log grows and the
/// compactor catches up when the burst ends.
pub(crate) fn run(layout: Layout, rx: Receiver<CompactorMsg>, metrics: Arc<StoreMetrics>) {
    lower_priority();
    let mut queue: VecDeque<u64> = VecDeque::new();
    let mut backoff = Duration::from_secs(1);
    let mut last_error: Option<StoreError> = None;
    loop {
        let wait = if queue.is_empty() {
            Duration::from_secs(3600)
        } else {
            backoff
        };
        match rx.recv_timeout(wait) {
            Ok(CompactorMsg::Segment(id)) => queue.push_back(id),
            Ok(CompactorMsg::Barrier(reply)) => {
                drain(&layout, &mut queue, &metrics, &mut last_error, None);
                let result = match (&last_error, queue.is_empty()) {
                    (Some(error), false) => Err(StoreError::Unavailable {
                        reason: format!("compaction is failing: {}", error_chain(error)),
                    }),
                    _ => Ok(()),
                };
                let _ = reply.send(result);
                continue;
            }
            Ok(CompactorMsg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                let deadline = Instant::now() + SHUTDOWN_BUDGET;
                drain(
                    &layout,
                    &mut queue,
                    &metrics,
                    &mut last_error,
                    Some(deadline),
                );
                if !queue.is_empty() {
                    tracing::warn!(
                        segments = queue.len(),
                        "Stopping with log segments not yet compacted; they are compacted on the next start."
                    );
                }
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        drain(&layout, &mut queue, &metrics, &mut last_error, None);
        backoff = if last_error.is_some() && !queue.is_empty() {
            (backoff * 2).min(MAX_BACKOFF)
        } else {
            Duration::from_secs(1)
        };
    }
}

fn lower_priority() {
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours. On Linux,
    // PRIO_PROCESS with a thread id sets that thread's priority only.
    let result = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, NICENESS)
    };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "Could not lower the compactor's priority.");
    }
}

/// Compacts queued segments in order, stopping at the first failure or at `deadline`.
fn drain(
    layout: &Layout,
    queue: &mut VecDeque<u64>,
    metrics: &StoreMetrics,
    last_error: &mut Option<StoreError>,
    deadline: Option<Instant>,
) {
    while let Some(&id) = queue.front() {
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return;
        }
        match compact_segment(layout, id) {
            Ok(events) => {
                metrics.segments_compacted.inc();
                metrics.events_compacted.inc_by(events as u64);
                queue.pop_front();
                *last_error = None;
            }
            Err(error) => {
                metrics.compaction_failures.inc();
                tracing::error!(segment = id, error = %error_chain(&error), "Could not compact a log segment; the log keeps it and compaction is tried again.");
                *last_error = Some(error);
                return;
            }
        }
    }
}

/// The UTC day (`YYYY-MM-DD`) of a timestamp in microseconds.
pub fn day_of(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// Writes segment `id`'s events to Parquet, then deletes the segment and the payload files it
/// pointed at. Returns how many events it wrote.
pub(crate) fn compact_segment(layout: &Layout, id: u64) -> Result<usize, StoreError> {
    let path = layout.segment_path(id);
    let data = match fs::read(&path) {
        Ok(data) => Bytes::from(data),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(StoreError::io(format!("reading {}", path.display()), error)),
    };
    let scan = scan(&data, &layout.payload_dir());
    if let Some(reason) = &scan.torn {
        tracing::warn!(segment = id, reason = %reason, "A sealed log segment ends in a torn record; compacting the intact records before it.");
    }
    let mut days: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for event in &scan.events {
        days.entry(day_of(event.received_micros))
            .or_default()
            .push(event);
    }
    for (day, events) in &days {
        write_day(layout, id, day, events)?;
    }
    fs::remove_file(&path)
        .map_err(|e| StoreError::io(format!("removing {}", path.display()), e))?;
    fsync_dir(&layout.wal_dir())
        .map_err(|e| StoreError::io(format!("syncing {}", layout.wal_dir().display()), e))?;
    for event in &scan.events {
        if let Payload::Spilled(payload) = &event.payload
            && let Err(error) = fs::remove_file(payload)
        {
            tracing::warn!(path = %payload.display(), error = %error_chain(&error), "Could not remove a compacted payload file.");
        }
    }
    Ok(scan.events.len())
}

/// Parquet settings of the events table: zstd, and no dictionary or min/max statistics for the
/// columns whose values are unique and long (a dictionary of payloads only costs time; the
/// statistics that prune reads are `received`'s and the lifted columns').
pub(crate) fn writer_properties() -> Result<WriterProperties, parquet::errors::ParquetError> {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?));
    for column in ["payload", "signature", "delivery_id", "payload_sha256"] {
        let column = ColumnPath::from(column);
        builder = builder
            .set_column_dictionary_enabled(column.clone(), false)
            .set_column_statistics_enabled(column, EnabledStatistics::None);
    }
    Ok(builder.build())
}

fn write_day(
    layout: &Layout,
    segment: u64,
    day: &str,
    events: &[&Event],
) -> Result<(), StoreError> {
    let dir = layout.day_dir(EVENTS_TABLE, day);
    let final_path = layout.parquet_path(EVENTS_TABLE, day, segment);
    let tmp_path = final_path.with_extension("parquet.tmp");
    let context = || format!("writing {}", final_path.display());
    let io = |e| StoreError::io(context(), e);
    let pq = |e| StoreError::parquet(context(), e);
    if !dir.exists() {
        fs::create_dir_all(&dir).map_err(io)?;
        fsync_dir(&layout.table_dir(EVENTS_TABLE)).map_err(io)?;
    }
    let properties = writer_properties().map_err(pq)?;
    let file = File::create(&tmp_path).map_err(io)?;
    let mut writer = ArrowWriter::try_new(file, events_schema(), Some(properties)).map_err(pq)?;
    let mut builder = EventBatchBuilder::new();
    for event in events {
        append_stored(&mut builder, event, &layout.segment_path(segment))?;
        if builder.payload_bytes() >= ROW_GROUP_PAYLOAD_BYTES {
            let batch = builder
                .finish()
                .map_err(|e| StoreError::arrow(context(), e))?;
            writer.write(&batch).map_err(pq)?;
            writer.flush().map_err(pq)?;
        }
    }
    if !builder.is_empty() {
        let batch = builder
            .finish()
            .map_err(|e| StoreError::arrow(context(), e))?;
        writer.write(&batch).map_err(pq)?;
    }
    let file = writer.into_inner().map_err(pq)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&tmp_path, &final_path).map_err(io)?;
    fsync_dir(&dir).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_764_287_999_999_999), "2025-11-27");
        assert_eq!(day_of(1_764_288_000_000_000), "2025-11-28");
    }
}
