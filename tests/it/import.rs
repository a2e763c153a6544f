//! `gma import` as users run it: an export directory of the repository's webhook fixtures (plain
//! and gzip, both line shapes, one bad line) imported, checked with `gma query`, re-imported
//! (nothing new), and refused while `gma serve` holds the data directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gma_testkit::GmaServer;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::gma;

fn run(args: &[&str], data: &Path) -> Output {
    Command::new(gma())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("GMA_LOG", "warn")
        .output()
        .unwrap()
}

/// The repository's webhook fixtures: (event, payload bytes), in path order.
pub(crate) fn fixtures() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/webhooks");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .flat_map(|e| {
            std::fs::read_dir(e.path())
                .unwrap()
                .flatten()
                .map(|f| f.path())
        })
        .filter(|p| p.to_string_lossy().ends_with(".payload.json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let event = p
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (event, std::fs::read(&p).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn imports_an_export_directory_then_queries_it_and_skips_it_the_second_time() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("export");
    std::fs::create_dir_all(export.join("gz")).unwrap();
    let data = tmp.path().join("data");
    let fixtures = fixtures();
    assert!(fixtures.len() >= 10, "testdata/webhooks has the fixtures");

    // Even fixtures: GMA's export shape with the payload as a string, in a plain file; odd
    // ones: the headers shape with the payload object, gzip-compressed in a subdirectory.
    let mut plain = String::new();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut expected = Vec::new();
    for (i, (event, payload)) in fixtures.iter().enumerate() {
        let id = format!("imp-{i:03}");
        let text = std::str::from_utf8(payload).unwrap();
        if i % 2 == 0 {
            let line = json!({"delivery_id": id, "signature": "sha256=00", "event": event,
                              "received": format!("2026-01-{:02} 10:00:00.000001 UTC", 1 + i % 5),
                              "payload": text});
            plain.push_str(&line.to_string());
            plain.push('\n');
            expected.push((id, payload.clone()));
        } else {
            let object: Value = serde_json::from_str(text).unwrap();
            let line = json!({"headers": {"X-GitHub-Delivery": id, "X-GitHub-Event": event,
                                          "X-GitHub-Hook-ID": "5"},
                              "received": 1_767_225_600 + i, "payload": object});
            gz.write_all(line.to_string().as_bytes()).unwrap();
            gz.write_all(b"\n").unwrap();
            // Stored: the object's text as it stands in the line.
            expected.push((id, serde_json::to_vec(&object).unwrap()));
        }
    }
    plain.push_str("{\"delivery_id\":\"broken\"\n");
    std::fs::write(export.join("part-0.ndjson"), &plain).unwrap();
    std::fs::write(export.join("gz/part-1.json.gz"), gz.finish().unwrap()).unwrap();
    let bad_line = plain.lines().count();

    let out = run(&["import", export.to_str().unwrap()], &data);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bad lines alone do not fail the import: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("Imported {} events from 2 files", fixtures.len())),
        "{stdout}"
    );
    assert!(stdout.contains("bad lines:  1"), "{stdout}");
    let where_ = format!(
        "{}:{bad_line}: not valid JSON",
        export.join("part-0.ndjson").display()
    );
    assert!(stdout.contains(&where_), "{stdout}");

    let out = run(
        &[
            "query",
            "--format",
            "ndjson",
            "SELECT delivery_id, payload_sha256, payload_size, \
          repository, sender, hook_id FROM events ORDER BY delivery_id",
        ],
        &data,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), fixtures.len());
    for ((id, payload), row) in expected.iter().zip(&rows) {
        assert_eq!(row["delivery_id"], id.as_str());
        assert_eq!(
            row["payload_sha256"],
            hex::encode(Sha256::digest(payload)),
            "{id}"
        );
        assert_eq!(row["payload_size"], payload.len(), "{id}");
        let parsed: Value = serde_json::from_slice(payload).unwrap();
        assert_eq!(
            row.get("repository").cloned().unwrap_or(Value::Null),
            parsed["repository"]["full_name"],
            "{id}"
        );
        assert_eq!(
            row.get("sender").cloned().unwrap_or(Value::Null),
            parsed["sender"]["login"]
        );
    }
    assert_eq!(rows[1]["hook_id"], 5, "a header of the headers shape");

    let out = run(&["import", export.to_str().unwrap()], &data);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("Imported 0 events"), "{stdout}");
    assert!(
        stdout.contains(&format!("duplicates: {}", fixtures.len())),
        "{stdout}"
    );
}

