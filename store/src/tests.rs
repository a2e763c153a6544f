//! The store against its promises: acknowledged means durable, torn tails are dropped, ids are
//! stored once across restarts and compaction, readers see each event exactly once.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::testing::{event, stored_batches};

async fn append(store: &EventStore, id: &str) -> AppendOutcome {
    store.append(&event(id, "{}")).await.unwrap()
}

/// Rows and distinct delivery ids a reader sees: the snapshot's Parquet files and log tail, read
/// as the local warehouse reads them.
async fn count(dir: &Path) -> (i64, i64) {
    let mut ids = std::collections::HashSet::new();
    let mut rows = 0;
    for batch in &stored_batches(dir) {
        let column = batch.column_by_name("delivery_id").unwrap();
        let column = arrow::array::AsArray::as_string::<i32>(column);
        rows += batch.num_rows() as i64;
        ids.extend(column.iter().flatten().map(str::to_owned));
    }
    (rows, ids.len() as i64)
}

#[tokio::test]
async fn a_torn_tail_is_dropped_and_the_whole_records_kept() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(dir.path());
    layout.create_dirs().unwrap();
    let mut segment = record::MAGIC.to_vec();
    record::encode_frame(&event("a", "{}"), &mut segment);
    record::encode_frame(&event("b", "{\"x\":1}"), &mut segment);
    let mut torn = Vec::new();
    record::encode_frame(&event("c", "{}"), &mut torn);
    segment.extend_from_slice(&torn[..torn.len() - 4]);
    std::fs::write(layout.segment_path(7), &segment).unwrap();
    std::fs::write(layout.payload_dir().join("spool-orphan.json"), b"{}").unwrap();

    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(
        std::fs::read_dir(layout.payload_dir()).unwrap().count(),
        0,
        "an orphaned spool file is removed on open"
    );
    assert_eq!(append(&store, "b").await, AppendOutcome::Duplicate);
    assert_eq!(append(&store, "c").await, AppendOutcome::Landed);
    store.compact_now().await.unwrap();
    assert_eq!(count(dir.path()).await, (3, 3));
    let files = layout.list_parquet(layout::EVENTS_TABLE).unwrap();
    assert_eq!(
        files.iter().map(|f| f.segment).collect::<Vec<_>>(),
        [7, 8],
        "segment 7 compacted on open, new writes start at segment 8"
    );
}

#[tokio::test]
async fn ids_stay_deduplicated_across_restarts_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(append(&store, "x").await, AppendOutcome::Landed);
        store.close().await;
    }
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(append(&store, "x").await, AppendOutcome::Duplicate);
    assert_eq!(append(&store, "y").await, AppendOutcome::Landed);
    assert_eq!(count(dir.path()).await, (2, 2));
}

#[tokio::test]
async fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    let error = EventStore::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(error, StoreError::Locked(_)), "{error}");
    assert!(error.to_string().contains("--data-dir"));
}

#[tokio::test]
async fn closed_stores_refuse_appends() {
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
    store.close().await;
    assert!(matches!(
        store.append(&event("z", "{}")).await,
        Err(StoreError::Closed)
    ));
    assert!(store.check_writable().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_every_acknowledged_event_once_while_segments_compact() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        segment_max_bytes: 4096,
        seal_after: Duration::from_millis(10),
        ..StoreOptions::default()
    };
    let store = Arc::new(EventStore::open(dir.path(), options).unwrap());
    let acked = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let writer = {
        let store = Arc::clone(&store);
        let acked = Arc::clone(&acked);
        tokio::spawn(async move {
            for i in 0..1500 {
                let payload = format!("{{\"i\":{i},\"pad\":\"{}\"}}", "p".repeat(i % 200));
                store
                    .append(&event(&format!("e{i}"), &payload))
                    .await
                    .unwrap();
                acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    let mut snapshots = 0;
    while !writer.is_finished() {
        let before = acked.load(std::sync::atomic::Ordering::SeqCst);
        let (rows, distinct) = count(dir.path()).await;
        assert_eq!(rows, distinct, "a reader saw an event twice");
        assert!(
            rows >= before,
            "a reader missed acknowledged events: {rows} < {before}"
        );
        snapshots += 1;
    }
    writer.await.unwrap();
    store.compact_now().await.unwrap();
    assert_eq!(count(dir.path()).await, (1500, 1500));
    assert!(store.metrics().segments_compacted.get() > 5);
    assert!(snapshots > 0);
}

/// A small deterministic generator, so a failing sequence replays exactly.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[tokio::test]
async fn random_operation_sequences_match_a_set_model() {
    for seed in 1..=4u64 {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            segment_max_bytes: 2048,
            ..StoreOptions::default()
        };
        let mut rng = Lcg(seed);
        let mut model: Vec<String> = Vec::new();
        let mut store = EventStore::open(dir.path(), options.clone()).unwrap();
        for step in 0..120 {
            match rng.below(10) {
                0..=5 => {
                    let id = format!("s{seed}-{step}");
                    let payload = format!(
                        "{{\"step\":{step},\"pad\":\"{}\"}}",
                        "x".repeat(rng.below(300) as usize)
                    );
                    assert_eq!(
                        store.append(&event(&id, &payload)).await.unwrap(),
                        AppendOutcome::Landed
                    );
                    model.push(id);
                }
                6 | 7 if !model.is_empty() => {
                    let id = &model[rng.below(model.len() as u64) as usize];
                    assert_eq!(
                        store.append(&event(id, "{}")).await.unwrap(),
                        AppendOutcome::Duplicate,
                        "seed {seed} step {step}"
                    );
                }
                8 => store.compact_now().await.unwrap(),
                _ => {
                    store.close().await;
                    drop(store);
                    store = EventStore::open(dir.path(), options.clone()).unwrap();
                }
            }
            if step % 30 == 29 {
                assert_eq!(
                    count(dir.path()).await,
                    (model.len() as i64, model.len() as i64),
                    "seed {seed} step {step}"
                );
            }
        }
        store.close().await;
        assert_eq!(
            count(dir.path()).await,
            (model.len() as i64, model.len() as i64),
            "seed {seed}"
        );
    }
}

#[test]
fn scanning_random_bytes_never_panics() {
    let mut rng = Lcg(99);
    let mut valid = record::MAGIC.to_vec();
    record::encode_frame(&event("a", "{}"), &mut valid);
    for _ in 0..2000 {
        let mut data = valid.clone();
        for _ in 0..=rng.below(6) {
            let at = rng.below(data.len() as u64) as usize;
            data[at] = rng.below(256) as u8;
        }
        data.truncate(rng.below(data.len() as u64 + 1) as usize);
        let scan = record::scan(&Bytes::from(data.clone()), Path::new("/p"));
        assert!(scan.valid_len as usize <= data.len());
    }
}
