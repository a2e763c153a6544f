//! SQL sources on the local backend: sharding covers every row once, follow mode takes rows that
//! land after it started and resumes from its saved watermark.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::Deserialize;

use super::*;
use crate::warehouse::Warehouse;
use crate::warehouse::local::LocalWarehouse;
use gma_store::testing::EventBuilder;
use gma_store::{EventStore, StoreOptions};

/// The rows the test pipelines read.
const EVENTS_BY_TIME: &str = "SELECT delivery_id, received FROM `${dataset}events`";

/// A row as the pipelines read it; the time column moves the watermark without being a field.
#[derive(Debug, Clone, Deserialize)]
struct Row {
    delivery_id: String,
}

const SECOND: i64 = 1_000_000;
const START: i64 = 1_764_288_000 * SECOND;

/// The delivery `id` with an empty payload, received at `micros`.
fn at(id: &str, micros: i64) -> gma_store::event::Event {
    EventBuilder::new(id, "{}").received_micros(micros).build()
}

async fn store_with(dir: &std::path::Path, ids: std::ops::Range<u32>) -> Arc<EventStore> {
    let store = Arc::new(EventStore::open(dir, StoreOptions::default()).unwrap());
    append(&store, ids).await;
    store
}

async fn append(store: &EventStore, ids: std::ops::Range<u32>) {
    for i in ids {
        let id = format!("delivery-{i:04}");
        store
            .append(&at(&id, START + i64::from(i) * SECOND))
            .await
            .unwrap();
    }
}

/// Takes a row's delivery id.
struct DeliveryId;

#[async_trait::async_trait]
impl DoFn for DeliveryId {
    type In = Row;
    type Out = String;

    async fn process(&self, row: Row) -> Result<Vec<String>, BoxError> {
        Ok(vec![row.delivery_id])
    }
}

/// The delivery ids collected by a pipeline.
type Ids = Arc<std::sync::Mutex<Vec<String>>>;

/// A pipeline reading `sql` (oldest first, keyed by delivery id) into a list of delivery ids.
fn ids_pipeline(
    options: PipelineOptions,
    warehouse: Arc<dyn Warehouse>,
    sql: &str,
) -> (Pipeline, Ids) {
    let (sink, out) = CollectSink::new();
    let pipeline = Pipeline::new(options)
        .read(
            "events",
            SqlSource::<Row>::new(warehouse, sql)
                .key("delivery_id")
                .time("received"),
        )
        .apply(ParDo::new("id", DeliveryId))
        .write("collect", sink);
    (pipeline, out)
}

/// Runs a bounded pipeline over `sql` for `shard` and returns the delivery ids it read.
pub(crate) async fn read_shard(
    warehouse: Arc<dyn Warehouse>,
    sql: &str,
    shard: Shard,
) -> Vec<String> {
    let mut options = PipelineOptions::new("shards");
    options.shard = shard;
    let (pipeline, out) = ids_pipeline(options, warehouse, sql);
    let summary = pipeline.run().await.unwrap();
    assert_eq!(summary.failed, 0);
    let ids = out.lock().unwrap().clone();
    assert_eq!(summary.written(), ids.len() as u64);
    ids
}

/// Every row in exactly one of `count` shards, and each shard reads oldest first.
pub(crate) async fn assert_shards_cover_once(
    warehouse: Arc<dyn Warehouse>,
    sql: &str,
    all: &BTreeSet<String>,
    count: u32,
) {
    let mut seen = BTreeSet::new();
    for index in 0..count {
        let ids = read_shard(
            Arc::clone(&warehouse),
            sql,
            Shard::new(index, count).unwrap(),
        )
        .await;
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "shard {index}/{count} is not oldest first");
        if count > 1 {
            assert!(
                ids.len() < all.len(),
                "shard {index}/{count} read every row"
            );
        }
        for id in ids {
            assert!(
                seen.insert(id.clone()),
                "{id} was read by two shards of {count}"
            );
        }
    }
    assert_eq!(&seen, all, "the {count} shards together missed rows");
}

#[tokio::test]
async fn shards_split_the_rows_with_no_overlap_and_no_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 0..120).await;
    let warehouse: Arc<dyn Warehouse> = Arc::new(LocalWarehouse::open(dir.path()).await.unwrap());
    let all: BTreeSet<String> = (0..120).map(|i| format!("delivery-{i:04}")).collect();
    for count in [1, 2, 5] {
        assert_shards_cover_once(Arc::clone(&warehouse), EVENTS_BY_TIME, &all, count).await;
    }
    store.close().await;
}

#[tokio::test]
async fn a_sharded_run_needs_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse: Arc<dyn Warehouse> = Arc::new(LocalWarehouse::open(dir.path()).await.unwrap());
    let mut options = PipelineOptions::new("keyless");
    options.shard = Shard::new(0, 2).unwrap();
    let (sink, _) = CollectSink::new();
    let err = Pipeline::new(options)
        .read("events", SqlSource::<Row>::new(warehouse, EVENTS_BY_TIME))
        .write("collect", sink)
        .run()
        .await
        .unwrap_err();
    assert!(
        crate::error::error_chain(&err).contains("needs the source's key column"),
        "{err:?}"
    );
}

