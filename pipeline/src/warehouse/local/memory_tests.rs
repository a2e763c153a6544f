//! Local queries under a memory limit: what spills completes, what cannot spill fails naming the
//! flag, every query shares one pool, and spill folders of dead processes are removed.

use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::physical_plan::{ExecutionPlan, collect};

use super::*;
use crate::sql::WATERMARKS;
use crate::warehouse::Params;
use gma_store::schema::UTC;

/// Rows in the test table: about 10 MiB of Arrow data, more than [`LIMIT`].
const ROWS: usize = 300_000;

/// The memory limit of the tests. Smaller ones are too small for DataFusion's merge of spilled
/// sort runs (two partitions of 8,192-row batches): the sort then fails instead of spilling.
const LIMIT: usize = 8 << 20;

/// `ROWS` watermark rows with distinct pipeline names (`pipeline-00000000` ...) in shuffled
/// order.
fn many_watermarks() -> RecordBatch {
    let schema = TableLayout::of(&WATERMARKS).unwrap().arrow_schema();
    let names = (0..ROWS).map(|i| format!("pipeline-{:08}", (i * 7919) % ROWS));
    let times = TimestampMicrosecondArray::from_iter_values(0..ROWS as i64).with_timezone(UTC);
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(names)),
            Arc::new(StringArray::from_iter_values((0..ROWS).map(|_| "0/1"))),
            Arc::new(times.clone()),
            Arc::new(times),
        ],
    )
    .unwrap()
}

/// A warehouse limited to `limit` bytes over a data directory whose `watermarks` table holds
/// [`many_watermarks`].
async fn limited(limit: usize) -> (tempfile::TempDir, LocalWarehouse) {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = LocalWarehouse::open(dir.path())
        .await
        .unwrap()
        .with_memory_limit(limit)
        .unwrap();
    warehouse
        .append(&WATERMARKS, many_watermarks())
        .await
        .unwrap();
    (dir, warehouse)
}

/// Runs `sql` on `warehouse` and returns its rows and how many times its operators spilled.
async fn run_counting_spills(
    warehouse: &LocalWarehouse,
    sql: &str,
) -> Result<(Vec<RecordBatch>, usize), WarehouseError> {
    fn spills(plan: &Arc<dyn ExecutionPlan>) -> usize {
        let own = plan
            .metrics()
            .and_then(|metrics| metrics.spill_count())
            .unwrap_or(0);
        own + plan.children().into_iter().map(spills).sum::<usize>()
    }
    let run = async {
        let frame = warehouse.plan(sql, &Params::new()).await?;
        let task = Arc::new(frame.task_ctx());
        let plan = frame.create_physical_plan().await?;
        let batches = collect(Arc::clone(&plan), task).await?;
        Ok((batches, spills(&plan)))
    };
    run.await.map_err(|e| warehouse.memory.explain(e))
}

