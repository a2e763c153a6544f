//! Cross-check of BigQuery's functions on DataFusion against BigQuery's emulator (bqemulator):
//! the same SELECT runs on both and must give the same rows.
//!
//! Both sides go through their [`Warehouse`] backend, so this also checks the BigQuery
//! backend's conversion of results to Arrow. bqemulator is DuckDB + SQLGlot underneath and differs from BigQuery in
//! places; where it does, BigQuery's documentation decides, the local result is checked against
//! that, and the difference is recorded in [`EMULATOR_DIFFERS`].

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, TimestampMicrosecondType};
use serde_json::Value;

use super::bigquery::BigQueryWarehouse;
use super::local::LocalWarehouse;
use super::{Params, Warehouse};

/// Rows as JSON: each cell NULL, a string (BigQuery's REST form: TIMESTAMP as µs since the
/// epoch, DATE as YYYY-MM-DD) or an array of those.
pub(crate) type Rows = Vec<Vec<Value>>;

/// The BigQuery backend over the emulator, in a uniquely named dataset (`name` plus a random
/// suffix) that exists only once a test creates it.
fn emulator(name: &str) -> BigQueryWarehouse {
    BigQueryWarehouse::connect(crate::testing::emulator_config(name)).unwrap()
}

/// Runs `sql` on `warehouse` and returns its rows in the comparable form.
pub(crate) async fn rows(warehouse: &dyn Warehouse, sql: &str) -> Result<Rows, String> {
    let result = warehouse
        .query(sql, &Params::new())
        .await
        .map_err(|e| e.to_string().chars().take(300).collect::<String>())?;
    let mut rows = Vec::new();
    for batch in &result.batches {
        rows.extend(batch_rows(batch));
    }
    Ok(rows)
}

fn batch_rows(batch: &RecordBatch) -> Rows {
    (0..batch.num_rows())
        .map(|row| {
            batch
                .columns()
                .iter()
                .map(|column| cell(column.as_ref(), row))
                .collect()
        })
        .collect()
}

fn cell(column: &dyn Array, row: usize) -> Value {
    if column.is_null(row) && !matches!(column.data_type(), DataType::List(_)) {
        return Value::Null;
    }
    match column.data_type() {
        DataType::Timestamp(..) => {
            let micros = arrow::compute::cast(
                &column.slice(row, 1),
                &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
            )
            .map(|a| a.as_primitive::<TimestampMicrosecondType>().value(0));
            Value::String(micros.map_or_else(|e| e.to_string(), |m| m.to_string()))
        }
        // BigQuery turns a NULL ARRAY into an empty one in query results ("Array type",
        // data types reference); inside a query both backends have NULL.
        DataType::List(_) if column.is_null(row) => Value::Array(Vec::new()),
        DataType::List(_) => {
            let list = column.as_list::<i32>().value(row);
            Value::Array((0..list.len()).map(|i| cell(list.as_ref(), i)).collect())
        }
        DataType::Float64 => Value::String(
            column
                .as_primitive::<arrow::datatypes::Float64Type>()
                .value(row)
                .to_string(),
        ),
        _ => {
            let text = arrow::compute::cast(&column.slice(row, 1), &DataType::Utf8);
            Value::String(text.map_or_else(
                |e| e.to_string(),
                |a| a.as_string::<i32>().value(0).to_owned(),
            ))
        }
    }
}

/// A small table both engines read as columns (not constants): a row of values, a row of NULLs.
const TABLE: &str = r#"WITH t AS (
  SELECT 1 AS i, '{"a": {"b": "x", "n": [1, "two", {"c": 3}]}, "s": ["p", "q", 5]}' AS j,
         TIMESTAMP '2026-01-07 13:45:30.250+00' AS ts, DATE '2026-01-07' AS d, 'alphabet' AS s,
         -7 AS n, 3 AS m, '2026-01-02 03:04:05+00' AS txt, TRUE AS b
  UNION ALL
  SELECT 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  UNION ALL
  SELECT 3, '{}', TIMESTAMP '2025-12-31 23:59:59+00', DATE '2025-12-28', '', 7, -3, '2026-01-02', FALSE
)"#;

