//! The metrics and DORA views over one scenario of webhook events, checked against golden
//! files: data, not asserts.
//!
//! `testdata/views/metrics/events.ndjson` holds the scenario's deliveries (its README tells the
//! story: four pull requests, deployments, incidents and workflow runs of acme/widgets, renamed
//! acme/gizmos midweek). Each test loads them into a fresh local store, runs a group of views on
//! DataFusion with a settings case ([`CASES`]) and compares every row and column with
//! `testdata/views/metrics/expected/<case>/<view>.json`; a difference is reported by view, row
//! (its key columns, [`METRICS_VIEWS`]) and column.
//!
//! When the views' SQL changes on purpose, rewrite the golden files and review their diff:
//!
//! ```sh
//! GMA_BLESS=1 cargo test -p gma-pipeline --lib views::metrics_tests
//! git diff testdata/views/metrics/expected
//! ```
//!
//! The same events on BigQuery's emulator (with redeliveries) must give the same rows as on
//! DataFusion, and so as the golden files.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use chrono::DateTime;
use serde_json::{Map, Value, json};

use super::*;
use crate::testing::{emulator_config, events_batch, with_dataset};
use crate::warehouse::crosscheck_tests::rows;
use crate::warehouse::local::LocalWarehouse;
use crate::warehouse::{Params, QueryResult, Warehouse};
use gma_store::event::Event;

/// The views checked (the metrics and DORA views, with the latest-state view the DORA views
/// build on), each with the columns that name one of its rows: a golden file's rows are sorted
/// by them, and a difference names its row by them.
const METRICS_VIEWS: &[(&str, &[&str])] = &[
    ("pr_cycle_time", &["id"]),
    ("review_latency", &["pull_request_id", "reviewer"]),
    (
        "workflow_reliability",
        &["repository_id", "workflow_id", "week"],
    ),
    ("deployment_outcomes", &["deployment_id"]),
    (
        "dora_deployment_frequency",
        &["repository_id", "environment", "day"],
    ),
    ("dora_lead_time", &["pull_request_id"]),
    (
        "dora_change_failure_rate",
        &["repository_id", "environment", "day"],
    ),
    (
        "dora_time_to_restore",
        &["source", "repository_id", "deployment_id", "issue_number"],
    ),
];

/// The views of pull requests.
const PULL_REQUEST_VIEWS: &[&str] = &["pr_cycle_time", "review_latency"];
/// The views of deployments and incidents.
const DEPLOYMENT_VIEWS: &[&str] = &[
    "deployment_outcomes",
    "dora_deployment_frequency",
    "dora_lead_time",
    "dora_change_failure_rate",
    "dora_time_to_restore",
];
/// The views of workflow runs.
const WORKFLOW_VIEWS: &[&str] = &["workflow_reliability"];

/// Set to `1` to rewrite the golden files from the views instead of comparing.
const BLESS: &str = "GMA_BLESS";

/// A settings case: the folder of its golden files under `expected/`, and its settings.
#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    settings: fn() -> ViewSettings,
}

/// The default settings.
const DEFAULT: Case = Case {
    name: "default",
    settings: ViewSettings::default,
};
/// Incident labels `sev1` and `incident`, production environment `live`: [`sev1_and_live`].
const SETTINGS: Case = Case {
    name: "settings",
    settings: sev1_and_live,
};
/// Every settings case, each with a golden file per view.
const CASES: [Case; 2] = [DEFAULT, SETTINGS];

/// Settings that count issues labelled `sev1` or `incident` as incidents (written in another
/// case) and `live` as production.
fn sev1_and_live() -> ViewSettings {
    ViewSettings {
        incident_labels: vec!["SEV1".to_owned(), "Incident".to_owned()],
        production_environments: vec!["live".to_owned()],
        ..ViewSettings::default()
    }
}

