//! Helpers for the tests of this crate and of the crates built on it (feature `test-util`):
//! events to store, built in one line, and what a data directory holds, read without a query
//! engine.

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Schema};
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::event::{DeliveryHeaders, Event, Lifted, Payload, lift};
use crate::layout::Layout;
use crate::snapshot::read_snapshot;

/// When a built event was received unless told otherwise: 2025-11-28T00:00:00Z.
pub const RECEIVED_MICROS: i64 = 1_764_288_000_000_000;

/// Builds an [`Event`]: by default a `push` delivery signed `sha256=00`, without hook headers,
/// received at [`RECEIVED_MICROS`], its columns lifted from the payload (none when the payload
/// is not a JSON object).
#[derive(Debug, Clone)]
pub struct EventBuilder {
    event: Event,
}

impl EventBuilder {
    /// The delivery `delivery_id` with `payload` held in memory.
    pub fn new(delivery_id: &str, payload: impl AsRef<[u8]>) -> Self {
        let payload = Bytes::copy_from_slice(payload.as_ref());
        Self {
            event: Event {
                headers: DeliveryHeaders {
                    delivery_id: delivery_id.to_owned(),
                    event: "push".to_owned(),
                    signature: "sha256=00".to_owned(),
                    hook_id: None,
                    target_type: None,
                    target_id: None,
                },
                received_micros: RECEIVED_MICROS,
                lifted: lift(&payload).unwrap_or_default(),
                payload_size: payload.len() as u64,
                payload: Payload::Inline(payload),
            },
        }
    }

    /// The event type (`X-GitHub-Event`).
    pub fn event(mut self, event: &str) -> Self {
        event.clone_into(&mut self.event.headers.event);
        self
    }

    /// The recorded `X-Hub-Signature-256`.
    pub fn signature(mut self, signature: &str) -> Self {
        signature.clone_into(&mut self.event.headers.signature);
        self
    }

    /// `X-GitHub-Hook-ID`.
    pub fn hook_id(mut self, hook_id: i64) -> Self {
        self.event.headers.hook_id = Some(hook_id);
        self
    }

    /// `X-GitHub-Hook-Installation-Target-Type`.
    pub fn target_type(mut self, target_type: &str) -> Self {
        self.event.headers.target_type = Some(target_type.to_owned());
        self
    }

    /// `X-GitHub-Hook-Installation-Target-ID`.
    pub fn target_id(mut self, target_id: i64) -> Self {
        self.event.headers.target_id = Some(target_id);
        self
    }

    /// When it was received, in microseconds since the Unix epoch.
    pub fn received_micros(mut self, micros: i64) -> Self {
        self.event.received_micros = micros;
        self
    }

    /// Received now.
    pub fn received_now(self) -> Self {
        self.received_micros(chrono::Utc::now().timestamp_micros())
    }

    /// Lifted columns other than the payload's own.
    pub fn lifted(mut self, lifted: Lifted) -> Self {
        self.event.lifted = lifted;
        self
    }

    /// The event.
    pub fn build(self) -> Event {
        self.event
    }
}

/// The default event of delivery `delivery_id` with `payload` (see [`EventBuilder`]).
pub fn event(delivery_id: &str, payload: impl AsRef<[u8]>) -> Event {
    EventBuilder::new(delivery_id, payload).build()
}

/// Every row of the events table in the data directory `dir`, as a reader sees it: the
/// snapshot's log records, then its Parquet files.
///
/// # Panics
/// When the directory cannot be read.
pub fn stored_batches(dir: &Path) -> Vec<RecordBatch> {
    let snapshot = read_snapshot(&Layout::new(dir))
        .unwrap_or_else(|e| panic!("reading the events in {}: {e}", dir.display()));
    let mut batches = snapshot.tail;
    for path in &snapshot.parquet_files {
        let file =
            std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|builder| builder.build())
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        batches.extend(
            reader.map(|batch| batch.unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))),
        );
    }
    batches
}

/// [`stored_batches`] as JSON objects, one per row; NULL columns are left out, timestamps are
/// RFC 3339 with a `+00:00` offset.
///
/// # Panics
/// When the directory cannot be read.
pub fn stored_rows(dir: &Path) -> Vec<Map<String, Value>> {
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    for batch in &stored_batches(dir) {
        writer
            .write(&with_offset_timestamps(batch))
            .expect("stored rows encode as JSON");
    }
    writer.finish().expect("stored rows encode as JSON");
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Vec::new();
    }
    serde_json::from_slice(&bytes).expect("arrow writes a JSON array of objects")
}

/// `batch` with its UTC timestamps labelled `+00:00`, which the JSON writer formats without a
/// time-zone database.
fn with_offset_timestamps(batch: &RecordBatch) -> RecordBatch {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        match field.data_type() {
            DataType::Timestamp(unit, Some(_)) => {
                let offset = DataType::Timestamp(*unit, Some("+00:00".into()));
                columns.push(cast(column, &offset).expect("a time zone is relabelled"));
                fields.push(field.as_ref().clone().with_data_type(offset));
            }
            _ => {
                columns.push(Arc::clone(column));
                fields.push(field.as_ref().clone());
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .expect("the columns match their fields")
}