#[tokio::test]
async fn refuses_a_data_directory_a_server_is_writing_and_fails_on_a_missing_path() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let input = tmp.path().join("in.ndjson");
    std::fs::write(&input, "{}\n").unwrap();
    let mut server = GmaServer::start(gma(), &data, "s", &[]).await;
    let out = run(&["import", input.to_str().unwrap()], &data);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("holds its LOCK"), "{stderr}");
    assert_eq!(server.terminate(), Some(0), "{}", server.log());

    let out = run(&["import", "/no/such/export"], &data);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/export"));
}

#[tokio::test]
async fn imports_into_bigquery_once() {
    use arrow::array::AsArray;
    use gma_pipeline::warehouse::bigquery::BigQueryWarehouse;
    use gma_pipeline::warehouse::{Params, Warehouse};

    let config = gma_pipeline::testing::emulator_config("import");
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = fixtures();
    // Every fixture once, the first one twice more (a redelivery within the export).
    let mut lines = String::new();
    for (i, (event, payload)) in fixtures.iter().chain(fixtures.iter().take(1)).enumerate() {
        let id = format!("bq-{:03}", i % fixtures.len());
        let line = json!({"delivery_id": id, "signature": "sha256=00", "event": event,
                          "received": "2026-01-02T03:04:05.000006Z",
                          "payload": std::str::from_utf8(payload).unwrap()});
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    let export = tmp.path().join("export.ndjson");
    std::fs::write(&export, &lines).unwrap();
    let import = || {
        Command::new(gma())
            .args(["import", "--sink", "bigquery", export.to_str().unwrap()])
            .arg("--data-dir")
            .arg(tmp.path().join("data"))
            .args(["--bigquery-project", &config.project])
            .args(["--bigquery-dataset", &config.dataset])
            .args(["--bigquery-endpoint", config.endpoint.as_deref().unwrap()])
            .env("GMA_LOG", "warn")
            .output()
            .unwrap()
    };

    let out = import();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = fixtures.len();
    assert!(stdout.contains(&format!("Imported {n} events")), "{stdout}");
    assert!(stdout.contains("duplicates: 1 "), "{stdout}");
    assert!(
        stdout.contains(&format!("written:    {n} rows to")),
        "{stdout}"
    );

    let out = import();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("Imported 0 events"), "{stdout}");
    assert!(
        stdout.contains(&format!("duplicates: {} ", n + 1)),
        "{stdout}"
    );

    let warehouse = BigQueryWarehouse::connect(config).unwrap();
    let result = warehouse
        .query(
            "SELECT delivery_id, payload_sha256, repository FROM `${dataset}events` ORDER BY delivery_id",
            &Params::new(),
        )
        .await
        .unwrap();
    let ids: Vec<String> = result
        .batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_string::<i32>()
                .iter()
                .map(|v| v.unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let expected: Vec<String> = (0..n).map(|i| format!("bq-{i:03}")).collect();
    assert_eq!(ids, expected, "each event stored once");
    let first_sha = result.batches[0].column(1).as_string::<i32>().value(0);
    assert_eq!(first_sha, hex::encode(Sha256::digest(&fixtures[0].1)));
    warehouse.delete_dataset().await.unwrap();
}

#[tokio::test]
async fn shards_split_the_files_between_tasks() {
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("export");
    std::fs::create_dir_all(&export).unwrap();
    let fixtures = fixtures();
    for (i, (event, payload)) in fixtures.iter().enumerate() {
        let line = json!({"delivery_id": format!("shard-{i:03}"), "signature": "sha256=00",
                          "event": event, "received": "2026-01-02T03:04:05Z",
                          "payload": std::str::from_utf8(payload).unwrap()});
        std::fs::write(export.join(format!("part-{i:03}.ndjson")), line.to_string()).unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    for index in 0..2 {
        let data = tmp.path().join(format!("data-{index}"));
        let out = Command::new(gma())
            .args([
                "import",
                "--shard",
                &format!("{index}/2"),
                export.to_str().unwrap(),
            ])
            .arg("--data-dir")
            .arg(&data)
            .env("GMA_LOG", "warn")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("Shard {index}/2: importing ")),
            "{stderr}"
        );
        let out = run(
            &[
                "query",
                "--format",
                "ndjson",
                "SELECT delivery_id FROM events",
            ],
            &data,
        );
        let ids: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["delivery_id"].to_string())
            .collect();
        assert!(
            !ids.is_empty() && ids.len() < fixtures.len(),
            "shard {index}/2 imported {} of {} files",
            ids.len(),
            fixtures.len()
        );
        for id in ids {
            assert!(seen.insert(id.clone()), "{id} was imported by both shards");
        }
    }
    assert_eq!(
        seen.len(),
        fixtures.len(),
        "the two shards together missed files"
    );
}