/// The folder of the scenario's data: `testdata/views/metrics`.
fn testdata() -> PathBuf {
    gma_testkit::repo_root().join("testdata/views/metrics")
}

/// The scenario's events, in the file's order, with their payloads.
fn scenario_events() -> (Vec<Event>, Vec<String>) {
    crate::testing::metrics_scenario_events()
}

/// A local warehouse over the scenario's events with `settings`, in a fresh data directory.
/// The event views are computed from payloads, the reference the typed tables are checked
/// against (in gma-refresh's tests).
async fn local_scenario(settings: ViewSettings) -> (tempfile::TempDir, LocalWarehouse) {
    let (events, payloads) = scenario_events();
    crate::testing::local_warehouse_with(&events, &payloads, settings.reading_payloads()).await
}

/// A view's rows in the form of its golden file: its columns in the view's order and, per row,
/// one JSON value per column, rows sorted by the view's key columns.
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

/// The JSON form of a cell: NULL, a boolean, a number (integers and durations as integers,
/// rates and means as floats), a string (a TIMESTAMP in RFC 3339, UTC; a DATE as YYYY-MM-DD) or
/// an array of those.
fn json_cell(column: &dyn Array, row: usize) -> Value {
    if column.is_null(row) {
        return Value::Null;
    }
    let cast = |to: &DataType| {
        arrow::compute::cast(&column.slice(row, 1), to)
            .unwrap_or_else(|e| panic!("{} as {to}: {e}", column.data_type()))
    };
    match column.data_type() {
        DataType::Boolean => json!(column.as_boolean().value(row)),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => json!(cast(&DataType::Int64).as_primitive::<Int64Type>().value(0)),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let value = cast(&DataType::Float64)
                .as_primitive::<Float64Type>()
                .value(0);
            serde_json::Number::from_f64(value)
                .map(Value::Number)
                .unwrap_or_else(|| panic!("{value} has no JSON form"))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            json!(cast(&DataType::Utf8).as_string::<i32>().value(0))
        }
        DataType::Timestamp(unit, _) => {
            let at = match unit {
                TimeUnit::Second => DateTime::from_timestamp(
                    column.as_primitive::<TimestampSecondType>().value(row),
                    0,
                ),
                TimeUnit::Millisecond => DateTime::from_timestamp_millis(
                    column.as_primitive::<TimestampMillisecondType>().value(row),
                ),
                TimeUnit::Microsecond => DateTime::from_timestamp_micros(
                    column.as_primitive::<TimestampMicrosecondType>().value(row),
                ),
                TimeUnit::Nanosecond => Some(DateTime::from_timestamp_nanos(
                    column.as_primitive::<TimestampNanosecondType>().value(row),
                )),
            };
            let at = at.unwrap_or_else(|| panic!("a {} out of range", column.data_type()));
            json!(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }
        DataType::Date32 | DataType::Date64 => {
            let days = cast(&DataType::Date32)
                .as_primitive::<Date32Type>()
                .value(0);
            let date = arrow::temporal_conversions::date32_to_datetime(days)
                .unwrap_or_else(|| panic!("day {days} out of range"))
                .date();
            json!(date.format("%Y-%m-%d").to_string())
        }
        DataType::List(_) => {
            let list = column.as_list::<i32>().value(row);
            Value::Array(
                (0..list.len())
                    .map(|i| json_cell(list.as_ref(), i))
                    .collect(),
            )
        }
        other => panic!("a {other} column has no golden form"),
    }
}

