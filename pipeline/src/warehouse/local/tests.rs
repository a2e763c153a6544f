use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, StringViewArray,
    TimestampMicrosecondArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::{TimeZone, Utc};
use futures::TryStreamExt;

use super::*;
use crate::sql::{LATEST_WATERMARK, SOURCE_WINDOW, WATERMARKS};
use crate::testing::events_batch;
use crate::warehouse::ParamValue;
use gma_store::StoreOptions;
use gma_store::event::Lifted;
use gma_store::schema::UTC;
use gma_store::testing::EventBuilder;

fn text_cells(result: &QueryResult, column: usize) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for batch in &result.batches {
        let array = arrow::compute::cast(batch.column(column), &DataType::Utf8).unwrap();
        let array = array.as_any().downcast_ref::<StringArray>().unwrap();
        out.extend(array.iter().map(|v| v.map(str::to_owned)));
    }
    out
}

fn micros(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_micros()
}

fn watermark_rows(rows: &[(&str, &str, &str)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("pipeline", DataType::Utf8, false),
        Field::new("shard", DataType::Utf8, false),
        Field::new(
            "watermark",
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some(UTC.into())),
            false,
        ),
        Field::new(
            "updated",
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some(UTC.into())),
            false,
        ),
    ]));
    let times: Vec<i64> = rows.iter().map(|r| micros(r.2)).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(TimestampMicrosecondArray::from(times.clone()).with_timezone(UTC)),
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone(UTC)),
        ],
    )
    .unwrap()
}

async fn open() -> (tempfile::TempDir, LocalWarehouse) {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = LocalWarehouse::open(dir.path()).await.unwrap();
    (dir, warehouse)
}

#[tokio::test]
async fn binds_parameters_of_every_type() {
    let (_dir, warehouse) = open().await;
    let params = Params::new()
        .with("s", ParamValue::String("it's".into()))
        .with("n", ParamValue::Int64(-42))
        .with("b", ParamValue::Bool(true))
        .with(
            "t",
            ParamValue::Timestamp(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()),
        );
    let result = warehouse
        .query("SELECT @s AS s, @n + 1 AS n, NOT @b AS b, @t AS t", &params)
        .await
        .unwrap();
    let schema = &result.schema;
    assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
    assert_eq!(schema.field(1).data_type(), &DataType::Int64);
    assert_eq!(schema.field(2).data_type(), &DataType::Boolean);
    assert_eq!(
        schema.field(3).data_type(),
        &crate::warehouse::bigquery_functions::time::timestamp_type()
    );
    assert_eq!(text_cells(&result, 0), [Some("it's".to_owned())]);
    assert_eq!(text_cells(&result, 1), [Some("-41".to_owned())]);
    assert_eq!(text_cells(&result, 2), [Some("false".to_owned())]);
    assert_eq!(
        text_cells(&result, 3),
        [Some("2026-01-02T03:04:05Z".to_owned())]
    );
}

#[tokio::test]
async fn binds_arrays_for_in_unnest_and_from_unnest() {
    let (_dir, warehouse) = open().await;
    let ids = |v: &[&str]| ParamValue::StringArray(v.iter().map(|s| (*s).to_owned()).collect());
    let sql = "SELECT x FROM UNNEST(['a', 'b', 'c']) AS x WHERE x IN UNNEST(@ids) ORDER BY x";
    let result = warehouse
        .query(sql, &Params::new().with("ids", ids(&["c", "a", "z"])))
        .await
        .unwrap();
    assert_eq!(
        text_cells(&result, 0),
        [Some("a".to_owned()), Some("c".to_owned())]
    );
    let none = warehouse
        .query(sql, &Params::new().with("ids", ids(&[])))
        .await
        .unwrap();
    assert_eq!(none.num_rows(), 0);
    let result = warehouse
        .query(
            "SELECT id * 2 AS d FROM UNNEST(@ids) AS id ORDER BY id",
            &Params::new().with("ids", ParamValue::Int64Array(vec![3, 1])),
        )
        .await
        .unwrap();
    assert_eq!(
        text_cells(&result, 0),
        [Some("2".to_owned()), Some("6".to_owned())]
    );
    let result = warehouse
        .query(
            "SELECT 1 AS one WHERE 5 NOT IN UNNEST(@ids)",
            &Params::new().with("ids", ParamValue::Int64Array(vec![3, 1])),
        )
        .await
        .unwrap();
    assert_eq!(result.num_rows(), 1);
}

