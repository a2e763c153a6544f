//! Landing webhook events in a BigQuery table, one streaming insert per delivery.
//!
//! - **Durable when acknowledged:** [`EventSink::land`] returns only after BigQuery accepted the
//!   row (insertAll answered without `insertErrors`); the server answers 2xx only then.
//! - **Redeliveries:** the row's `insertId` is the delivery id, so BigQuery drops a redelivery
//!   that arrives within its deduplication window (best effort, about a minute), and this
//!   process also remembers the ids it landed in the last [`RECENT_WINDOW`] and answers those
//!   as duplicates without inserting. Redeliveries later than that, or to another instance, can
//!   land twice: views deduplicate on `delivery_id`, as GMA's do. (The emulator ignores
//!   `insertId`, so only the second guard shows there.)
//! - **Large payloads:** an insertAll request holds at most 10 MB, so a payload over
//!   [`MAX_INLINE_PAYLOAD`] (or one whose JSON-escaped text would pass [`MAX_ROW_PAYLOAD_JSON`])
//!   is written to the blob store first, under `payloads/<sha256>.json`, streamed from its spool
//!   file; the row keeps `payload_uri` and a NULL `payload`. Without a blob store such a payload
//!   is refused with 503 and a message saying to configure one.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::blob::{BlobKey, BlobStore, stream_from_reader};
use crate::error::error_chain;
use crate::warehouse::bigquery::{BigQueryConfig, BigQueryWarehouse, InsertIds};
use crate::warehouse::{TableDef, Warehouse, WarehouseError};
use gma_store::EventSink;
use gma_store::event::{Event, Payload};
use gma_store::schema::EventBatchBuilder;
use gma_store::{AppendOutcome, Spool, SpoolGuard, StoreError};

/// Payloads larger than this (8 MiB) do not go into the row.
pub const MAX_INLINE_PAYLOAD: u64 = 8 * 1024 * 1024;
/// The most bytes a payload may take as a JSON string inside an insertAll request (quotes and
/// control characters grow when escaped), leaving room for the other columns under 10 MB.
pub const MAX_ROW_PAYLOAD_JSON: usize = 9_000_000;
/// Chunk size of a payload streamed to the blob store.
const BLOB_CHUNK: usize = 1024 * 1024;
/// How long landed delivery ids are remembered to answer quick redeliveries as duplicates.
pub const RECENT_WINDOW: Duration = Duration::from_secs(600);
/// Most delivery ids remembered at once.
const RECENT_CAPACITY: usize = 200_000;

/// Where a [`BigQueryEventSink`] lands events.
#[derive(Debug, Clone)]
pub struct BigQueryEventSinkConfig {
    /// The project, dataset, endpoint and credentials.
    pub warehouse: BigQueryConfig,
    /// The events table's name in the dataset (GMA's `EVENTS_TABLE_ID`; usually `events`).
    pub events_table: String,
    /// A local folder for request bodies too large to hold in memory while they arrive.
    pub spool_dir: PathBuf,
    /// Where payloads too large for a row go; `None` refuses them.
    pub blobs: Option<Arc<dyn BlobStore>>,
}

/// Lands events in a BigQuery table through streaming inserts.
#[derive(Debug)]
pub struct BigQueryEventSink {
    warehouse: BigQueryWarehouse,
    table: TableDef,
    spool_dir: PathBuf,
    blobs: Option<Arc<dyn BlobStore>>,
    recent: Mutex<RecentDeliveries>,
}

/// What the row's payload columns hold.
enum RowPayload {
    /// The payload's text, in the row.
    Inline(String),
    /// The payload is a blob.
    Offloaded {
        /// Hex SHA-256 of its bytes.
        sha256: String,
        /// The blob's URI.
        uri: String,
    },
}

/// The store cannot take the event now, for `reason`.
fn unavailable(reason: impl Into<String>) -> StoreError {
    StoreError::Unavailable {
        reason: reason.into(),
    }
}

/// The store cannot take the event now because `error` happened.
fn unavailable_by(error: impl std::error::Error) -> StoreError {
    unavailable(error_chain(&error))
}

impl BigQueryEventSink {
    /// Connects, and creates the dataset and the events table (from `sql/events.sql`) unless
    /// they exist.
    ///
    /// # Errors
    /// [`WarehouseError`] when the table name is not a plain name, the credentials cannot be
    /// loaded, or BigQuery refuses.
    pub async fn connect(config: BigQueryEventSinkConfig) -> Result<Self, WarehouseError> {
        let table = crate::sql::EVENTS.renamed(&config.events_table)?;
        let warehouse = BigQueryWarehouse::connect(config.warehouse)?;
        warehouse.ensure_table(&table).await?;
        std::fs::create_dir_all(&config.spool_dir).map_err(|e| WarehouseError::Remote {
            backend: "bigquery",
            message: format!(
                "creating the spool folder {}: {e}",
                config.spool_dir.display()
            ),
        })?;
        Ok(Self {
            warehouse,
            table,
            spool_dir: config.spool_dir,
            blobs: config.blobs,
            recent: Mutex::new(RecentDeliveries::default()),
        })
    }