/// Orders JSON values: NULL first, then booleans, numbers, strings and arrays, each by value.
fn order(a: &Value, b: &Value) -> Ordering {
    let rank = |v: &Value| match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    };
    match (a, b) {
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .partial_cmp(&b.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(a), Value::String(b)) => a.cmp(b),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// `result` (rows of `view`) as a [`Table`] sorted by `keys`, then by the whole row.
fn table(view: &str, keys: &[&str], result: &QueryResult) -> Table {
    let columns: Vec<String> = result
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let at: Vec<usize> = keys
        .iter()
        .map(|key| {
            columns
                .iter()
                .position(|c| c == key)
                .unwrap_or_else(|| panic!("{view} has no key column {key}"))
        })
        .collect();
    let mut rows: Vec<Vec<Value>> = result
        .batches
        .iter()
        .flat_map(|batch| {
            (0..batch.num_rows()).map(move |row| {
                batch
                    .columns()
                    .iter()
                    .map(|column| json_cell(column.as_ref(), row))
                    .collect()
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        at.iter()
            .map(|&i| order(&a[i], &b[i]))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| {
                Value::from(a.clone())
                    .to_string()
                    .cmp(&Value::from(b.clone()).to_string())
            })
    });
    Table { columns, rows }
}

/// The golden file's text of `table`: a JSON array with one object per row, every column in
/// the view's order, one column a line.
fn render(table: &Table) -> String {
    if table.rows.is_empty() {
        return "[]\n".to_owned();
    }
    let rows: Vec<String> = table
        .rows
        .iter()
        .map(|row| {
            let cells: Vec<String> = table
                .columns
                .iter()
                .zip(row)
                .map(|(column, value)| format!("    {}: {value}", Value::from(column.as_str())))
                .collect();
            format!("  {{\n{}\n  }}", cells.join(",\n"))
        })
        .collect();
    format!("[\n{}\n]\n", rows.join(",\n"))
}

/// The golden file of `view` in `case`, and its path as written in messages.
fn golden_path(case: &str, view: &str) -> (PathBuf, String) {
    let relative = format!("expected/{case}/{view}.json");
    (
        testdata().join(&relative),
        format!("testdata/views/metrics/{relative}"),
    )
}

/// The rows of a golden file, `None` when it does not exist.
fn read_golden(path: &Path) -> Option<Vec<Map<String, Value>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("reading {}: {e}", path.display()),
    };
    Some(
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not a JSON array of objects: {e}", path.display())),
    )
}