#[tokio::test]
async fn a_missing_parameter_is_named() {
    let (_dir, warehouse) = open().await;
    let error = warehouse
        .query(
            "SELECT @present, @absent",
            &Params::new().with("present", ParamValue::Int64(1)),
        )
        .await
        .unwrap_err();
    match error {
        WarehouseError::Param { name, .. } => assert_eq!(name, "absent"),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn every_table_is_there_when_empty() {
    let (_dir, warehouse) = open().await;
    for table in crate::sql::TABLES {
        let sql = format!("SELECT * FROM ${{dataset}}{}", table.name);
        let result = warehouse.query(&sql, &Params::new()).await.unwrap();
        assert_eq!(result.num_rows(), 0, "{table}");
        let expected = TableLayout::parse(table).unwrap().arrow_schema();
        let names = |s: &SchemaRef| {
            s.fields()
                .iter()
                .map(|f| f.name().clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&result.schema), names(&expected), "{table}");
    }
    let params = Params::new()
        .with("pipeline", ParamValue::String("leech".into()))
        .with("shard", ParamValue::String("0/1".into()));
    let result = warehouse.query(LATEST_WATERMARK, &params).await.unwrap();
    assert_eq!(text_cells(&result, 0), [None]);
}

#[tokio::test]
async fn appended_rows_are_durable_files_seen_by_later_queries() {
    let (dir, warehouse) = open().await;
    let params = Params::new()
        .with("pipeline", ParamValue::String("leech".into()))
        .with("shard", ParamValue::String("0/1".into()));
    warehouse
        .append(
            &WATERMARKS,
            watermark_rows(&[
                ("leech", "0/1", "2026-01-01T00:00:00Z"),
                ("retry", "0/1", "2026-01-05T00:00:00Z"),
            ]),
        )
        .await
        .unwrap();
    warehouse
        .append(
            &WATERMARKS,
            watermark_rows(&[("leech", "0/1", "2026-01-02T00:00:00Z")]),
        )
        .await
        .unwrap();
    let result = warehouse.query(LATEST_WATERMARK, &params).await.unwrap();
    assert_eq!(
        text_cells(&result, 0),
        [Some("2026-01-02T00:00:00Z".to_owned())]
    );

    let files = tables::list_files(&dir.path().join("tables/watermarks")).unwrap();
    assert_eq!(files.len(), 2, "one file per append: {files:?}");
    let all: Vec<_> = std::fs::read_dir(dir.path().join("tables/watermarks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        all.iter().all(|n| n.ends_with(".parquet")),
        "no leftovers: {all:?}"
    );
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(
        std::fs::File::open(&files[0]).unwrap(),
    )
    .unwrap();
    use parquet::file::reader::FileReader;
    let column = reader.metadata().row_group(0).column(0).compression();
    assert!(
        matches!(column, parquet::basic::Compression::ZSTD(_)),
        "{column:?}"
    );

    // A second warehouse over the same directory (another process) sees them too, and
    // BigQuery-qualified names read the local table.
    let other = LocalWarehouse::open(dir.path()).await.unwrap();
    let result = other
        .query(
            "SELECT COUNT(*) AS n FROM `my-project.gma.watermarks` AS w JOIN WaterMarks AS u USING (pipeline, watermark) WHERE w.pipeline = 'leech'",
            &Params::new(),
        )
        .await
        .unwrap();
    assert_eq!(text_cells(&result, 0), [Some("2".to_owned())]);
}

const DAILY: TableDef = TableDef {
    name: "daily_test",
    ddl: "CREATE TABLE IF NOT EXISTS `${dataset}daily_test` (
        id STRING NOT NULL,
        at TIMESTAMP NOT NULL,
        n INT64,
        note STRING
    ) PARTITION BY DATE(at)",
};

fn daily_rows(ids: &[&str], at: &[i64]) -> RecordBatch {
    // Narrower and view types on purpose: the append widens them to the table's types.
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8View, false),
        Field::new(
            "at",
            DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("n", DataType::Int32, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringViewArray::from_iter_values(ids.iter().copied())),
        Arc::new(TimestampMillisecondArray::from(at.to_vec())),
        Arc::new(Int32Array::from_iter_values(0..ids.len() as i32)),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

#[tokio::test]
async fn day_partitioned_tables_and_column_matching() {
    let (dir, warehouse) = open().await;
    warehouse.ensure_table(&DAILY).await.unwrap();
    let empty = warehouse
        .query("SELECT * FROM daily_test", &Params::new())
        .await
        .unwrap();
    assert_eq!(empty.num_rows(), 0);
    let day1 = micros("2026-03-01T23:59:59Z") / 1000;
    let day2 = micros("2026-03-02T00:00:00Z") / 1000;
    warehouse
        .append(&DAILY, daily_rows(&["a", "b", "c"], &[day1, day2, day1]))
        .await
        .unwrap();
    let mut days: Vec<String> = std::fs::read_dir(dir.path().join("tables/daily_test"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    days.sort();
    assert_eq!(days, ["day=2026-03-01", "day=2026-03-02"]);
    let result = warehouse
        .query(
            "SELECT id, n, note, DATE(at) AS d FROM daily_test ORDER BY id",
            &Params::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        text_cells(&result, 0),
        [Some("a".into()), Some("b".into()), Some("c".into())]
    );
    assert_eq!(
        text_cells(&result, 1),
        [Some("0".into()), Some("1".into()), Some("2".into())]
    );
    assert_eq!(text_cells(&result, 2), [None, None, None]);
    assert_eq!(
        text_cells(&result, 3),
        [
            Some("2026-03-01".into()),
            Some("2026-03-02".into()),
            Some("2026-03-01".into())
        ]
    );

    let refused = |batch: RecordBatch| async {
        warehouse
            .append(&DAILY, batch)
            .await
            .unwrap_err()
            .to_string()
    };
    let missing = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)])),
        vec![Arc::new(StringArray::from(vec!["x"]))],
    )
    .unwrap();
    assert!(refused(missing).await.contains("column at is NOT NULL"));
    let wrong = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(
                "at",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
                false,
            ),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(TimestampMicrosecondArray::from(vec![0])),
        ],
    )
    .unwrap();
    let message = refused(wrong).await;
    assert!(
        message.contains("column id is Utf8 in the table but Int64"),
        "{message}"
    );
    let unknown = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("bogus", DataType::Utf8, true)])),
        vec![Arc::new(StringArray::from(vec![Some("x")]))],
    )
    .unwrap();
    assert!(refused(unknown).await.contains("no column bogus"));
    let null_id = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new(
                "at",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
                false,
            ),
        ])),
        vec![
            Arc::new(StringArray::from(vec![None::<&str>])),
            Arc::new(TimestampMicrosecondArray::from(vec![0])),
        ],
    )
    .unwrap();
    assert!(
        refused(null_id)
            .await
            .contains("column id is NOT NULL but some rows hold NULL")
    );
    let count = warehouse
        .query("SELECT COUNT(*) FROM daily_test", &Params::new())
        .await
        .unwrap();
    assert_eq!(
        text_cells(&count, 0),
        [Some("3".into())],
        "refused rows are not stored"
    );
}

