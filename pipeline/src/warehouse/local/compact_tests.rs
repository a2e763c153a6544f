//! Compaction of the local tables: fewer files, sorted, the same rows for every reader, also one
//! that listed the files before the switch, and nothing lost to a crash midway.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arrow::array::{AsArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use super::compact::{self, COVERS, GRACE};
use super::{LocalWarehouse, tables};
use crate::sql::typed_table;
use crate::warehouse::ddl::TableLayout;
use crate::warehouse::{Params, Warehouse};

/// A day's rows of `push_events`: `rows` deliveries `{tag}-N` of repositories in a shuffled
/// order, all on 2026-03-04.
fn push_rows(tag: &str, rows: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "received",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("delivery_id", DataType::Utf8, false),
        Field::new("organization", DataType::Utf8, true),
        Field::new("repository_full_name", DataType::Utf8, true),
    ]));
    let base = 1_772_600_000_000_000_i64;
    let received: Vec<i64> = (0..rows).map(|i| base + i as i64 * 1_000_000).collect();
    let ids: Vec<String> = (0..rows).map(|i| format!("{tag}-{i}")).collect();
    let orgs: Vec<&str> = (0..rows).map(|_| "acme").collect();
    let repos: Vec<String> = (0..rows)
        .map(|i| format!("acme/repo-{}", (i * 7 + tag.len()) % 5))
        .collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampMicrosecondArray::from(received).with_timezone("UTC")),
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(orgs)),
            Arc::new(StringArray::from(repos)),
        ],
    )
    .unwrap()
}

async fn count(warehouse: &LocalWarehouse) -> (i64, i64) {
    let result = warehouse
        .query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT delivery_id) AS ids FROM push_events",
            &Params::new(),
        )
        .await
        .unwrap();
    let batch = &result.batches[0];
    let value = |i: usize| {
        batch
            .column(i)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0)
    };
    (value(0), value(1))
}

#[tokio::test]
async fn compaction_merges_a_days_files_sorted_and_every_reader_sees_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = LocalWarehouse::open(dir.path()).await.unwrap();
    let table = typed_table("push_events").unwrap();
    for i in 0..12 {
        warehouse
            .append(&table, push_rows(&format!("a{i}"), 10))
            .await
            .unwrap();
    }
    let table_dir = dir.path().join("tables").join("push_events");
    let before = tables::list_files(&table_dir).unwrap();
    assert_eq!(before.len(), 12);
    assert_eq!(count(&warehouse).await, (120, 120));

    let done = warehouse
        .compact(&[table], compact::MIN_FILES)
        .await
        .unwrap();
    assert_eq!((done.folders, done.files_replaced), (1, 12));
    let after = tables::list_files(&table_dir).unwrap();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(count(&warehouse).await, (120, 120));
    // The replaced files stay for readers that listed them before the switch...
    assert!(before.iter().all(|f| f.exists()));
    // ... and the merged file is sorted by the clustering columns.
    let rows = warehouse
        .query(
            "SELECT repository_full_name FROM push_events",
            &Params::new(),
        )
        .await
        .unwrap();
    let repos: Vec<String> = rows
        .batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_string::<i32>()
                .iter()
                .map(|v| v.unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut sorted = repos.clone();
    sorted.sort();
    assert_eq!(repos, sorted);

    // More appends, then a second merge covering the first: still each row once.
    for i in 0..8 {
        warehouse
            .append(&table, push_rows(&format!("b{i}"), 5))
            .await
            .unwrap();
    }
    assert_eq!(count(&warehouse).await, (160, 160));
    warehouse
        .compact(&[table], compact::MIN_FILES)
        .await
        .unwrap();
    assert_eq!(tables::list_files(&table_dir).unwrap().len(), 1);
    assert_eq!(count(&warehouse).await, (160, 160));

    // Past the grace, the replaced files and their sidecars go; the rows stay.
    let layout = TableLayout::of(&table).unwrap();
    let later = SystemTime::now() + GRACE + Duration::from_secs(1);
    let purged = compact::compact_table(&table_dir, &layout, compact::MIN_FILES, later).unwrap();
    assert_eq!(purged.files_deleted, 12 + 8 + 1, "{purged:?}");
    let day = after[0].parent().unwrap();
    let left: Vec<String> = std::fs::read_dir(day)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 1, "only the last merged file is left: {left:?}");
    assert_eq!(count(&warehouse).await, (160, 160));
}

#[tokio::test]
async fn a_merge_cut_short_before_its_switch_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = LocalWarehouse::open(dir.path()).await.unwrap();
    let table = typed_table("push_events").unwrap();
    for i in 0..9 {
        warehouse
            .append(&table, push_rows(&format!("c{i}"), 3))
            .await
            .unwrap();
    }
    let table_dir = dir.path().join("tables").join("push_events");
    let files = tables::list_files(&table_dir).unwrap();
    let day = files[0].parent().unwrap().to_path_buf();
    // The sidecar of a merge that never switched (a crash between writing it and the rename),
    // and the merged file's temporary.
    let stem = format!("99999999999999999999-1-1-1{}", compact::MERGED);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    std::fs::write(day.join(format!("{stem}{COVERS}")), names.join("\n")).unwrap();
    std::fs::write(day.join(format!(".{stem}.parquet.tmp")), b"partial").unwrap();
    assert_eq!(tables::list_files(&table_dir).unwrap(), files);
    assert_eq!(count(&warehouse).await, (27, 27));
    // The next compaction drops the orphan sidecar and merges for real.
    warehouse
        .compact(&[table], compact::MIN_FILES)
        .await
        .unwrap();
    assert!(!day.join(format!("{stem}{COVERS}")).exists());
    assert_eq!(tables::list_files(&table_dir).unwrap().len(), 1);
    assert_eq!(count(&warehouse).await, (27, 27));
}

#[tokio::test]
async fn folders_with_few_files_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = LocalWarehouse::open(dir.path()).await.unwrap();
    let table = typed_table("push_events").unwrap();
    for i in 0..3 {
        warehouse
            .append(&table, push_rows(&format!("d{i}"), 2))
            .await
            .unwrap();
    }
    let done = warehouse
        .compact(&[table], compact::MIN_FILES)
        .await
        .unwrap();
    assert_eq!(done, compact::Compacted::default());
    let table_dir = dir.path().join("tables").join("push_events");
    assert_eq!(tables::list_files(&table_dir).unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_beside_appends_and_compactions_never_see_a_row_twice_or_lose_one() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = Arc::new(LocalWarehouse::open(dir.path()).await.unwrap());
    let table = typed_table("push_events").unwrap();
    warehouse.append(&table, push_rows("e", 4)).await.unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (warehouse, done) = (Arc::clone(&warehouse), Arc::clone(&done));
        readers.push(tokio::spawn(async move {
            let (mut last, mut reads) = (0, 0);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (n, ids) = count(&warehouse).await;
                assert_eq!(n, ids, "a row seen twice");
                assert!(n >= last, "rows lost: {n} after {last}");
                last = n;
                reads += 1;
            }
            reads
        }));
    }
    for round in 0..6 {
        for i in 0..8 {
            warehouse
                .append(&table, push_rows(&format!("r{round}-{i}"), 3))
                .await
                .unwrap();
        }
        warehouse
            .compact(&[table], compact::MIN_FILES)
            .await
            .unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }
    assert_eq!(count(&warehouse).await, (4 + 6 * 8 * 3, 4 + 6 * 8 * 3));
}
