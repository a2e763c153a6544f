//! Imports into a real store in a temporary directory, read back through DataFusion.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;
use gma_pipeline::testing::query_dir;
use gma_store::event::Event;
use gma_store::testing::EventBuilder;
use gma_store::{AppendOutcome, EventStore, StoreOptions};

const PUSH: &str = "{\"ref\":\"refs/heads/main\",\n  \"repository\":{\"full_name\":\"acme/widgets\",\"id\":99},\"sender\":{\"login\":\"octocat\",\"id\":1},\"note\":\"caf\u{e9} \\u00e9\"}";
const ISSUES: &str = r#"{"action":"opened","installation":{"id":7},"organization":{"login":"acme","id":42},"repository":{"full_name":"acme/widgets","id":99},"sender":{"login":"octocat","id":1}}"#;

fn export_line(id: &str, received: &str, event: &str, payload: &str) -> String {
    json!({"delivery_id": id, "signature": format!("sha256={id}"), "received": received,
           "event": event, "payload": payload})
    .to_string()
}

fn write(path: &Path, lines: &[String]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn write_gz(path: &Path, lines: &[String]) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for line in lines {
        gz.write_all(line.as_bytes()).unwrap();
        gz.write_all(b"\n").unwrap();
    }
    std::fs::write(path, gz.finish().unwrap()).unwrap();
}

fn options() -> ImportOptions {
    ImportOptions {
        // Small chunks, so that tests cross chunk boundaries and use several workers.
        chunk_bytes: 256,
        workers: 2,
        bad_line_samples: 10,
        progress_bar: false,
        memory_limit: None,
    }
}

async fn import_async(store: &std::sync::Arc<EventStore>, paths: &[PathBuf]) -> ImportSummary {
    import_files(
        std::sync::Arc::clone(store),
        discover(paths).unwrap(),
        &options(),
    )
    .await
    .unwrap()
}

fn sha(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// A `ping` delivery with an empty object, unsigned, received at the epoch.
fn ping(id: &str) -> Event {
    EventBuilder::new(id, "{}")
        .event("ping")
        .signature("")
        .received_micros(0)
        .build()
}

fn open(dir: &Path) -> std::sync::Arc<EventStore> {
    std::sync::Arc::new(EventStore::open(dir, StoreOptions::default()).unwrap())
}

#[tokio::test]
async fn both_shapes_land_byte_for_byte_with_their_lifted_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let input = tmp.path().join("in.ndjson");
    let headers_line = json!({
        "headers": {"X-GitHub-Delivery": "h-1", "x-github-event": "issues",
                    "X-Hub-Signature-256": "sha256=hh", "X-GitHub-Hook-ID": "12",
                    "X-GitHub-Hook-Installation-Target-Type": "integration",
                    "X-GitHub-Hook-Installation-Target-ID": "34"},
        "received": "2026-01-02T03:04:05.678Z",
        "payload": serde_json::from_str::<Value>(ISSUES).unwrap(),
    })
    .to_string();
    write(
        &input,
        &[
            export_line("e-1", "2026-01-01 00:00:00.123456 UTC", "push", PUSH),
            headers_line,
        ],
    );
    let store = open(&data);
    let summary = import_async(&store, &[input]).await;
    store.close().await;
    assert_eq!(summary.files, 1);
    assert_eq!(
        summary.counts,
        LineCounts {
            lines: 2,
            imported: 2,
            duplicates: 0,
            bad: 0
        }
    );
    assert_eq!(summary.written.rows, 2);
    assert_eq!(summary.written.files, 2, "one file per day");

    let got = query_dir(
        &data,
        "SELECT delivery_id, signature, CAST(received AS STRING) AS received, event, payload, \
         payload_sha256, payload_size, action, hook_id, target_type, target_id, installation_id, \
         organization, repository, repository_id, sender FROM events ORDER BY delivery_id",
    )
    .await;
    assert_eq!(got.len(), 2);
    let e = &got[0];
    assert_eq!(e["delivery_id"], "e-1");
    assert_eq!(e["signature"], "sha256=e-1");
    assert_eq!(e["event"], "push");
    assert_eq!(e["payload"], PUSH, "the string payload, byte for byte");
    assert_eq!(e["payload_sha256"], sha(PUSH));
    assert_eq!(e["payload_size"], PUSH.len());
    assert_eq!(e["repository"], "acme/widgets");
    assert_eq!(e["sender"], "octocat");
    let received = e["received"].as_str().unwrap();
    assert!(
        received.starts_with("2026-01-01") && received.contains("00:00:00.123456"),
        "{e:?}"
    );
    let h = &got[1];
    assert_eq!(h["delivery_id"], "h-1");
    assert_eq!(h["event"], "issues");
    assert_eq!(h["signature"], "sha256=hh");
    let text = serde_json::to_string(&serde_json::from_str::<Value>(ISSUES).unwrap()).unwrap();
    assert_eq!(
        h["payload"],
        text.as_str(),
        "an object payload: its text in the line"
    );
    assert_eq!(h["action"], "opened");
    assert_eq!(
        (h["hook_id"].clone(), h["target_id"].clone()),
        (json!(12), json!(34))
    );
    assert_eq!(h["target_type"], "integration");
    assert_eq!(h["installation_id"], 7);
    assert_eq!(h["organization"], "acme");
    assert_eq!(h["repository_id"], 99);
}

