//! What lands, read back through the local warehouse: payloads byte-identical with their lifted
//! columns, large deliveries spooled to a file, and concurrent deliveries sharing fsyncs.
//! (Form-encoded deliveries are tested on the router in `gma-ingest`.)

use std::collections::HashMap;

use gma_testkit::{Delivery, Fixture, sign};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::support::{SECRET, TestApp};

/// What each lifted column must hold for a payload, read straight from its JSON.
fn expected_lifted(payload: &Value) -> Vec<(&'static str, Value)> {
    let at = |path: &[&str]| {
        let mut value = payload;
        for key in path {
            value = value.get(key).unwrap_or(&Value::Null);
        }
        match value {
            Value::String(_) | Value::Number(_) => value.clone(),
            _ => Value::Null,
        }
    };
    vec![
        ("action", at(&["action"])),
        ("installation_id", at(&["installation", "id"])),
        ("enterprise", at(&["enterprise", "slug"])),
        ("organization", at(&["organization", "login"])),
        ("organization_id", at(&["organization", "id"])),
        ("repository", at(&["repository", "full_name"])),
        ("repository_id", at(&["repository", "id"])),
        ("sender", at(&["sender", "login"])),
        ("sender_id", at(&["sender", "id"])),
    ]
}

fn check_row(fixture: &Fixture, row: &Map<String, Value>) {
    let name = fixture.path.display();
    let payload = row["payload"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no payload"));
    assert!(
        payload.as_bytes() == fixture.body.as_slice(),
        "{name}: payload is not byte-identical"
    );
    assert_eq!(row["event"], fixture.event.as_str(), "{name}");
    assert_eq!(row["payload_size"], fixture.body.len() as i64, "{name}");
    assert_eq!(
        row["payload_sha256"],
        hex::encode(Sha256::digest(&fixture.body)),
        "{name}"
    );
    let json: Value = serde_json::from_slice(&fixture.body).unwrap();
    for (column, expected) in expected_lifted(&json) {
        let actual = row.get(column).cloned().unwrap_or(Value::Null);
        assert_eq!(actual, expected, "{name}: column {column}");
    }
}

/// Delivers every fixture, then checks each row against its file, before and after the log is
/// compacted into Parquet.
async fn land_all(fixtures: &[Fixture]) {
    assert!(!fixtures.is_empty());
    let app = TestApp::start().await;
    let mut by_id = HashMap::new();
    for (i, fixture) in fixtures.iter().enumerate() {
        let id = format!("fixture-{i:04}");
        let d = Delivery::json(&id, &fixture.event, fixture.body.clone(), SECRET);
        let (status, body) = d.send(&app.client, &app.base_url).await.unwrap();
        assert_eq!(status, 201, "{}: {body}", fixture.path.display());
        by_id.insert(id, fixture);
    }
    for phase in ["log", "parquet"] {
        let rows = app.query("SELECT * FROM events").await;
        assert_eq!(rows.len(), fixtures.len(), "{phase}");
        for row in &rows {
            let id = row["delivery_id"].as_str().unwrap();
            check_row(by_id[id], row);
        }
        let rows = app
            .query(
                "SELECT JSON_VALUE(payload, '$.action') IS NOT DISTINCT FROM action AS action_ok,
                        JSON_VALUE(payload, '$.repository.full_name') IS NOT DISTINCT FROM repository AS repo_ok,
                        TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), received, SECOND) AS age_secs
                 FROM events",
            )
            .await;
        for row in &rows {
            assert_eq!(
                (&row["action_ok"], &row["repo_ok"]),
                (&Value::Bool(true), &Value::Bool(true)),
                "{phase}"
            );
            let age = row["age_secs"].as_i64().unwrap();
            assert!((0..600).contains(&age), "{phase}: received {age} s ago");
        }
        app.store.compact_now().await.unwrap();
    }
}

#[tokio::test]
async fn every_testdata_payload_lands_byte_identical_with_its_lifted_columns() {
    let fixtures = gma_testkit::fixtures();
    assert!(
        fixtures.len() >= 19,
        "testdata/webhooks holds {} payloads",
        fixtures.len()
    );
    land_all(&fixtures).await;
}

#[tokio::test]
async fn every_shared_payload_lands_when_the_corpus_exists() {
    match gma_testkit::shared_payloads() {
        Some(fixtures) => {
            assert!(
                fixtures.len() >= 273,
                "the shared corpus holds {} payloads",
                fixtures.len()
            );
            land_all(&fixtures).await;
        }
        None => eprintln!("../shared/webhook-payloads is absent; the testdata fixtures cover this"),
    }
}

fn spool_files(app: &TestApp) -> usize {
    std::fs::read_dir(app.data.join("wal").join("payloads"))
        .unwrap()
        .count()
}

#[tokio::test]
async fn a_large_body_streams_to_a_spool_file_and_reads_back_whole() {
    let app = TestApp::start().await;
    let mut body =
        br#"{"action":"created","repository":{"full_name":"o/r","id":5},"padding":""#.to_vec();
    body.extend((0..3_000_000).map(|i| b"abcdefghij"[i % 10]));
    body.extend_from_slice(br#""}"#);

    let mut refused = Delivery::json("large-0", "create", body.clone(), SECRET);
    refused.signature = Some(sign("wrong", &body));
    assert_eq!(app.status_of(&refused).await, 401);
    assert_eq!(spool_files(&app), 0, "a refused body leaves no spool file");

    let d = Delivery::json("large-1", "create", body.clone(), SECRET);
    assert_eq!(app.status_of(&d).await, 201);
    assert_eq!(spool_files(&app), 1);
    assert_eq!(app.status_of(&d).await, 200);
    assert_eq!(spool_files(&app), 1, "a duplicate's spool file is removed");

    let fixture = Fixture {
        event: "create".into(),
        path: "large-1".into(),
        body,
    };
    for phase in ["log", "parquet"] {
        let rows = app.query("SELECT * FROM events").await;
        assert_eq!(rows.len(), 1, "{phase}");
        check_row(&fixture, &rows[0]);
        app.store.compact_now().await.unwrap();
    }
    assert_eq!(
        spool_files(&app),
        0,
        "compaction removes the spool file it folded in"
    );
}

#[tokio::test]
async fn concurrent_deliveries_share_fsyncs_and_a_graceful_stop_seals_them() {
    let mut app = TestApp::start().await;
    let sends = (0..300).map(|i| {
        let d = Delivery::json(
            &format!("gc-{i}"),
            "push",
            format!(r#"{{"n":{i}}}"#),
            SECRET,
        );
        let client = app.client.clone();
        let url = app.base_url.clone();
        async move { d.send(&client, &url).await.unwrap().0 }
    });
    let statuses = futures::future::join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let metrics = app.store.metrics();
    let commits = metrics.commits.get();
    assert!(
        commits < 300,
        "300 concurrent deliveries took {commits} fsyncs"
    );
    let rows = app
        .query("SELECT COUNT(DISTINCT delivery_id) AS n, COUNT(*) AS c FROM events")
        .await;
    assert_eq!(
        (rows[0]["n"].as_i64(), rows[0]["c"].as_i64()),
        (Some(300), Some(300))
    );

    app.stop().await;
    let layout = gma_store::Layout::new(&app.data);
    assert_eq!(
        layout.list_segments().unwrap(),
        Vec::<u64>::new(),
        "the log was sealed and compacted"
    );
    let rows = app.query("SELECT COUNT(*) AS c FROM events").await;
    assert_eq!(rows[0]["c"].as_i64(), Some(300));
}
