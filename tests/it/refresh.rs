//! The typed event tables through the binary: `gma serve` keeps them current in the background,
//! `gma query` brings them up to date before it answers (also after an import of old events),
//! and `gma views refresh` killed with SIGKILL midway leaves nothing doubled or lost.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gma_pipeline::warehouse::Warehouse;
use gma_testkit::{Delivery, GmaServer};
use serde_json::{Value, json};

use crate::import::fixtures;
use crate::support::gma;

const SECRET: &str = "refresh-secret";

fn run(args: &[&str]) -> Output {
    Command::new(gma())
        .args(args)
        .env("GMA_LOG", "warn")
        .output()
        .unwrap()
}

fn succeeded(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn query(data: &Path, extra: &[&str], sql: &str) -> Vec<Value> {
    let dir = data.to_str().unwrap();
    let args = [
        &["query", "--format", "json", "--data-dir", dir][..],
        extra,
        &[sql],
    ]
    .concat();
    let out = succeeded(run(&args), sql);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// An NDJSON file of `count` deliveries cycling through the fixtures, ids `{tag}-N`, received
/// `step` seconds apart from `start` (Unix seconds).
fn import_file(dir: &Path, tag: &str, count: usize, start: i64, step: i64) -> std::path::PathBuf {
    let fixtures = fixtures();
    let mut lines = String::new();
    for i in 0..count {
        let (event, payload) = &fixtures[i % fixtures.len()];
        let object: Value = serde_json::from_slice(payload).unwrap();
        let line = json!({"headers": {"X-GitHub-Delivery": format!("{tag}-{i}"), "X-GitHub-Event": event},
                          "received": start + i as i64 * step, "payload": object});
        lines.push_str(&format!("{line}\n"));
    }
    let file = dir.join(format!("{tag}.ndjson"));
    std::fs::write(&file, lines).unwrap();
    file
}

fn import(data: &Path, file: &Path) {
    succeeded(
        run(&[
            "import",
            "--data-dir",
            data.to_str().unwrap(),
            file.to_str().unwrap(),
        ]),
        "import",
    );
}

/// Asserts that every typed table holds each delivery of its event type exactly once.
fn assert_each_delivery_once(data: &Path) {
    for (table, event) in [
        ("pull_request_events", "pull_request"),
        ("push_events", "push"),
        ("workflow_run_events", "workflow_run"),
        ("issue_comment_events", "issue_comment"),
    ] {
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM {table}) AS n, \
             (SELECT COUNT(DISTINCT delivery_id) FROM {table}) AS ids, \
             (SELECT COUNT(DISTINCT delivery_id) FROM events WHERE event = '{event}') AS stored"
        );
        let row = &query(data, &["--no-refresh"], &sql)[0];
        assert_eq!(row["n"], row["stored"], "{table}: {row}");
        assert_eq!(row["ids"], row["stored"], "{table}: {row}");
        assert!(row["n"].as_u64().unwrap() > 0, "{table}: {row}");
    }
}

#[test]
fn query_takes_an_import_of_old_events_after_the_tables_are_current() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let now = chrono::Utc::now().timestamp();
    import(
        &data,
        &import_file(tmp.path(), "recent", 60, now - 3600, 10),
    );
    let count =
        |data: &Path| query(data, &[], "SELECT COUNT(*) AS n FROM unique_events")[0]["n"].clone();
    assert_eq!(count(&data), json!(60));
    // Events of two years ago, landed after the tables were current.
    import(
        &data,
        &import_file(tmp.path(), "old", 90, now - 2 * 365 * 86_400, 3600),
    );
    assert_eq!(count(&data), json!(150));
    assert_each_delivery_once(&data);
}

