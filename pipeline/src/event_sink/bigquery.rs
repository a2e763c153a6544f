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
//! - **Large payloads:** a BigQuery row holds at most 10 MB, so a payload over
//!   [`MAX_INLINE_PAYLOAD`] cannot be inserted; it is refused with 503 and a message saying so.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::EventSink;
use crate::event::{Event, Payload};
use crate::schema::EventBatchBuilder;
use crate::store::{AppendOutcome, Spool, SpoolGuard, StoreError};
use crate::warehouse::bigquery::{BigQueryConfig, BigQueryWarehouse, InsertIds};
use crate::warehouse::{TableDef, Warehouse, WarehouseError};

/// Payloads larger than this (8 MiB) do not go into the row.
pub const MAX_INLINE_PAYLOAD: u64 = 8 * 1024 * 1024;
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
}

/// Lands events in a BigQuery table through streaming inserts.
#[derive(Debug)]
pub struct BigQueryEventSink {
    warehouse: BigQueryWarehouse,
    table: TableDef,
    spool_dir: PathBuf,
    recent: Mutex<RecentDeliveries>,
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable {
        reason: error.to_string(),
    }
}

impl BigQueryEventSink {
    /// Connects, and creates the dataset and the events table (from `sql/events.sql`) unless
    /// they exist.
    ///
    /// # Errors
    /// [`WarehouseError`] when the table name is not a plain name, the credentials cannot be
    /// loaded, or BigQuery refuses.
    pub async fn connect(config: BigQueryEventSinkConfig) -> Result<Self, WarehouseError> {
        let name = config.events_table.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(WarehouseError::Ddl {
                table: name.to_owned(),
                reason: "an events table name must be letters, digits and underscores".into(),
            });
        }
        // The table name is configuration, set once per process; TableDef holds it as 'static.
        let table = TableDef {
            name: Box::leak(name.to_owned().into_boxed_str()),
            ddl: crate::sql::EVENTS_DDL,
        };
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
        if event.payload_size > MAX_INLINE_PAYLOAD {
            return Err(unavailable(format!(
                "the payload of {} bytes is larger than the {MAX_INLINE_PAYLOAD} bytes gma keeps \
                 in a BigQuery row; nothing was stored",
                event.payload_size
            )));
        }
        let bytes = match &event.payload {
            Payload::Inline(bytes) => bytes.to_vec(),
            Payload::Spilled(path) => tokio::fs::read(path).await.map_err(|e| {
                unavailable(format!(
                    "reading the spooled payload {}: {e}",
                    path.display()
                ))
            })?,
        };
        // The spool file (if any) is no longer needed once read: the row holds the payload.
        drop(spool);
        let text = String::from_utf8(bytes)
            .map_err(|_| unavailable("the payload is not UTF-8, which JSON must be"))?;
        let mut builder = EventBatchBuilder::new();
        builder.append(event, &text);
        let batch = builder.finish().map_err(unavailable)?;
        self.warehouse
            .insert_rows(&self.table, &batch, InsertIds::Column("delivery_id"))
            .await
            .map_err(unavailable)?;
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
        self.warehouse.healthcheck().await.map_err(unavailable)?;
        if !self.spool_dir.is_dir() {
            return Err(unavailable(format!(
                "the spool folder {} is gone",
                self.spool_dir.display()
            )));
        }
        Ok(())
    }
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