/// A follow-mode run in progress: its task, its shutdown, and the ids it collected so far.
type Following = (
    tokio::task::JoinHandle<Result<RunSummary, FlowError>>,
    tokio_util::sync::CancellationToken,
    Ids,
);

/// Starts a follow-mode run over the events.
fn follow(warehouse: Arc<dyn Warehouse>) -> Following {
    let mut options = PipelineOptions::new("follower");
    options.mode = Mode::Follow {
        poll: Duration::from_millis(50),
    };
    options.sink_delay = Duration::from_millis(10);
    options.watermarks = Some(WatermarkStore::new(Arc::clone(&warehouse)));
    let shutdown = options.shutdown.clone();
    let (pipeline, out) = ids_pipeline(options, warehouse, EVENTS_BY_TIME);
    (tokio::spawn(pipeline.run()), shutdown, out)
}

async fn wait_for_rows(out: &std::sync::Mutex<Vec<String>>, n: usize) {
    for _ in 0..400 {
        if out.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("expected {n} rows, got {:?}", out.lock().unwrap());
}

#[tokio::test]
async fn follow_mode_reads_new_rows_and_resumes_from_its_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 0..3).await;
    let warehouse: Arc<dyn Warehouse> = Arc::new(LocalWarehouse::open(dir.path()).await.unwrap());

    let (run, shutdown, out) = follow(Arc::clone(&warehouse));
    wait_for_rows(&out, 3).await;
    append(&store, 3..5).await;
    wait_for_rows(&out, 5).await;
    shutdown.cancel();
    let summary = run.await.unwrap().unwrap();
    assert!(summary.interrupted);
    let ids = out.lock().unwrap().clone();
    let expected: Vec<String> = (0..5).map(|i| format!("delivery-{i:04}")).collect();
    assert_eq!(ids, expected);
    let last = chrono::TimeZone::timestamp_micros(&Utc, START + 4 * SECOND).unwrap();
    assert_eq!(summary.watermark, Some(last));

    // A new run resumes after the saved watermark: only the rows that landed since.
    append(&store, 5..7).await;
    let (run, shutdown, out) = follow(Arc::clone(&warehouse));
    wait_for_rows(&out, 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    shutdown.cancel();
    let summary = run.await.unwrap().unwrap();
    let ids = out.lock().unwrap().clone();
    assert_eq!(ids, ["delivery-0005", "delivery-0006"]);
    assert_eq!(summary.read(), 2);
    store.close().await;
}

#[tokio::test]
async fn the_same_pipeline_reads_the_same_rows_on_bigquery() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 0..60).await;
    let local: Arc<dyn Warehouse> = Arc::new(LocalWarehouse::open(dir.path()).await.unwrap());
    let all: BTreeSet<String> = (0..60).map(|i| format!("delivery-{i:04}")).collect();
    let events: Vec<_> = (0..60u32)
        .map(|i| at(&format!("delivery-{i:04}"), START + i64::from(i) * SECOND))
        .collect();
    crate::testing::with_dataset(
        crate::testing::emulator_config("pipeline"),
        |bigquery| async move {
            let mut builder = gma_store::schema::EventBatchBuilder::new();
            for event in &events {
                builder.append(event, "{}");
            }
            bigquery
                .append(&crate::sql::EVENTS, builder.finish().unwrap())
                .await
                .unwrap();
            let bigquery: Arc<dyn Warehouse> = Arc::new(bigquery);
            for count in [1, 3] {
                for index in 0..count {
                    let shard = Shard::new(index, count).unwrap();
                    let on_local = read_shard(Arc::clone(&local), EVENTS_BY_TIME, shard).await;
                    let on_bigquery =
                        read_shard(Arc::clone(&bigquery), EVENTS_BY_TIME, shard).await;
                    assert_eq!(on_local, on_bigquery, "shard {shard} differs");
                }
                assert_shards_cover_once(Arc::clone(&bigquery), EVENTS_BY_TIME, &all, count).await;
            }

            // Watermarks keep on BigQuery too.
            let watermarks = WatermarkStore::new(Arc::clone(&bigquery));
            let shard = Shard::new(1, 3).unwrap();
            assert_eq!(watermarks.load("p", shard).await.unwrap(), None);
            let mark = chrono::TimeZone::timestamp_micros(&Utc, START + 123).unwrap();
            watermarks.save("p", shard, mark).await.unwrap();
            assert_eq!(watermarks.load("p", shard).await.unwrap(), Some(mark));
            assert_eq!(watermarks.load("p", Shard::ALL).await.unwrap(), None);
        },
    )
    .await;
    store.close().await;
}