/// Expressions evaluated once over literals (`SELECT expr`) and compared.
const LITERALS: &[&str] = &[
    // JSON
    r#"JSON_VALUE('{"a": {"b": "x"}}', '$.a.b')"#,
    r#"JSON_VALUE('{"a": {"b": 1.50}}', '$.a.b')"#,
    r#"JSON_VALUE('{"a": 1}', '$.missing')"#,
    r#"JSON_VALUE('{"a": {"b": 1}}', '$.a')"#,
    r#"JSON_VALUE('{"a": null}', '$.a')"#,
    r#"JSON_EXTRACT_SCALAR('{"a": true}', '$.a')"#,
    r#"JSON_QUERY('{"a": {"b": [1, 2]}}', '$.a')"#,
    r#"JSON_QUERY('{"a": "x"}', '$.a')"#,
    r#"JSON_QUERY('{"a": "x"}', '$.b')"#,
    r#"JSON_EXTRACT('{"a": [1, {"b": 2}]}', '$.a[1]')"#,
    r#"JSON_QUERY_ARRAY('{"a": [1, "x", {"b": 2}]}', '$.a')"#,
    r#"JSON_QUERY_ARRAY('{"a": 1}', '$.a')"#,
    r#"JSON_VALUE_ARRAY('{"a": ["x", "y", 3]}', '$.a')"#,
    r#"JSON_VALUE_ARRAY('{"a": [{"b": 1}]}', '$.a')"#,
    // TIMESTAMP and DATE
    "TIMESTAMP('2026-01-02 03:04:05+00')",
    "TIMESTAMP('2026-01-02T03:04:05Z')",
    "TIMESTAMP('2026-01-02 03:04:05.123456+00:00')",
    "TIMESTAMP('2026-01-02 03:04:05-02:00')",
    "TIMESTAMP('2026-01-02 03:04:05', 'America/Los_Angeles')",
    "TIMESTAMP('2026-01-02')",
    "TIMESTAMP '2026-01-02 03:04:05+00'",
    "TIMESTAMP_DIFF(TIMESTAMP '2026-01-02 00:00:00+00', TIMESTAMP '2026-01-01 00:00:00+00', SECOND)",
    "TIMESTAMP_DIFF(TIMESTAMP '2026-01-01 00:00:00+00', TIMESTAMP '2026-01-02 00:30:00+00', HOUR)",
    "TIMESTAMP_DIFF(TIMESTAMP '2026-01-02 00:00:00+00', TIMESTAMP '2026-01-01 00:00:01+00', DAY)",
    "TIMESTAMP_TRUNC(TIMESTAMP '2026-01-07 13:45:30+00', DAY)",
    "TIMESTAMP_TRUNC(TIMESTAMP '2026-01-07 13:45:30+00', HOUR)",
    "TIMESTAMP_TRUNC(TIMESTAMP '2026-01-07 13:45:30+00', MINUTE)",
    "TIMESTAMP_TRUNC(TIMESTAMP '2026-01-07 13:45:30+00', WEEK)",
    "TIMESTAMP_TRUNC(TIMESTAMP '2026-01-07 13:45:30+00', ISOWEEK)",
    "TIMESTAMP_TRUNC(TIMESTAMP '2026-01-07 13:45:30+00', MONTH)",
    "TIMESTAMP_TRUNC(TIMESTAMP '2026-05-07 13:45:30+00', QUARTER)",
    "TIMESTAMP_TRUNC(TIMESTAMP '2026-01-07 13:45:30+00', YEAR)",
    "TIMESTAMP_ADD(TIMESTAMP '2026-01-07 13:45:30+00', INTERVAL 2 HOUR)",
    "TIMESTAMP_ADD(TIMESTAMP '2026-01-07 13:45:30+00', INTERVAL 3 DAY)",
    "TIMESTAMP_SUB(TIMESTAMP '2026-01-07 13:45:30+00', INTERVAL 90 MINUTE)",
    "DATE(TIMESTAMP '2026-01-07 23:59:59+00')",
    "DATE_DIFF(DATE '2026-03-01', DATE '2026-01-31', DAY)",
    "DATE_DIFF(DATE '2026-03-01', DATE '2026-01-31', MONTH)",
    "DATE_DIFF(DATE '2027-01-01', DATE '2026-12-31', YEAR)",
    "DATE_DIFF(DATE '2026-01-04', DATE '2026-01-03', WEEK)",
    "FORMAT_TIMESTAMP('%Y-%m-%d %H:%M:%S', TIMESTAMP '2026-01-07 13:45:30+00')",
    "FORMAT_TIMESTAMP('%F', TIMESTAMP '2026-01-07 13:45:30+00')",
    "FORMAT_TIMESTAMP('%Y%m%d-%H', TIMESTAMP '2026-01-07 13:45:30+00')",
    "FORMAT_TIMESTAMP('%F %T', TIMESTAMP '2026-01-07 13:45:30+00', 'America/New_York')",
    "FORMAT_TIMESTAMP('%H:%M:%E*S', TIMESTAMP '2026-01-07 13:45:30.25+00')",
    "FORMAT_TIMESTAMP('%H:%M:%E*S', TIMESTAMP '2026-01-07 13:45:30+00')",
    "PARSE_TIMESTAMP('%Y-%m-%dT%H:%M:%E*S%Ez', '2026-01-02T03:04:05.5+01:00')",
    "PARSE_TIMESTAMP('%Y-%m-%dT%H:%M:%E*S%Ez', '2026-01-02T03:04:05+01:00')",
    "PARSE_TIMESTAMP('%Y-%m-%d %H:%M:%S', '2026-01-02 03:04:05')",
    "PARSE_TIMESTAMP('%Y%m%d', '20260102')",
    "PARSE_TIMESTAMP('%Y-%m-%dT%H:%M:%S', '2026-01-02T03:04:05', 'America/New_York')",
    "TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), TIMESTAMP '2020-01-01 00:00:00+00', DAY) > 2000",
    "CURRENT_TIMESTAMP() = CURRENT_TIMESTAMP()",
    // Casts
    "SAFE_CAST('x' AS INT64)",
    "SAFE_CAST('12' AS INT64)",
    "CAST('12' AS INT64) + 1",
    "CAST(42 AS STRING)",
    "CAST(1.5 AS INT64)",
    "CAST(-2.5 AS INT64)",
    "CAST(2.4 AS INT64)",
    "CAST(' 17 ' AS INT64)",
    "CAST('0x1A' AS INT64)",
    "CAST(TRUE AS INT64)",
    "SAFE_CAST('1.5' AS INT64)",
    "SAFE_CAST(1e30 AS INT64)",
    "CAST(-42 AS STRING)",
    "CAST(TRUE AS STRING)",
    "CAST(DATE '2026-01-07' AS STRING)",
    "CAST(TIMESTAMP '2026-01-07 13:45:30+00' AS STRING)",
    "CAST(TIMESTAMP '2026-01-07 13:45:30.25+00' AS STRING)",
    "CAST(TIMESTAMP '2026-01-07 13:45:30.123456+00' AS STRING)",
    "SAFE_CAST(12 AS STRING)",
    "CAST('2026-01-02 03:04:05+00' AS TIMESTAMP)",
    "SAFE_CAST('nope' AS TIMESTAMP)",
    // Numbers and hashes
    "FARM_FINGERPRINT('alphabet')",
    "FARM_FINGERPRINT('')",
    "FARM_FINGERPRINT('UserCustomerID + salt')",
    "FARM_FINGERPRINT(CONCAT(CAST(1 AS STRING), 'foo', CAST(TRUE AS STRING)))",
    "ABS(MOD(FARM_FINGERPRINT(CAST(42 AS STRING)), 7))",
    "MOD(-7, 3)",
    "MOD(7, -3)",
    "MOD(NULL, 3)",
    "SAFE_DIVIDE(1, 0)",
    "SAFE_DIVIDE(3, 2)",
    "SAFE_DIVIDE(NULL, 2)",
    // Strings, UUIDs, arrays
    "STARTS_WITH('abc', 'ab')",
    "ENDS_WITH('abc', 'b')",
    "CONCAT('a', 'b', 'c')",
    "CONCAT('a', NULL)",
    "LENGTH(GENERATE_UUID())",
    "GENERATE_UUID() = GENERATE_UUID()",
    "3 IN UNNEST([1, 2, 3])",
    "3 NOT IN UNNEST([1, 2])",
    // More of BigQuery's functions views use, provided by aliases and rewrites
    "DATE_TRUNC(DATE '2026-01-07', MONTH)",
    "DATE_TRUNC(DATE '2026-01-07', WEEK)",
    "DATE_ADD(DATE '2026-01-07', INTERVAL 3 DAY)",
    "TIMESTAMP_ADD(TIMESTAMP '2026-01-07 13:45:30+00', INTERVAL -2 HOUR)",
    "EXTRACT(HOUR FROM TIMESTAMP '2026-01-07 13:45:30+00')",
    "EXTRACT(YEAR FROM DATE '2026-01-07')",
    "IF(1 > 0, 'a', 'b')",
    "IFNULL(NULL, 'x')",
    "REGEXP_CONTAINS('abc', r'b')",
    "ARRAY_LENGTH(SPLIT('a,b,c', ','))",
    "DIV(7, 2)",
    "DIV(-7, 2)",
    "UNIX_SECONDS(TIMESTAMP '2026-01-07 13:45:30.9+00')",
    "UNIX_MILLIS(TIMESTAMP '2026-01-07 13:45:30.9+00')",
    "UNIX_MICROS(TIMESTAMP '2026-01-07 13:45:30.9+00')",
    "TIMESTAMP_SECONDS(1767793530)",
    "TIMESTAMP_MILLIS(1767793530123)",
    "TIMESTAMP_MICROS(1767793530123456)",
];