#[tokio::test]
async fn bad_lines_are_reported_with_file_and_line_and_the_rest_imports() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let input = tmp.path().join("mixed.jsonl");
    let good = |id: &str| export_line(id, "2026-01-01T00:00:00Z", "push", PUSH);
    write(
        &input,
        &[
            good("g-1"),                                                             // 1
            "not json".into(),                                                       // 2
            String::new(),                                                           // 3 (blank)
            json!({"event": "push", "received": 1, "payload": "{}"}).to_string(),    // 4
            json!({"delivery_id": "x", "received": 1, "payload": "{}"}).to_string(), // 5
            json!({"delivery_id": "x", "event": "push", "received": 1, "payload": "[1]"})
                .to_string(), // 6
            json!({"delivery_id": "x", "event": "push", "received": 1, "payload": 5}).to_string(), // 7
            json!({"delivery_id": "x", "event": "push", "received": "later", "payload": "{}"})
                .to_string(), // 8
            good("g-2"), // 9
            json!({"delivery_id": "x", "event": "push", "received": 1, "payload": "{\"a\":"})
                .to_string(), // 10
        ],
    );
    let store = open(&data);
    let summary = import_async(&store, std::slice::from_ref(&input)).await;
    store.close().await;
    assert_eq!(
        summary.counts,
        LineCounts {
            lines: 9,
            imported: 2,
            duplicates: 0,
            bad: 7
        }
    );
    let report: Vec<String> = summary.bad_lines.iter().map(ToString::to_string).collect();
    let at = |n: u64, what: &str| format!("{}:{n}: {what}", input.display());
    assert!(
        report[0].starts_with(&at(2, "not valid JSON")),
        "{report:?}"
    );
    assert_eq!(report[1], at(4, "no `delivery_id`"));
    assert_eq!(report[2], at(5, "no `event`"));
    assert_eq!(report[3], at(6, "the payload is JSON but not an object"));
    assert_eq!(
        report[4],
        at(
            7,
            "`payload` is neither a JSON object nor a string holding one"
        )
    );
    assert!(
        report[5].starts_with(&at(8, "bad `received`")),
        "{report:?}"
    );
    assert!(
        report[6].starts_with(&at(10, "the payload is not valid JSON")),
        "{report:?}"
    );
    let got = query_dir(&data, "SELECT delivery_id FROM events ORDER BY delivery_id").await;
    assert_eq!(got.len(), 2);
}