#[test]
fn views_refresh_says_what_it_did_and_refuses_unknown_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    import(&data, &import_file(tmp.path(), "e", 40, 1_767_225_600, 600));
    let dir = data.to_str().unwrap();
    let out = succeeded(run(&["views", "refresh", "--data-dir", dir]), "refresh");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("built from all stored events"), "{said}");
    let out = succeeded(run(&["views", "refresh", "--data-dir", dir]), "refresh");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(": 0 rows appended"), "{said}");

    let out = run(&[
        "views",
        "refresh",
        "--data-dir",
        dir,
        "--only",
        "pull_requests",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pull_request_events"), "{stderr}");
    let out = run(&["views", "refresh", "--data-dir", &format!("{dir}-missing")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

/// Parquet files under the typed tables' folders (`tables/*_events/`).
fn typed_files(tables: &Path) -> usize {
    fn parquet_under(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| {
                let path = entry.path();
                if path.is_dir() {
                    parquet_under(&path)
                } else {
                    usize::from(path.extension().is_some_and(|x| x == "parquet"))
                }
            })
            .sum()
    }
    std::fs::read_dir(tables)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with("_events"))
        .map(|entry| parquet_under(&entry.path()))
        .sum()
}

#[test]
fn views_refresh_killed_midway_then_rerun_holds_each_delivery_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // 4,000 deliveries over two years.
    import(
        &data,
        &import_file(tmp.path(), "k", 4000, 1_704_067_200, 15_000),
    );
    let tables = data.join("tables");
    let mut child = Command::new(gma())
        .args(["views", "refresh", "--concurrency", "1", "--data-dir"])
        .arg(&data)
        .env("GMA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once a first typed table has files, the others not done.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if typed_files(&tables) > 0 || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the refresh was still running when killed"
    );
    assert!(
        typed_files(&tables) > 0,
        "some rows were appended before the kill"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    succeeded(
        run(&["views", "refresh", "--data-dir", data.to_str().unwrap()]),
        "the refresh after the kill",
    );
    assert_each_delivery_once(&data);
}

#[tokio::test]
async fn serve_keeps_the_typed_tables_current() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = GmaServer::start(gma(), &data, SECRET, &[]).await;
    let client = reqwest::Client::new();
    let (_, payload) = fixtures()
        .into_iter()
        .find(|(event, _)| event == "pull_request")
        .unwrap();
    let payload = String::from_utf8(payload).unwrap();
    let delivery = Delivery::json("serve-1", "pull_request", payload, SECRET);
    assert_eq!(
        delivery.send(&client, &server.base_url).await.unwrap().0,
        201
    );
    // In the table seconds after the 2xx, without a query refreshing it.
    let started = Instant::now();
    let sql = "SELECT COUNT(*) AS n FROM pull_request_events WHERE delivery_id = 'serve-1'";
    loop {
        if query(&data, &["--no-refresh"], sql)[0]["n"] == json!(1) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not in pull_request_events 20 s after its 2xx: {}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(server.terminate(), Some(0), "{}", server.log());
    assert_eq!(query(&data, &[], sql)[0]["n"], json!(1));
}

#[tokio::test]
async fn views_apply_then_refresh_fill_the_typed_tables_in_bigquery() {
    let config = gma_pipeline::testing::emulator_config("refresh_cli");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let fixtures = fixtures();
    let pull_requests = fixtures.iter().filter(|(e, _)| e == "pull_request").count();
    let now = chrono::Utc::now().timestamp();
    let file = import_file(tmp.path(), "bq", fixtures.len(), now - 600, 1);
    let endpoint = config.endpoint.clone().unwrap();
    let bigquery = [
        "--bigquery-project",
        &config.project,
        "--bigquery-dataset",
        &config.dataset,
        "--bigquery-endpoint",
        &endpoint,
    ];
    let data_dir = ["--data-dir", data.to_str().unwrap()];
    gma_pipeline::testing::with_dataset(config.clone(), |warehouse| async move {
        let apply = [&["views", "apply"][..], &bigquery].concat();
        succeeded(run(&apply), "views apply");
        let import = [
            &["import", "--sink", "bigquery", file.to_str().unwrap()][..],
            &data_dir,
            &bigquery,
        ]
        .concat();
        succeeded(run(&import), "import");
        let refresh = [&["views", "refresh", "--warehouse", "bigquery"][..], &data_dir, &bigquery].concat();
        let out = succeeded(run(&refresh), "views refresh");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("built from all stored events"), "{said}");
        let rows = warehouse
            .query(
                "SELECT COUNT(*) AS n, COUNT(DISTINCT delivery_id) AS ids FROM `${dataset}pull_request_events`",
                &gma_pipeline::warehouse::Params::new(),
            )
            .await
            .unwrap();
        let batch = &rows.batches[0];
        let value = |i: usize| {
            arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(batch.column(i))
                .value(0)
        };
        assert_eq!((value(0), value(1)), (pull_requests as i64, pull_requests as i64));
        // A second run appends nothing.
        let out = succeeded(run(&refresh), "views refresh again");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains(": 0 rows appended"), "{said}");
    })
    .await;
}