    /// The warehouse the events land in.
    pub fn warehouse(&self) -> &BigQueryWarehouse {
        &self.warehouse
    }

    /// The events table.
    pub fn table(&self) -> &TableDef {
        &self.table
    }

    /// Writes the payload to the blob store (streamed from its spool file when spilled) and
    /// returns what the row points at.
    async fn offload(&self, event: &Event) -> Result<RowPayload, StoreError> {
        let Some(blobs) = &self.blobs else {
            return Err(unavailable(format!(
                "the payload of {} bytes is too large for a BigQuery row and no blob store is \
                 configured (set --blob-store / GMA_BLOB_STORE)",
                event.payload_size
            )));
        };
        let failed = |e: &dyn std::error::Error| {
            unavailable(format!(
                "storing the payload in the blob store: {}",
                error_chain(e)
            ))
        };
        let (sha256, stored) = match &event.payload {
            Payload::Inline(bytes) => {
                let sha256 = hex::encode(Sha256::digest(bytes));
                let key = payload_key(&sha256).map_err(|e| failed(&e))?;
                let stored = blobs.put(&key, bytes.clone(), "application/json").await;
                (sha256, stored.map(|_| key))
            }
            Payload::Spilled(path) => {
                let sha256 = {
                    let path = path.clone();
                    tokio::task::spawn_blocking(move || file_sha256(&path))
                        .await
                        .map_err(|e| failed(&e))?
                        .map_err(|e| failed(&e))?
                };
                let key = payload_key(&sha256).map_err(|e| failed(&e))?;
                let file = tokio::fs::File::open(path).await.map_err(|e| failed(&e))?;
                let stream = stream_from_reader(file, BLOB_CHUNK);
                let stored = blobs.put_stream(&key, stream, "application/json").await;
                (sha256, stored.map(|_| key))
            }
        };
        let key = stored.map_err(|e| failed(&e))?;
        Ok(RowPayload::Offloaded {
            uri: blobs.uri(&key),
            sha256,
        })
    }

    /// Lands many events at once, as a backfill does: skips those whose delivery id the table
    /// holds already (one query for the batch), then inserts the rest (insertId = delivery id),
    /// payloads too large for a row going to the blob store. Each event comes with its payload's
    /// text. Returns how many were new; the rest were duplicates.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when BigQuery or the blob store fails; nothing is known to be
    /// stored then, and landing the same events again is safe.
    pub async fn land_many(&self, events: Vec<(Event, String)>) -> Result<u64, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let ids: Vec<String> = events
            .iter()
            .map(|(event, _)| event.headers.delivery_id.clone())
            .collect();
        let sql = crate::sql::name_tables(
            crate::sql::STORED_DELIVERY_IDS,
            &[("events_table", self.table.name)],
        );
        let params = crate::warehouse::Params::new()
            .with("ids", crate::warehouse::ParamValue::StringArray(ids));
        let stored = self
            .warehouse
            .query(&sql, &params)
            .await
            .map_err(unavailable_by)?;
        let mut known = std::collections::HashSet::new();
        for batch in &stored.batches {
            let column = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)
                .map_err(unavailable_by)?;
            let column = arrow::array::AsArray::as_string::<i32>(&column);
            known.extend(column.iter().flatten().map(str::to_owned));
        }
        let mut builder = EventBatchBuilder::new();
        let mut landed = 0;
        for (mut event, text) in events {
            if !known.insert(event.headers.delivery_id.clone()) {
                continue;
            }
            if event.payload_size > MAX_INLINE_PAYLOAD
                || json_string_len(text.as_bytes()) > MAX_ROW_PAYLOAD_JSON
            {
                event.payload = Payload::Inline(bytes::Bytes::from(text));
                match self.offload(&event).await? {
                    RowPayload::Offloaded { sha256, uri } => {
                        builder.append_offloaded(&event, &sha256, &uri);
                    }
                    RowPayload::Inline(text) => builder.append(&event, &text),
                }
            } else {
                builder.append(&event, &text);
            }
            landed += 1;
        }
        let batch = builder.finish().map_err(unavailable_by)?;
        self.warehouse
            .insert_rows(&self.table, &batch, InsertIds::Column("delivery_id"))
            .await
            .map_err(unavailable_by)?;
        Ok(landed)
    }

    fn seen_recently(&self, delivery_id: &str) -> bool {
        self.recent
            .lock()
            .map(|mut recent| recent.contains(delivery_id, Instant::now()))
            .unwrap_or(false)
    }

    fn remember(&self, delivery_id: &str) {
        if let Ok(mut recent) = self.recent.lock() {
            recent.insert(delivery_id, Instant::now());
        }
    }
}