/// Expressions over the columns of [`TABLE`], compared row by row (ordered by `i`).
const COLUMNS: &[&str] = &[
    "JSON_VALUE(j, '$.a.b')",
    "JSON_QUERY(j, '$.a.n')",
    "JSON_VALUE(j, '$.a.n[1]')",
    "JSON_QUERY_ARRAY(j, '$.a.n')",
    "JSON_VALUE_ARRAY(j, '$.s')",
    "JSON_QUERY_ARRAY(j, '$.a.n') IS NULL",
    "TIMESTAMP(txt)",
    "TIMESTAMP_TRUNC(ts, DAY)",
    "TIMESTAMP_TRUNC(ts, WEEK)",
    "TIMESTAMP_ADD(ts, INTERVAL 1 HOUR)",
    "TIMESTAMP_DIFF(ts, TIMESTAMP '2026-01-01 00:00:00+00', MINUTE)",
    "DATE(ts)",
    "DATE_DIFF(d, DATE '2025-12-01', DAY)",
    "DATE_DIFF(d, DATE '2025-12-01', MONTH)",
    "FORMAT_TIMESTAMP('%F %H:%M', ts)",
    "SAFE_CAST(txt AS TIMESTAMP)",
    "SAFE_CAST(s AS INT64)",
    "FARM_FINGERPRINT(s)",
    "ABS(MOD(FARM_FINGERPRINT(CAST(n AS STRING)), 4))",
    "MOD(n, m)",
    "SAFE_DIVIDE(n, m)",
    "STARTS_WITH(s, 'alpha')",
    "CONCAT(s, '-', CAST(n AS STRING))",
    "n IN UNNEST([7, -7])",
    "IF(b, s, 'no')",
    "DATE_TRUNC(d, MONTH)",
    "UNIX_SECONDS(ts)",
    "CAST(ts AS STRING)",
];