/// The row's name in messages: its key columns and their values.
fn row_name(keys: &[&str], value: impl Fn(&str) -> Value) -> String {
    keys.iter()
        .map(|key| format!("{key}={}", value(key)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How `actual` differs from the golden `expected` rows, one line per difference, each naming
/// the row by its `keys` and the column.
fn differences(keys: &[&str], actual: &Table, expected: &[Map<String, Value>]) -> Vec<String> {
    let mut out = Vec::new();
    let golden_columns: BTreeSet<&str> = expected
        .iter()
        .flat_map(|row| row.keys().map(String::as_str))
        .collect();
    for column in &actual.columns {
        if !expected.is_empty() && !golden_columns.contains(column.as_str()) {
            out.push(format!("column {column}: new, not in the golden file"));
        }
    }
    for column in &golden_columns {
        if !actual.columns.iter().any(|c| c == column) {
            out.push(format!(
                "column {column}: in the golden file, not in the view"
            ));
        }
    }
    let mut by_name: HashMap<String, &Vec<Value>> = HashMap::new();
    for row in &actual.rows {
        let name = row_name(keys, |key| {
            actual
                .columns
                .iter()
                .position(|c| c == key)
                .map_or(Value::Null, |i| row[i].clone())
        });
        if by_name.insert(name.clone(), row).is_some() {
            out.push(format!("row {name}: more than one row has this key"));
        }
    }
    let object = |row: &Vec<Value>| -> Value {
        Value::Object(
            actual
                .columns
                .iter()
                .cloned()
                .zip(row.iter().cloned())
                .collect(),
        )
    };
    let mut seen = BTreeSet::new();
    for golden in expected {
        let name = row_name(keys, |key| golden.get(key).cloned().unwrap_or(Value::Null));
        seen.insert(name.clone());
        let Some(row) = by_name.get(&name) else {
            out.push(format!(
                "row {name}: missing; expected {}",
                Value::from(golden.clone())
            ));
            continue;
        };
        for (column, value) in actual.columns.iter().zip(row.iter()) {
            if let Some(want) = golden.get(column)
                && want != value
            {
                out.push(format!(
                    "row {name}, column {column}: expected {want}, got {value}"
                ));
            }
        }
    }
    for (name, row) in &by_name {
        if !seen.contains(name) {
            out.push(format!(
                "row {name}: not in the golden file: {}",
                object(row)
            ));
        }
    }
    out
}

/// Whether the golden files are to be rewritten ([`BLESS`] set to anything but empty or `0`).
fn blessing() -> bool {
    std::env::var(BLESS).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Runs `views` over the scenario with `case`'s settings on DataFusion and compares each with
/// its golden file, or rewrites the file when [`blessing`].
async fn check_goldens(case: Case, views: &[&str]) {
    let (_dir, warehouse) = local_scenario((case.settings)()).await;
    let mut failures = Vec::new();
    for view in views {
        let keys = METRICS_VIEWS
            .iter()
            .find(|(name, _)| name == view)
            .map(|(_, keys)| *keys)
            .unwrap_or_else(|| panic!("{view} is not in METRICS_VIEWS"));
        let result = warehouse
            .query(
                &format!("SELECT * FROM `${{dataset}}{view}`"),
                &Params::new(),
            )
            .await
            .unwrap_or_else(|e| panic!("{view}: {e}"));
        let actual = table(view, keys, &result);
        let (path, shown) = golden_path(case.name, view);
        if blessing() {
            let dir = path.parent().expect("a golden file sits in a folder");
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
            std::fs::write(&path, render(&actual))
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            continue;
        }
        match read_golden(&path) {
            None => failures.push(format!("{view}: no golden file {shown}")),
            Some(expected) => {
                let differ = differences(keys, &actual, &expected);
                if !differ.is_empty() {
                    failures.push(format!(
                        "{view} differs from {shown} ({} settings):\n  {}",
                        case.name,
                        differ.join("\n  ")
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended, rewrite the golden files with \
         `{BLESS}=1 cargo test -p gma-pipeline --lib views::metrics_tests` and review their diff.",
        failures.join("\n\n")
    );
}

#[tokio::test]
async fn pr_cycle_time_and_review_latency_of_the_scenario() {
    check_goldens(DEFAULT, PULL_REQUEST_VIEWS).await;
}

#[tokio::test]
async fn dora_views_of_the_scenario() {
    check_goldens(DEFAULT, DEPLOYMENT_VIEWS).await;
}

#[tokio::test]
async fn workflow_reliability_of_the_scenario() {
    check_goldens(DEFAULT, WORKFLOW_VIEWS).await;
}

#[tokio::test]
async fn incident_labels_and_production_environments_come_from_the_settings() {
    let views: Vec<&str> = METRICS_VIEWS.iter().map(|(name, _)| *name).collect();
    check_goldens(SETTINGS, &views).await;
}

/// Every view has a golden file in every case, each checked by one of the tests above, and no
/// other file sits in `expected/` (when blessing, such files are removed).
#[test]
fn every_golden_file_is_checked() {
    let views: BTreeSet<&str> = METRICS_VIEWS.iter().map(|(name, _)| *name).collect();
    let grouped: Vec<&str> = [PULL_REQUEST_VIEWS, DEPLOYMENT_VIEWS, WORKFLOW_VIEWS].concat();
    assert_eq!(
        grouped.len(),
        views.len(),
        "a view in two groups: {grouped:?}"
    );
    assert_eq!(grouped.into_iter().collect::<BTreeSet<_>>(), views);
    let wanted: BTreeSet<PathBuf> = CASES
        .iter()
        .flat_map(|case| views.iter().map(|view| golden_path(case.name, view).0))
        .collect();
    let expected = testdata().join("expected");
    let mut found = BTreeSet::new();
    for dir in std::fs::read_dir(&expected).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            found.insert(file.path());
        }
        if dir.path().is_file() {
            found.insert(dir.path());
        }
    }
    let stray: Vec<&PathBuf> = found.difference(&wanted).collect();
    if blessing() {
        for path in stray {
            std::fs::remove_file(path)
                .unwrap_or_else(|e| panic!("removing {}: {e}", path.display()));
        }
        return;
    }
    let root = gma_testkit::repo_root();
    let shown = |paths: Vec<&PathBuf>| -> Vec<String> {
        paths
            .into_iter()
            .map(|path| {
                path.strip_prefix(&root)
                    .unwrap_or(path)
                    .display()
                    .to_string()
            })
            .collect()
    };
    let missing = shown(wanted.difference(&found).collect());
    let stray = shown(stray);
    assert!(
        stray.is_empty() && missing.is_empty(),
        "golden files no test checks (remove them, or rewrite with {BLESS}=1): {stray:?}\n\
         missing golden files (write them with {BLESS}=1): {missing:?}"
    );
}

/// Runs the scenario's metrics views with `settings` on DataFusion and on bqemulator (in a
/// dataset named after `test`) and asserts that both give the same rows.
async fn assert_same_rows_on_bigquery(test: &str, settings: ViewSettings) {
    let settings = settings.reading_payloads();
    let (_dir, local) = local_scenario(settings.clone()).await;
    let (mut events, mut payloads) = scenario_events();
    // BigQuery also gets redeliveries a day later (the local store refuses a second copy of a
    // delivery): unique_events keeps the first copy, and the later one must change no metric, even for
    // the first push of #1 (its commit a1a1...), now received after #1 was merged.
    let first_push = payloads
        .iter()
        .position(|p| p.contains("a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"))
        .unwrap();
    let redelivered: Vec<usize> = [first_push]
        .into_iter()
        .chain((0..events.len()).filter(|i| i % 5 == 0))
        .collect();
    for i in redelivered {
        let mut copy = events[i].clone();
        copy.received_micros += 86_400_000_000;
        events.push(copy);
        payloads.push(payloads[i].clone());
    }
    with_dataset(emulator_config(test), |bigquery| async move {
        bigquery
            .append(&crate::sql::EVENTS, events_batch(&events, &payloads))
            .await
            .unwrap();
        let views = with_dependencies(METRICS_VIEWS.iter().filter_map(|(name, _)| find(name)));
        bigquery.create_views(&settings, &views).await.unwrap();
        let mut differ = Vec::new();
        for (view, _) in METRICS_VIEWS {
            let sql = format!("SELECT * FROM `${{dataset}}{view}`");
            let mut on_bigquery = rows(&bigquery, &sql).await.unwrap();
            let mut on_datafusion = rows(&local, &sql).await.unwrap();
            assert!(!on_datafusion.is_empty(), "{view} has rows");
            on_bigquery.sort_by_key(|row| serde_json::to_string(row).unwrap());
            on_datafusion.sort_by_key(|row| serde_json::to_string(row).unwrap());
            if on_bigquery != on_datafusion {
                differ.push(format!(
                    "{view}:\n  bigquery:   {}\n  datafusion: {}",
                    serde_json::to_string(&on_bigquery).unwrap(),
                    serde_json::to_string(&on_datafusion).unwrap()
                ));
            }
        }
        assert!(differ.is_empty(), "{}", differ.join("\n"));
    })
    .await;
}

#[tokio::test]
async fn metrics_views_give_the_same_rows_on_bigquery_and_datafusion() {
    assert_same_rows_on_bigquery("metrics", ViewSettings::default()).await;
}

#[tokio::test]
async fn metrics_views_with_settings_give_the_same_rows_on_bigquery_and_datafusion() {
    assert_same_rows_on_bigquery("metrics_settings", sev1_and_live()).await;
}