#[async_trait]
impl EventSink for BigQueryEventSink {
    fn kind(&self) -> &'static str {
        "bigquery"
    }

    async fn land(
        &self,
        event: &Event,
        spool: Option<SpoolGuard>,
    ) -> Result<AppendOutcome, StoreError> {
        let delivery_id = &event.headers.delivery_id;
        if self.seen_recently(delivery_id) {
            return Ok(AppendOutcome::Duplicate);
        }
        let payload = if event.payload_size > MAX_INLINE_PAYLOAD {
            self.offload(event).await?
        } else {
            let bytes = match &event.payload {
                Payload::Inline(bytes) => bytes.to_vec(),
                Payload::Spilled(path) => tokio::fs::read(path).await.map_err(|e| {
                    unavailable(format!(
                        "reading the spooled payload {}: {e}",
                        path.display()
                    ))
                })?,
            };
            if json_string_len(&bytes) > MAX_ROW_PAYLOAD_JSON {
                self.offload(event).await?
            } else {
                RowPayload::Inline(
                    String::from_utf8(bytes)
                        .map_err(|_| unavailable("the payload is not UTF-8, which JSON must be"))?,
                )
            }
        };
        let mut builder = EventBatchBuilder::new();
        match &payload {
            RowPayload::Inline(text) => builder.append(event, text),
            RowPayload::Offloaded { sha256, uri } => builder.append_offloaded(event, sha256, uri),
        }
        let batch = builder.finish().map_err(unavailable_by)?;
        self.warehouse
            .insert_rows(&self.table, &batch, InsertIds::Column("delivery_id"))
            .await
            .map_err(unavailable_by)?;
        // The spool file (if any) is no longer needed: the row or the blob holds the payload.
        drop(spool);
        self.remember(delivery_id);
        Ok(AppendOutcome::Landed)
    }

    async fn spool(&self) -> Result<Spool, StoreError> {
        Spool::create(&self.spool_dir).await.map_err(|e| {
            StoreError::io(
                format!("creating a spool file in {}", self.spool_dir.display()),
                e,
            )
        })
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        self.warehouse.healthcheck().await.map_err(unavailable_by)?;
        if !self.spool_dir.is_dir() {
            return Err(unavailable(format!(
                "the spool folder {} is gone",
                self.spool_dir.display()
            )));
        }
        Ok(())
    }
}

/// The blob key of a payload: content-addressed, so a redelivery rewrites the same object.
fn payload_key(sha256: &str) -> Result<BlobKey, crate::blob::BlobError> {
    BlobKey::new(format!("payloads/{sha256}.json"))
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The length of `bytes` as the body of a JSON string: quotes and backslashes take two bytes,
/// other control characters six.
fn json_string_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// Delivery ids landed recently, oldest first.
#[derive(Debug, Default)]
struct RecentDeliveries {
    landed: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl RecentDeliveries {
    fn prune(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            let expired = now.duration_since(*at) > RECENT_WINDOW;
            if !expired && self.order.len() <= RECENT_CAPACITY {
                break;
            }
            if let Some((at, id)) = self.order.pop_front()
                && self.landed.get(&id) == Some(&at)
            {
                self.landed.remove(&id);
            }
        }
    }

    fn contains(&mut self, id: &str, now: Instant) -> bool {
        self.prune(now);
        self.landed.contains_key(id)
    }

    fn insert(&mut self, id: &str, now: Instant) {
        self.landed.insert(id.to_owned(), now);
        self.order.push_back((now, id.to_owned()));
        self.prune(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_escaped_json() {
        assert_eq!(json_string_len(br#"{"a":"b\n"}"#), 16);
        assert_eq!(json_string_len(&[0x01]), 6);
    }

    #[test]
    fn remembers_recent_ids_for_the_window_only() {
        let mut recent = RecentDeliveries::default();
        let start = Instant::now();
        recent.insert("a", start);
        assert!(recent.contains("a", start + Duration::from_secs(1)));
        assert!(!recent.contains("b", start));
        assert!(!recent.contains("a", start + RECENT_WINDOW + Duration::from_secs(1)));
        assert!(recent.landed.is_empty() && recent.order.is_empty());
    }
}