/// Aggregates over [`TABLE`].
const AGGREGATES: &[&str] = &[
    "COUNTIF(n > 0)",
    "COUNTIF(b)",
    "LOGICAL_OR(b)",
    "LOGICAL_AND(b)",
    "LOGICAL_AND(n IS NOT NULL)",
    "APPROX_COUNT_DISTINCT(s)",
    "STRING_AGG(s, ',' ORDER BY s)",
];

/// Where bqemulator's answer is not BigQuery's: the expression, BigQuery's result as documented
/// (rows as JSON, which the local backend must give), and the documentation that says so.
const EMULATOR_DIFFERS: &[(&str, &str, &str)] = &[
    (
        r#"JSON_VALUE('{"a": {"b": 1.50}}', '$.a.b')"#,
        r#"[["1.50"]]"#,
        "BigQuery's extractors on a JSON-formatted STRING do not re-validate or re-serialize the \
         extracted text (JSON functions, 'Differences between the JSON and JSON-formatted STRING \
         types': keys keep their order and duplicates); the emulator parses with DuckDB and \
         prints 1.5",
    ),
    (
        r#"JSON_QUERY_ARRAY('{"a": 1}', '$.a')"#,
        "[[[]]]",
        "BigQuery gives NULL (an empty array in results) when the selected value is not an array; the emulator fails the \
         query (DuckDB: 'Cannot cast to list of JSON')",
    ),
    (
        r#"JSON_VALUE_ARRAY('{"a": [{"b": 1}]}', '$.a')"#,
        "[[[]]]",
        "JSON_VALUE_ARRAY: 'Returns a SQL NULL if the selected value is not an array or not an \
         array containing only scalar values' (an empty array in results); the emulator returns the object's text",
    ),
    (
        "TIMESTAMP_DIFF(TIMESTAMP '2026-01-02 00:00:00+00', TIMESTAMP '2026-01-01 00:00:01+00', DAY)",
        r#"[["0"]]"#,
        "TIMESTAMP_DIFF counts whole intervals only (BigQuery's example: 01:00:00 - 00:00:01 in \
         HOUR is 0); the emulator counts day boundaries crossed (DuckDB date_diff)",
    ),
    (
        "TIMESTAMP_DIFF(ts, TIMESTAMP '2026-01-01 00:00:00+00', MINUTE)",
        r#"[["1", "9465"], ["2", null], ["3", "0"]]"#,
        "whole intervals, as above: 23:59:59 is 1 second, 0 whole minutes, before midnight",
    ),
    (
        "TIMESTAMP_TRUNC(TIMESTAMP '2026-01-07 13:45:30+00', WEEK)",
        r#"[["1767484800000000"]]"#,
        "TIMESTAMP_TRUNC WEEK truncates to the preceding Sunday (2026-01-04); the emulator \
         truncates to Monday, DuckDB's ISO week",
    ),
    (
        "TIMESTAMP_TRUNC(ts, WEEK)",
        r#"[["1", "1767484800000000"], ["2", null], ["3", "1766880000000000"]]"#,
        "WEEK starts on Sunday, as above (2026-01-04 and 2025-12-28)",
    ),
    (
        "TIMESTAMP_TRUNC(TIMESTAMP '2026-01-07 13:45:30+00', ISOWEEK)",
        r#"[["1767571200000000"]]"#,
        "ISOWEEK truncates to the preceding Monday (2026-01-05); the emulator rejects ISOWEEK",
    ),
    (
        "PARSE_TIMESTAMP('%Y-%m-%dT%H:%M:%S', '2026-01-02T03:04:05', 'America/New_York')",
        r#"[["1767341045000000"]]"#,
        "PARSE_TIMESTAMP reads a text without a zone in its time_zone argument (03:04:05 in New \
         York is 08:04:05 UTC); the emulator ignores the argument",
    ),
    (
        "UNIX_SECONDS(TIMESTAMP '2026-01-07 13:45:30.9+00')",
        r#"[["1767793530"]]"#,
        "UNIX_SECONDS 'truncates higher levels of precision by rounding down to the beginning of \
         the second'; the emulator rounds to the nearest second",
    ),
    (
        "DATE_TRUNC(d, MONTH)",
        r#"[["1", "2026-01-01"], ["2", null], ["3", "2025-12-01"]]"#,
        "DATE_TRUNC of a DATE is a DATE; the emulator returns a DATETIME",
    ),
    (
        "CAST(-2.5 AS INT64)",
        r#"[["-3"]]"#,
        "FLOAT64 to INT64: 'Halfway cases such as 1.5 or -0.5 round away from zero' (conversion \
         rules); the emulator rounds half to even",
    ),
    (
        "SAFE_CAST('1.5' AS INT64)",
        "[[null]]",
        "STRING to INT64 reads an integer literal (decimal or 0x hex), so '1.5' fails ('Bad \
         int64 value') and SAFE_CAST gives NULL; the emulator rounds the decimal",
    ),
    (
        "FORMAT_TIMESTAMP('%H:%M:%E*S', TIMESTAMP '2026-01-07 13:45:30.25+00')",
        r#"[["13:45:30.25"]]"#,
        "%E*S is 'seconds with full fractional precision' (as in CAST(... AS STRING), which the \
         emulator gets right); the emulator leaves %E*S unformatted",
    ),
    (
        "FORMAT_TIMESTAMP('%H:%M:%E*S', TIMESTAMP '2026-01-07 13:45:30+00')",
        r#"[["13:45:30"]]"#,
        "%E*S as above, with no fraction to show",
    ),
    (
        "PARSE_TIMESTAMP('%Y-%m-%dT%H:%M:%E*S%Ez', '2026-01-02T03:04:05.5+01:00')",
        r#"[["1767319445500000"]]"#,
        "%E*S reads seconds with any fraction and %Ez an offset +HH:MM; the emulator's parser \
         fails on the pattern",
    ),
    (
        "PARSE_TIMESTAMP('%Y-%m-%dT%H:%M:%E*S%Ez', '2026-01-02T03:04:05+01:00')",
        r#"[["1767319445000000"]]"#,
        "as above, without a fraction",
    ),
];