fn strings(batches: &[RecordBatch], column: usize) -> Vec<String> {
    batches
        .iter()
        .flat_map(|batch| {
            let array =
                arrow::compute::cast(batch.column(column), &arrow::datatypes::DataType::Utf8)
                    .unwrap();
            let array = array
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone();
            (0..array.len()).map(move |i| array.value(i).to_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_sort_larger_than_the_limit_completes_by_spilling() {
    let (dir, warehouse) = limited(LIMIT).await;
    let sql = "SELECT pipeline, watermark FROM watermarks ORDER BY pipeline DESC";
    let (batches, spills) = run_counting_spills(&warehouse, sql).await.unwrap();
    let names = strings(&batches, 0);
    assert_eq!(names.len(), ROWS);
    assert_eq!(names[0], format!("pipeline-{:08}", ROWS - 1));
    assert_eq!(names[ROWS - 1], "pipeline-00000000");
    assert!(names.windows(2).all(|pair| pair[0] > pair[1]), "sorted");
    assert!(spills > 0, "the sort spilled");
    let roomy = LocalWarehouse::open(dir.path()).await.unwrap();
    let (_, spills) = run_counting_spills(&roomy, sql).await.unwrap();
    assert_eq!(
        spills, 0,
        "under the default limit the same sort stays in memory"
    );
}

#[tokio::test]
async fn a_group_by_larger_than_the_limit_completes_by_spilling() {
    let (_dir, warehouse) = limited(LIMIT).await;
    let (batches, spills) = run_counting_spills(
        &warehouse,
        "SELECT COUNT(*) AS n, MIN(c) AS low, MAX(c) AS high FROM (SELECT pipeline, COUNT(*) AS c FROM watermarks GROUP BY pipeline)",
    )
    .await
    .unwrap();
    assert_eq!(
        strings(&batches, 0)
            .into_iter()
            .chain(strings(&batches, 1))
            .chain(strings(&batches, 2))
            .collect::<Vec<_>>(),
        [ROWS.to_string(), "1".into(), "1".into()]
    );
    assert!(spills > 0, "the aggregate spilled");
}

#[tokio::test]
async fn a_query_that_cannot_spill_fails_naming_the_flag() {
    let (_dir, warehouse) = limited(LIMIT).await;
    // A hash join holds its whole build side in memory: it cannot spill.
    let error = warehouse
        .query(
            "SELECT COUNT(*) FROM watermarks a JOIN watermarks b ON a.pipeline = b.pipeline",
            &Params::new(),
        )
        .await
        .unwrap_err();
    let WarehouseError::MemoryLimit { limit_bytes, .. } = &error else {
        panic!("expected MemoryLimit, got {error:?}");
    };
    assert_eq!(*limit_bytes, LIMIT);
    let message = error.to_string();
    assert!(message.contains("memory limit of 8 MiB"), "{message}");
    assert!(message.contains("--memory-limit"), "{message}");
    assert!(message.contains("GMA_MEMORY_LIMIT"), "{message}");
    let cause = std::error::Error::source(&error).unwrap().to_string();
    assert!(cause.contains("HashJoin"), "names the consumer: {cause}");
}

#[tokio::test]
async fn every_query_of_a_warehouse_shares_one_pool() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = LocalWarehouse::open(dir.path())
        .await
        .unwrap()
        .with_memory_limit(LIMIT)
        .unwrap();
    let (one, two) = (warehouse.session(), warehouse.session());
    assert!(Arc::ptr_eq(&one.runtime_env(), &two.runtime_env()));
    assert!(matches!(
        one.runtime_env().memory_pool.memory_limit(),
        datafusion::execution::memory_pool::MemoryLimit::Finite(LIMIT)
    ));
    assert_eq!(warehouse.memory_limit(), LIMIT);
    let spill_dirs = one.runtime_env().disk_manager.temp_dir_paths();
    assert_eq!(spill_dirs.len(), 1);
    assert!(spill_dirs[0].starts_with(dir.path().join("tmp").join("spill")));
}

#[tokio::test]
async fn spill_folders_of_dead_processes_are_removed_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("tmp").join("spill");
    // A process killed mid-query: its folder and unlocked lock file remain.
    let dead = spill.join("datafusion-dead");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(dead.join(".lock"), "").unwrap();
    std::fs::write(dead.join(".tmpSpill"), "rows").unwrap();
    // A folder being made right now, not locked yet.
    let new = spill.join("datafusion-new");
    std::fs::create_dir_all(&new).unwrap();
    // Not ours.
    let other = spill.join("notes");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join(".lock"), "").unwrap();

    let live = LocalWarehouse::open(dir.path()).await.unwrap();
    let live_dir = live.session().runtime_env().disk_manager.temp_dir_paths()[0].clone();
    assert!(!dead.exists(), "the dead process's folder is removed");
    assert!(new.exists() && other.exists());
    assert!(live_dir.join(".lock").exists());

    let second = LocalWarehouse::open(dir.path()).await.unwrap();
    assert!(live_dir.exists(), "a live warehouse's folder is kept");
    drop((live, second));
    assert!(
        !live_dir.exists(),
        "DataFusion removes its folder when done"
    );
}
