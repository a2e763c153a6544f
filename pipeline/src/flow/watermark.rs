//! Watermarks: how far a run has *finished* its source, and where a follow-mode run resumes.
//!
//! Every source element gets a sequence number and its time (the source's time column). Outputs
//! derived from it carry a clone of its [`Ack`]; when the last clone is dropped after a sink
//! wrote it (or the run recorded its failure), the element is done. The watermark is the time of
//! the newest element such that it and every element before it are done, so a crash or a
//! shutdown never moves the watermark past work that was not finished.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampMicrosecondType;
use chrono::{DateTime, TimeZone, Utc};

use super::shard::Shard;
use super::table::{AppendError, TableWriter};
use crate::sql;
use crate::warehouse::{ParamValue, Params, Warehouse, WarehouseError};

#[derive(Debug, Default)]
struct Inner {
    next_seq: u64,
    /// Elements emitted and not yet done: sequence number → time.
    pending: BTreeMap<u64, Option<i64>>,
    /// Done elements still behind a pending one: sequence number → time.
    done_early: BTreeMap<u64, Option<i64>>,
    committed: Option<i64>,
    poisoned: bool,
}

/// Tracks which source elements are done, to compute the watermark.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    inner: Arc<Mutex<Inner>>,
}

impl Tracker {
    /// A tracker starting from `resume` (the persisted watermark, if any).
    pub fn new(resume: Option<DateTime<Utc>>) -> Self {
        let tracker = Self::default();
        if let Ok(mut inner) = tracker.inner.lock() {
            inner.committed = resume.map(|t| t.timestamp_micros());
        }
        tracker
    }

    /// Registers a new source element with its time and returns its acknowledgement.
    pub fn emit(&self, time: Option<DateTime<Utc>>) -> Ack {
        let time = time.map(|t| t.timestamp_micros());
        let seq = match self.inner.lock() {
            Ok(mut inner) => {
                let seq = inner.next_seq;
                inner.next_seq += 1;
                inner.pending.insert(seq, time);
                seq
            }
            Err(_) => 0,
        };
        Ack {
            _element: Arc::new(AckInner {
                seq,
                tracker: self.clone(),
            }),
        }
    }

    fn done(&self, seq: u64) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.poisoned {
            return;
        }
        let Some(time) = inner.pending.remove(&seq) else {
            return;
        };
        inner.done_early.insert(seq, time);
        let oldest_pending = inner.pending.keys().next().copied().unwrap_or(u64::MAX);
        while let Some(entry) = inner.done_early.first_entry() {
            if *entry.key() > oldest_pending {
                break;
            }
            let time = entry.remove();
            if let Some(time) = time {
                inner.committed = Some(inner.committed.map_or(time, |c| c.max(time)));
            }
        }
    }

    /// Stops the watermark where it is: called when a run fails, so that elements dropped by the
    /// failure do not count as done.
    pub fn poison(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.poisoned = true;
        }
    }

    /// The watermark: every element at or before it is done.
    pub fn watermark(&self) -> Option<DateTime<Utc>> {
        let inner = self.inner.lock().ok()?;
        inner
            .committed
            .and_then(|t| Utc.timestamp_micros(t).single())
    }
}

#[derive(Debug)]
struct AckInner {
    seq: u64,
    tracker: Tracker,
}

impl Drop for AckInner {
    fn drop(&mut self) {
        self.tracker.done(self.seq);
    }
}

/// The acknowledgement of one source element, carried by everything derived from it; the
/// element is done when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Ack {
    _element: Arc<AckInner>,
}

/// Where follow-mode runs keep their watermarks: the warehouse's `watermarks` table.
#[derive(Clone)]
pub struct WatermarkStore {
    warehouse: Arc<dyn Warehouse>,
}

impl WatermarkStore {
    /// Watermarks kept in `warehouse`.
    pub fn new(warehouse: Arc<dyn Warehouse>) -> Self {
        Self { warehouse }
    }

    /// The newest watermark written for `pipeline`'s `shard`, if any.
    ///
    /// # Errors
    /// The warehouse's error reading the table.
    pub async fn load(
        &self,
        pipeline: &str,
        shard: Shard,
    ) -> Result<Option<DateTime<Utc>>, WarehouseError> {
        self.warehouse.ensure_table(&sql::WATERMARKS).await?;
        let params = Params::new()
            .with("pipeline", ParamValue::String(pipeline.to_owned()))
            .with("shard", ParamValue::String(shard.to_string()));
        let result = self.warehouse.query(sql::LATEST_WATERMARK, &params).await?;
        for batch in &result.batches {
            let column = batch.column(0);
            if let Some(times) = column.as_primitive_opt::<TimestampMicrosecondType>()
                && !times.is_empty()
                && times.is_valid(0)
            {
                return Ok(Utc.timestamp_micros(times.value(0)).single());
            }
        }
        Ok(None)
    }

    /// Writes `watermark` as `pipeline`'s newest for `shard`.
    ///
    /// # Errors
    /// The warehouse's error appending the row.
    pub async fn save(
        &self,
        pipeline: &str,
        shard: Shard,
        watermark: DateTime<Utc>,
    ) -> Result<(), WarehouseError> {
        #[derive(serde::Serialize)]
        struct Row<'a> {
            pipeline: &'a str,
            shard: String,
            watermark: DateTime<Utc>,
            updated: DateTime<Utc>,
        }
        let row = Row {
            pipeline,
            shard: shard.to_string(),
            watermark,
            updated: Utc::now(),
        };
        let writer = TableWriter::new(Arc::clone(&self.warehouse), sql::WATERMARKS)?;
        writer.append(&[row]).await.map_err(|error| match error {
            AppendError::Rows(e) => WarehouseError::Remote {
                backend: self.warehouse.backend(),
                message: crate::error::error_chain(&e),
            },
            AppendError::Warehouse(e) => e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Option<DateTime<Utc>> {
        Utc.timestamp_opt(seconds, 0).single()
    }

    #[test]
    fn advances_only_over_finished_prefixes() {
        let tracker = Tracker::new(at(5));
        assert_eq!(tracker.watermark(), at(5));
        let a = tracker.emit(at(10));
        let b = tracker.emit(at(20));
        let b2 = b.clone();
        let c = tracker.emit(at(30));
        drop(c);
        assert_eq!(tracker.watermark(), at(5), "c is done but a and b are not");
        drop(a);
        assert_eq!(tracker.watermark(), at(10));
        drop(b);
        assert_eq!(
            tracker.watermark(),
            at(10),
            "a clone of b's ack is still held"
        );
        drop(b2);
        assert_eq!(tracker.watermark(), at(30));
    }

    #[test]
    fn a_poisoned_tracker_stays_put() {
        let tracker = Tracker::new(None);
        let a = tracker.emit(at(10));
        let b = tracker.emit(at(20));
        drop(a);
        tracker.poison();
        drop(b);
        assert_eq!(tracker.watermark(), at(10));
    }

    #[test]
    fn elements_without_time_do_not_move_it() {
        let tracker = Tracker::new(None);
        drop(tracker.emit(None));
        assert_eq!(tracker.watermark(), None);
        drop(tracker.emit(at(7)));
        assert_eq!(tracker.watermark(), at(7));
    }
}