#[tokio::test]
async fn concurrent_appends_never_collide() {
    let (dir, warehouse) = open().await;
    let warehouse = Arc::new(warehouse);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let warehouse = Arc::clone(&warehouse);
            tokio::spawn(async move {
                let id = format!("p{i}");
                warehouse
                    .append(
                        &WATERMARKS,
                        watermark_rows(&[(id.as_str(), "0/1", "2026-01-01T00:00:00Z")]),
                    )
                    .await
                    .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let files = tables::list_files(&dir.path().join("tables/watermarks")).unwrap();
    assert_eq!(files.len(), 16);
    let result = warehouse
        .query(
            "SELECT COUNT(DISTINCT pipeline) FROM watermarks",
            &Params::new(),
        )
        .await
        .unwrap();
    assert_eq!(text_cells(&result, 0), [Some("16".into())]);
}

#[tokio::test]
async fn streams_batches() {
    let (_dir, warehouse) = open().await;
    let stream = warehouse
        .query_stream(
            "SELECT x FROM UNNEST(@xs) AS x",
            &Params::new().with("xs", ParamValue::Int64Array((0..10_000).collect())),
        )
        .await
        .unwrap();
    let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
    assert_eq!(
        batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        10_000
    );
}

#[tokio::test]
async fn the_shard_predicate_splits_rows_exactly_once() {
    let (_dir, warehouse) = open().await;
    let rows: Vec<(String, String)> = (0..200)
        .map(|i| {
            (
                format!("p{i}"),
                format!("2026-01-01T00:{:02}:{:02}Z", i / 60, i % 60),
            )
        })
        .collect();
    let borrowed: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(p, t)| (p.as_str(), "0/1", t.as_str()))
        .collect();
    warehouse
        .append(&WATERMARKS, watermark_rows(&borrowed))
        .await
        .unwrap();
    let sql = SOURCE_WINDOW
        .replace(
            "${source}",
            "SELECT pipeline, watermark FROM ${dataset}watermarks",
        )
        .replace("${key}", "pipeline")
        .replace("${time}", "watermark");
    let mut seen = Vec::new();
    for shard in 0..3 {
        let params = Params::new()
            .with("shard_count", ParamValue::Int64(3))
            .with("shard_index", ParamValue::Int64(shard))
            .with(
                "after",
                ParamValue::Timestamp(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()),
            );
        let result = warehouse.query(&sql, &params).await.unwrap();
        assert!(
            result.num_rows() > 30,
            "shard {shard}: {}",
            result.num_rows()
        );
        seen.extend(text_cells(&result, 0).into_iter().flatten());
    }
    seen.sort();
    let mut expected: Vec<String> = rows.into_iter().map(|(p, _)| p).collect();
    expected.sort();
    assert_eq!(seen, expected);
}

fn event_batch(ids: &[&str]) -> RecordBatch {
    let (events, payloads): (Vec<_>, Vec<_>) = ids
        .iter()
        .map(|id| {
            let payload =
                format!(r#"{{"action":"opened","repository":{{"full_name":"o/{id}","id":1}}}}"#);
            let event = EventBuilder::new(id, &payload)
                .event("issues")
                .hook_id(1)
                .received_micros(micros("2026-02-01T10:00:00Z"))
                .lifted(Lifted::default())
                .build();
            (event, payload)
        })
        .unzip();
    events_batch(&events, &payloads)
}

#[tokio::test]
async fn events_are_appended_through_the_store_only() {
    let dir = tempfile::tempdir().unwrap();
    let reader = LocalWarehouse::open(dir.path()).await.unwrap();
    let error = reader
        .append(&crate::sql::EVENTS, event_batch(&["d1"]))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("gma serve"), "{error}");

    let store = Arc::new(EventStore::open(dir.path(), StoreOptions::default()).unwrap());
    let writer = LocalWarehouse::with_event_store(Arc::clone(&store))
        .await
        .unwrap();
    writer
        .append(&crate::sql::EVENTS, event_batch(&["d1", "d2"]))
        .await
        .unwrap();
    writer
        .append(&crate::sql::EVENTS, event_batch(&["d2", "d3"]))
        .await
        .unwrap();
    let result = reader
        .query(
            "SELECT delivery_id, repository, action FROM events ORDER BY delivery_id",
            &Params::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        text_cells(&result, 0),
        [Some("d1".into()), Some("d2".into()), Some("d3".into())],
        "deduplicated on delivery_id"
    );
    assert_eq!(
        text_cells(&result, 1)[0].as_deref(),
        Some("o/d1"),
        "lifted again"
    );
    store.close().await;
}

#[tokio::test]
async fn explain_binds_and_rewrites_too() {
    let (_dir, warehouse) = open().await;
    let result = warehouse
        .query(
            "EXPLAIN SELECT COUNT(*) FROM `p.d.watermarks` WHERE pipeline = @p AND TIMESTAMP_DIFF(watermark, updated, SECOND) > 0",
            &Params::new().with("p", ParamValue::String("leech".into())),
        )
        .await
        .unwrap();
    assert!(result.num_rows() > 0);
}
