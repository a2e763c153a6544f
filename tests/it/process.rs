//! The `gma` binary as users run it: `gma query`'s output, a graceful SIGTERM, and SIGKILL under
//! concurrent load losing nothing that was acknowledged.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gma_testkit::{Delivery, GmaServer};
use serde_json::Value;

use crate::support::{gma, query_dir};

const SECRET: &str = "process-secret";

fn query(dir: &Path, format: &str, sql: &str) -> String {
    let output = Command::new(gma())
        .args(["query", "--format", format, "--data-dir"])
        .arg(dir)
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn serve_then_query_in_every_format_and_stop_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = GmaServer::start(gma(), &data, SECRET, &[]).await;
    let client = reqwest::Client::new();
    for (id, action) in [("q-1", "opened"), ("q-2", "closed")] {
        let d = Delivery::json(id, "issues", format!(r#"{{"action":"{action}"}}"#), SECRET);
        assert_eq!(d.send(&client, &server.base_url).await.unwrap().0, 201);
    }
    // Queryable right after the 2xx, while the server still runs and holds the log.
    let sql = "SELECT delivery_id, action FROM events ORDER BY delivery_id";
    assert_eq!(
        query(&data, "csv", sql),
        "delivery_id,action\nq-1,opened\nq-2,closed\n"
    );
    assert_eq!(
        query(&data, "ndjson", sql),
        "{\"delivery_id\":\"q-1\",\"action\":\"opened\"}\n{\"delivery_id\":\"q-2\",\"action\":\"closed\"}\n"
    );
    let json: Value = serde_json::from_str(&query(&data, "json", sql)).unwrap();
    assert_eq!(json[1]["action"], "closed");
    let table = query(&data, "table", sql);
    assert!(table.contains("| q-1         | opened |"), "{table}");
    let empty: Value =
        serde_json::from_str(&query(&data, "json", "SELECT * FROM events WHERE false")).unwrap();
    assert_eq!(empty, serde_json::json!([]));

    assert_eq!(server.terminate(), Some(0), "{}", server.log());
    assert!(
        server.log().contains("the event store is sealed"),
        "{}",
        server.log()
    );
    let segments = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "wal"))
        .count();
    assert_eq!(segments, 0, "shutdown compacts the log into Parquet");
    assert_eq!(
        query(&data, "csv", "SELECT COUNT(*) AS n FROM events"),
        "n\n2\n"
    );
}

#[tokio::test]
async fn secrets_come_from_the_variable_the_list_and_the_file_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.txt");
    std::fs::write(&file, "# rotation in progress\nfile-old\nfile-new\n").unwrap();
    let file_arg = file.to_string_lossy().into_owned();
    let args = [
        "--webhook-secrets",
        "list-a,list-b",
        "--webhook-secrets-file",
        &file_arg,
    ];
    let server = GmaServer::start(gma(), &dir.path().join("data"), SECRET, &args).await;
    let client = reqwest::Client::new();
    for (i, secret) in [SECRET, "list-a", "list-b", "file-old", "file-new"]
        .iter()
        .enumerate()
    {
        let d = Delivery::json(&format!("s-{i}"), "push", "{}", secret);
        assert_eq!(
            d.send(&client, &server.base_url).await.unwrap().0,
            201,
            "{secret}"
        );
    }
    let d = Delivery::json("s-x", "push", "{}", "unknown");
    assert_eq!(d.send(&client, &server.base_url).await.unwrap().0, 401);
    let log = server.log();
    assert!(
        log.contains("secrets.txt:3"),
        "secrets are named by where they came from: {log}"
    );
    for secret in ["list-a", "file-old", "file-new"] {
        assert!(!log.contains(secret), "{secret} reached the log");
    }
}

#[test]
fn query_errors_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let failure = |data_dir: &Path, sql: &str| {
        let output = Command::new(gma())
            .args(["query", "--data-dir"])
            .arg(data_dir)
            .arg(sql)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{sql} succeeded");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(failure(&dir.path().join("missing"), "SELECT 1").contains("--data-dir"));
    assert!(failure(dir.path(), "SELECT nope FROM events").contains("nope"));
    assert!(failure(dir.path(), "SELECT 1; SELECT 2").contains("exactly one SQL statement"));
}