#[tokio::test]
async fn bigquery_functions_agree_with_bigquery() {
    let remote_warehouse = emulator("crosscheck");
    let dir = tempfile::tempdir().unwrap();
    let warehouse = LocalWarehouse::open(dir.path()).await.unwrap();
    let mut queries: Vec<(String, String)> = Vec::new();
    for expr in LITERALS {
        queries.push((expr.to_string(), format!("SELECT {expr} AS v")));
    }
    for expr in COLUMNS {
        queries.push((
            expr.to_string(),
            format!("{TABLE} SELECT i, {expr} AS v FROM t ORDER BY i"),
        ));
    }
    for expr in AGGREGATES {
        queries.push((
            expr.to_string(),
            format!("{TABLE} SELECT {expr} AS v FROM t"),
        ));
    }
    let mut mismatches = Vec::new();
    for (expr, sql) in &queries {
        let remote = rows(&remote_warehouse, sql).await;
        let here = rows(&warehouse, sql).await;
        if let Some((_, documented, why)) = EMULATOR_DIFFERS.iter().find(|(e, _, _)| e == expr) {
            let documented: Rows = serde_json::from_str(documented).unwrap();
            if here.as_ref() != Ok(&documented) {
                mismatches.push(format!(
                    "{expr}\n    BigQuery documents: {documented:?} ({why})\n    local:             {here:?}"
                ));
            }
            assert_ne!(
                remote.as_ref(),
                Ok(&documented),
                "the emulator now gives BigQuery's result for {expr}: drop it from EMULATOR_DIFFERS"
            );
            continue;
        }
        if remote != here {
            mismatches.push(format!(
                "{expr}\n    bigquery emulator: {remote:?}\n    local:             {here:?}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} expressions differ:\n{}",
        mismatches.len(),
        queries.len(),
        mismatches.join("\n")
    );
}

/// The framework's SQL files (the shard predicate with FARM_FINGERPRINT, the watermark lookup)
/// over the same rows appended to both backends give the same rows: N shards split the rows the
/// same way on both.
#[tokio::test]
async fn sql_files_give_the_same_rows_on_both_backends() {
    use std::sync::Arc;

    use arrow::array::{StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema, TimeUnit};

    use super::ParamValue;
    use crate::sql::{LATEST_WATERMARK, SOURCE_WINDOW, WATERMARKS};
    use gma_store::schema::UTC;

    let remote = emulator("crosscheck_files");
    let dir = tempfile::tempdir().unwrap();
    let local = LocalWarehouse::open(dir.path()).await.unwrap();

    let n = 60_i64;
    let base = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .timestamp_micros();
    let timestamp = || DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("pipeline", DataType::Utf8, false),
        Field::new("shard", DataType::Utf8, false),
        Field::new("watermark", timestamp(), false),
        Field::new("updated", timestamp(), false),
    ]));
    let times: Vec<i64> = (0..n).map(|i| base + i * 60_000_000).collect();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("pipeline-{i}")),
            )),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("{}/3", i % 3)),
            )),
            Arc::new(TimestampMicrosecondArray::from(times.clone()).with_timezone(UTC)),
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone(UTC)),
        ],
    )
    .unwrap();
    let outcome = async {
        remote.ensure_dataset().await.unwrap();
        for warehouse in [&remote as &dyn Warehouse, &local] {
            warehouse.append(&WATERMARKS, batch.clone()).await.unwrap();
        }
        let window = SOURCE_WINDOW
            .replace(
                "${source}",
                "SELECT pipeline, watermark FROM `${dataset}watermarks`",
            )
            .replace("${key}", "pipeline")
            .replace("${time}", "watermark");
        let after = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:10:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let mut queries = Vec::new();
        for shard in 0..3 {
            queries.push((
                window.clone(),
                Params::new()
                    .with("shard_count", ParamValue::Int64(3))
                    .with("shard_index", ParamValue::Int64(shard))
                    .with("after", ParamValue::Timestamp(after)),
            ));
        }
        queries.push((
            LATEST_WATERMARK.to_owned(),
            Params::new()
                .with("pipeline", ParamValue::String("pipeline-7".into()))
                .with("shard", ParamValue::String("1/3".into())),
        ));
        let mut sharded = 0;
        for (sql, _) in &mut queries {
            // bqemulator 1.4 counts an `@name` written in a `--` comment (source_window.sql's
            // header mentions @after) as a parameter and fails the query ("Parameter
            // argument/count mismatch"); BigQuery ignores comments. Both backends get the
            // statement without its header comment.
            *sql = without_comment_lines(sql);
        }
        let window = without_comment_lines(&window);
        for (sql, params) in &queries {
            let mut results = Vec::new();
            for warehouse in [&remote as &dyn Warehouse, &local] {
                let result = warehouse.query(sql, params).await.unwrap();
                let mut rows = Vec::new();
                for batch in &result.batches {
                    rows.extend(batch_rows(batch));
                }
                results.push(rows);
            }
            assert_eq!(results[0], results[1], "{sql}\n{params:?}");
            if sql == &window {
                sharded += results[1].len();
            }
        }
        assert_eq!(
            sharded, 49,
            "every row after the watermark in exactly one shard"
        );
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
    remote.delete_dataset().await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// `sql` without its whole-line `--` comments.
fn without_comment_lines(sql: &str) -> String {
    sql.lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
}