#[tokio::test]
async fn reads_gzip_and_directories_recursively() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dir = tmp.path().join("export");
    write(
        &dir.join("a/part-0.json"),
        &[export_line("d-1", "2026-01-01T00:00:00Z", "push", PUSH)],
    );
    std::fs::create_dir_all(dir.join("b")).unwrap();
    write_gz(
        &dir.join("b/part-1.json.gz"),
        &[
            export_line("d-2", "2026-01-05T00:00:00Z", "push", PUSH),
            export_line("d-3", "1767225600", "issues", ISSUES),
        ],
    );
    std::fs::write(dir.join("README.txt"), "not imported").unwrap();
    let store = open(&data);
    let summary = import_async(&store, &[dir]).await;
    store.close().await;
    assert_eq!(summary.files, 2);
    assert_eq!(summary.counts.imported, 3);
    let got = query_dir(
        &data,
        "SELECT delivery_id, payload FROM events ORDER BY delivery_id",
    )
    .await;
    assert_eq!(got[1]["delivery_id"], "d-2");
    assert_eq!(got[1]["payload"], PUSH);
    assert_eq!(got[2]["payload"], ISSUES);
}

#[tokio::test]
async fn dedupes_within_the_import_across_runs_and_against_appended_events() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let input = tmp.path().join("in.ndjson");
    let line = |id: &str| export_line(id, "2026-01-01T00:00:00Z", "push", PUSH);
    // "dup" twice in the file (first one wins), "landed" already stored through the log.
    write(
        &input,
        &[
            line("a"),
            line("dup"),
            line("landed"),
            line("dup"),
            line("b"),
        ],
    );
    let store = open(&data);
    let landed = ping("landed");
    assert_eq!(store.append(&landed).await.unwrap(), AppendOutcome::Landed);

    let first = import_async(&store, std::slice::from_ref(&input)).await;
    assert_eq!(
        first.counts,
        LineCounts {
            lines: 5,
            imported: 3,
            duplicates: 2,
            bad: 0
        }
    );
    let again = import_async(&store, std::slice::from_ref(&input)).await;
    assert_eq!(
        again.counts,
        LineCounts {
            lines: 5,
            imported: 0,
            duplicates: 5,
            bad: 0
        }
    );
    assert_eq!(again.written.files, 0);
    // The log path sees the imported ids too.
    let mut a = landed.clone();
    a.headers.delivery_id = "a".into();
    assert_eq!(store.append(&a).await.unwrap(), AppendOutcome::Duplicate);
    store.close().await;
    drop(store);

    // And after a restart, the index is rebuilt from the imported files.
    let store = open(&data);
    let third = import_async(&store, std::slice::from_ref(&input)).await;
    assert_eq!(third.counts.imported, 0);
    store.close().await;
    let got = query_dir(
        &data,
        "SELECT delivery_id, event FROM events ORDER BY delivery_id",
    )
    .await;
    let ids: Vec<_> = got
        .iter()
        .map(|r| r["delivery_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "dup", "landed"]);
    assert_eq!(
        got[3]["event"], "ping",
        "the stored event was kept, not replaced"
    );
}

#[tokio::test]
async fn an_unfinished_load_gives_its_ids_back() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let encoder = gma_store::RowGroupEncoder::new().unwrap();
    let store2 = std::sync::Arc::clone(&store);
    tokio::task::spawn_blocking(move || {
        let reservation = store2.reserve_blocking(&["x", "y", "x"]).unwrap();
        assert!(reservation.is_new(0) && reservation.is_new(1) && !reservation.is_new(2));
        let mut builder = gma_store::schema::EventBatchBuilder::new();
        for id in ["x", "y"] {
            builder.append(&ping(id), "{}");
        }
        let batch = builder.finish().unwrap();
        let group = encoder
            .encode("2026-01-01".into(), &batch, reservation)
            .unwrap();
        let mut writer = gma_store::BulkWriter::new(std::sync::Arc::clone(&store2));
        writer.write(group).unwrap();
        let day = store2.layout().day_dir("events", "2026-01-01");
        assert_eq!(
            std::fs::read_dir(&day).unwrap().count(),
            1,
            "the open .tmp file"
        );
        drop(writer);
        assert_eq!(
            std::fs::read_dir(&day).unwrap().count(),
            0,
            "removed when abandoned"
        );
    })
    .await
    .unwrap();
    // The release is asynchronous to the writer thread; it is queued before this request.
    let again = store.reserve(&["x", "y"]).await.unwrap();
    assert_eq!(
        again.new_count(),
        2,
        "the ids of an unfinished load are free again"
    );
    store.close().await;
}