#[test]
fn query_under_a_small_memory_limit_completes_by_spilling() {
    let dir = tempfile::tempdir().unwrap();
    // 1,600,000 distinct strings numbered by a window: its sort (about 40 MiB) outgrows 32 MiB,
    // which leaves room for the merges of a few partitions' spilled runs (about 4 MB each).
    let sql = "SELECT COUNT(*) AS n, MAX(rn) AS last FROM (SELECT p, ROW_NUMBER() OVER (ORDER BY p) AS rn FROM (SELECT CONCAT('row-', CAST(value * 7919 % 1600000 + 1000000 AS STRING)) AS p FROM range(1600000)))";
    let run = |sql: &str, limit: (&str, &str)| {
        let mut command = Command::new(gma());
        command
            .args(["query", "--format", "csv", "--data-dir"])
            .arg(dir.path())
            .env_remove("GMA_MEMORY_LIMIT");
        match limit {
            ("flag", size) => command.args(["--memory-limit", size]),
            (_, size) => command.env("GMA_MEMORY_LIMIT", size),
        };
        command.arg(sql).output().unwrap()
    };
    let output = run(sql, ("flag", "32MiB"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "n,last\n1600000,1600000\n"
    );
    let analyzed = run(&format!("EXPLAIN ANALYZE {sql}"), ("flag", "32MiB"));
    let plan = String::from_utf8_lossy(&analyzed.stdout);
    assert!(
        plan.split("spill_count=")
            .skip(1)
            .any(|rest| !rest.starts_with('0')),
        "the sort spilled: {plan}"
    );
    let spill = dir.path().join("tmp").join("spill");
    assert_eq!(
        std::fs::read_dir(&spill).unwrap().count(),
        0,
        "no spill files are left in {}",
        spill.display()
    );

    // A hash join cannot spill: under GMA_MEMORY_LIMIT=1MiB it fails, saying what to do.
    let join = run(
        "SELECT COUNT(*) FROM range(100000) a JOIN range(100000) b ON a.value = b.value",
        ("env", "1MiB"),
    );
    assert!(!join.status.success());
    let stderr = String::from_utf8_lossy(&join.stderr);
    assert!(
        stderr.contains("memory limit of 1 MiB") && stderr.contains("--memory-limit"),
        "{stderr}"
    );

    let bad = run("SELECT 1", ("flag", "lots"));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not a size"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn serve_without_a_secret_says_how_to_set_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(gma())
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .env_remove("GITHUB_WEBHOOK_SECRET")
        .env_remove("GMA_WEBHOOK_SECRETS")
        .env_remove("GMA_WEBHOOK_SECRETS_FILE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("GITHUB_WEBHOOK_SECRET") && stderr.contains("GMA_WEBHOOK_SECRETS"),
        "{stderr}"
    );
}

/// Sends unique deliveries from `workers` tasks until the server stops answering, recording the
/// ids that got a 2xx.
async fn load(base_url: String, round: usize, workers: usize, acked: Arc<Mutex<HashSet<String>>>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let tasks = (0..workers).map(|worker| {
        let client = client.clone();
        let base_url = base_url.clone();
        let acked = Arc::clone(&acked);
        tokio::spawn(async move {
            for n in 0.. {
                let id = format!("crash-{round}-{worker}-{n}");
                let body = format!(
                    r#"{{"action":"a","n":{n},"pad":"{}"}}"#,
                    "x".repeat(n % 3000)
                );
                match Delivery::json(&id, "push", body, SECRET)
                    .send(&client, &base_url)
                    .await
                {
                    Ok((201 | 200, _)) => {
                        acked.lock().unwrap().insert(id);
                    }
                    Ok((status, body)) => panic!("{id}: {status} {body}"),
                    Err(_) => return,
                }
            }
        })
    });
    for task in futures::future::join_all(tasks).await {
        task.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_delivery_and_stores_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let acked = Arc::new(Mutex::new(HashSet::new()));
    // Small segments and a short seal age, so kills also land mid-compaction.
    let args = ["--segment-max-bytes", "300000", "--seal-after-secs", "1"];
    for round in 0..4 {
        let mut server = GmaServer::start(gma(), &data, SECRET, &args).await;
        let loader = tokio::spawn(load(server.base_url.clone(), round, 16, Arc::clone(&acked)));
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(700 + 300 * round as u64)).await;
        server.kill_hard();
        loader.await.unwrap();
        eprintln!(
            "round {round}: {} acknowledged so far, {:?}",
            acked.lock().unwrap().len(),
            started.elapsed()
        );
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "the load generator got only {} acknowledgements",
        acked.len()
    );

    let mut server = GmaServer::start(gma(), &data, SECRET, &[]).await;
    let rows = query_dir(
        &data,
        "SELECT delivery_id, COUNT(*) AS n FROM events GROUP BY delivery_id",
    )
    .await;
    let stored: HashSet<String> = rows
        .iter()
        .map(|r| r["delivery_id"].as_str().unwrap().to_owned())
        .collect();
    let twice: Vec<_> = rows.iter().filter(|r| r["n"] != 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged deliveries lost, e.g. {:?}",
        lost.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );

    // The dedupe index came back with the restart: a redelivery of an acknowledged id is a duplicate.
    let client = reqwest::Client::new();
    let some_id = acked.iter().next().unwrap();
    let (status, _) = Delivery::json(some_id, "push", "{}", SECRET)
        .send(&client, &server.base_url)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(server.terminate(), Some(0));
}
