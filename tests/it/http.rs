//! Every status of the webhook endpoint over real HTTP, and the other routes.

use gma_testkit::{Delivery, sign};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{SECRET, TestApp};

const BODY: &str = r#"{"action":"opened","sender":{"login":"octocat","id":1}}"#;

fn delivery(id: &str) -> Delivery {
    Delivery::json(id, "issues", BODY, SECRET)
}

async fn error_of(app: &TestApp, d: &Delivery) -> (u16, String) {
    let (status, body) = d.send(&app.client, &app.base_url).await.unwrap();
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {body}"))
        .to_owned();
    (status, message)
}

async fn stored_count(app: &TestApp) -> i64 {
    app.query("SELECT COUNT(*) AS n FROM events").await[0]["n"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn lands_once_and_answers_duplicate_after() {
    let app = TestApp::start().await;
    let d = delivery("6f1c3a4e-0000-4000-8000-000000000001");
    assert_eq!(
        d.send(&app.client, &app.base_url).await.unwrap(),
        (201, json!({"status": "ok"}))
    );
    assert_eq!(
        d.send(&app.client, &app.base_url).await.unwrap(),
        (200, json!({"status": "duplicate"}))
    );
    // A redelivery carries the same id with a different body and signature: still one row.
    let mut redelivered = Delivery::json(&d.id, "issues", r#"{"action":"edited"}"#, SECRET);
    redelivered
        .extra
        .push(("x-github-hook-id".into(), "9".into()));
    assert_eq!(app.status_of(&redelivered).await, 200);
    let rows = app.query("SELECT delivery_id, action FROM events").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["action"], "opened");
}

#[tokio::test]
async fn missing_delivery_headers_are_400_naming_the_header() {
    let app = TestApp::start().await;
    let mut d = delivery("");
    let (status, message) = error_of(&app, &d).await;
    assert_eq!(status, 400);
    assert!(message.contains("X-GitHub-Delivery"), "{message}");
    d.id = "id-1".into();
    d.event = String::new();
    let (status, message) = error_of(&app, &d).await;
    assert_eq!(status, 400);
    assert!(message.contains("X-GitHub-Event"), "{message}");
    assert_eq!(stored_count(&app).await, 0);
}

#[tokio::test]
async fn missing_wrong_or_malformed_signatures_are_401() {
    let app = TestApp::start().await;
    let mut d = delivery("sig-1");
    d.signature = None;
    let (status, message) = error_of(&app, &d).await;
    assert_eq!(
        (status, message.contains("X-Hub-Signature-256")),
        (401, true),
        "{message}"
    );

    d.extra.push((
        "x-hub-signature".into(),
        "sha1=0123456789abcdef0123456789abcdef01234567".into(),
    ));
    let (status, message) = error_of(&app, &d).await;
    assert_eq!(
        (status, message.contains("SHA-1")),
        (401, true),
        "{message}"
    );

    d.signature = Some(sign("some-other-secret", BODY.as_bytes()));
    let (status, message) = error_of(&app, &d).await;
    assert_eq!(
        (status, message.contains("does not match")),
        (401, true),
        "{message}"
    );

    d.signature = Some("sha256=not-hex".into());
    assert_eq!(error_of(&app, &d).await.0, 401);

    // Signed over a different body than the one sent (a body changed in transit).
    d.signature = Some(sign(SECRET, br#"{"action":"closed"}"#));
    assert_eq!(error_of(&app, &d).await.0, 401);
    assert_eq!(stored_count(&app).await, 0);
}

#[tokio::test]
async fn empty_and_non_json_bodies_are_400() {
    let app = TestApp::start().await;
    let (status, message) = error_of(&app, &Delivery::json("e-1", "push", "", SECRET)).await;
    assert_eq!(
        (status, message.contains("empty")),
        (400, true),
        "{message}"
    );
    for (i, body) in ["not json", "{\"a\":", "[1,2,3]", "{\"a\":1} {\"b\":2}"]
        .iter()
        .enumerate()
    {
        let (status, message) = error_of(
            &app,
            &Delivery::json(&format!("j-{i}"), "push", *body, SECRET),
        )
        .await;
        assert_eq!(
            (status, message.contains("JSON")),
            (400, true),
            "{body}: {message}"
        );
    }
    assert_eq!(stored_count(&app).await, 0);
}

#[tokio::test]
async fn wrong_method_path_and_content_type() {
    let app = TestApp::start().await;
    let response = app.get("/webhook").await;
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("POST"));

    let response = app
        .client
        .post(format!("{}/nope", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    let mut d = delivery("ct-1");
    d.content_type = "text/plain".into();
    let (status, message) = error_of(&app, &d).await;
    assert_eq!(
        (status, message.contains("application/json")),
        (415, true),
        "{message}"
    );
    d.content_type = "application/json; charset=utf-8".into();
    assert_eq!(app.status_of(&d).await, 201);
}

#[tokio::test]
async fn two_secrets_are_accepted_and_a_third_is_refused() {
    let app = TestApp::with_config(|config| {
        config.secrets =
            gma_ingest::secret::parse_secret_list("GMA_WEBHOOK_SECRETS", "old-secret\nnew-secret");
    })
    .await;
    let send = |id: &str, secret: &str| Delivery::json(id, "push", BODY, secret);
    assert_eq!(app.status_of(&send("r-1", "old-secret")).await, 201);
    assert_eq!(app.status_of(&send("r-2", "new-secret")).await, 201);
    assert_eq!(app.status_of(&send("r-3", "third-secret")).await, 401);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"gma_ingest_signature_matches_total{secret="GMA_WEBHOOK_SECRETS:1"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"gma_ingest_signature_matches_total{secret="GMA_WEBHOOK_SECRETS:2"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains("old-secret") && !metrics.contains("new-secret"));
    assert_eq!(stored_count(&app).await, 2);
}

fn padded_json(len: usize) -> Vec<u8> {
    let head = br#"{"action":"created","padding":""#;
    let tail = br#""}"#;
    let mut body = head.to_vec();
    body.resize(len - tail.len(), b'a');
    body.extend_from_slice(tail);
    body
}

#[tokio::test]
async fn exactly_the_limit_lands_and_one_byte_more_is_413() {
    let app = TestApp::start().await;
    let limit = gma_ingest::DEFAULT_MAX_BODY_BYTES as usize;
    assert_eq!(limit, 26_214_400);
    let over = Delivery::json("big-over", "create", padded_json(limit + 1), SECRET);
    let (status, message) = error_of(&app, &over).await;
    assert_eq!(
        (status, message.contains("26214400")),
        (413, true),
        "{message}"
    );

    let exact = Delivery::json("big-exact", "create", padded_json(limit), SECRET);
    assert_eq!(app.status_of(&exact).await, 201);
    let rows = app
        .query("SELECT payload_size, LENGTH(payload) AS len, action FROM events")
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["payload_size"], limit as i64);
    assert_eq!(rows[0]["len"], limit as i64);
    assert_eq!(rows[0]["action"], "created");
}

/// Sends raw bytes over TCP (what reqwest will not do: lie about the length, chunk without a
/// length) and returns the status line's code.
async fn raw_request(base_url: &str, head: &str, body: &[u8], close_write: bool) -> u16 {
    let address = base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (and close) before the whole body is written; that is the point.
    let _ = stream.write_all(body).await;
    if close_write {
        stream.shutdown().await.unwrap();
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

fn head(extra: &str) -> String {
    let signature = sign(SECRET, BODY.as_bytes());
    format!(
        "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Delivery: raw-1\r\nX-GitHub-Event: issues\r\nX-Hub-Signature-256: {signature}\r\n{extra}\r\n"
    )
}

#[tokio::test]
async fn a_truncated_body_is_400_and_stores_nothing() {
    let app = TestApp::start().await;
    let body = &BODY.as_bytes()[..BODY.len() / 2];
    let status = raw_request(
        &app.base_url,
        &head(&format!("Content-Length: {}\r\n", BODY.len())),
        body,
        true,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(stored_count(&app).await, 0);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413_without_reading_it_all() {
    let app = TestApp::with_config(|config| config.max_body_bytes = 1000).await;
    let chunk = vec![b'a'; 4096];
    let mut body = format!("{:x}\r\n", chunk.len()).into_bytes();
    body.extend_from_slice(&chunk);
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    let status = raw_request(
        &app.base_url,
        &head("Transfer-Encoding: chunked\r\n"),
        &body,
        false,
    )
    .await;
    assert_eq!(status, 413);
    // A declared length over the limit is refused before any of the body is read.
    let status = raw_request(&app.base_url, &head("Content-Length: 5000\r\n"), b"", true).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn a_closed_store_is_503_with_retry_after_and_unhealthy() {
    let app = TestApp::start().await;
    app.store.close().await;
    let response = app
        .client
        .post(format!("{}/webhook", app.base_url))
        .header("content-type", "application/json")
        .header("x-github-delivery", "s-1")
        .header("x-github-event", "issues")
        .header("x-hub-signature-256", sign(SECRET, BODY.as_bytes()))
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("nothing was stored")
    );
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 503);
}

#[tokio::test]
async fn healthz_version_and_metrics() {
    let app = TestApp::start().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        json!({"status": "ok", "sink": "local"})
    );
    let version: Value = app.get("/version").await.json().await.unwrap();
    assert_eq!(version["name"], "gma");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));

    delivery("m-1")
        .send(&app.client, &app.base_url)
        .await
        .unwrap();
    let mut bad = delivery("m-2");
    bad.signature = Some(sign("wrong", BODY.as_bytes()));
    bad.send(&app.client, &app.base_url).await.unwrap();
    let response = app.get("/metrics").await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    for line in [
        r#"gma_ingest_requests_total{status="201",event="issues"} 1"#,
        r#"gma_ingest_requests_total{status="401",event="unverified"} 1"#,
        "gma_ingest_landing_seconds_count 1",
        "gma_store_fsync_batch_events_count 1",
        "gma_store_commits_total 1",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    assert!(!text.contains(SECRET));
}

#[tokio::test]
async fn shutdown_finishes_a_delivery_in_flight_and_refuses_new_connections() {
    let mut app = TestApp::start().await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let half = BODY.len() / 2;
    let head = head(&format!("Content-Length: {}\r\n", BODY.len()));
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&BODY.as_bytes()[..half]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let stopping = tokio::spawn(async move {
        app.stop().await;
        app
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        tokio::net::TcpStream::connect(&address).await.is_err(),
        "a stopping server accepts no new connection"
    );
    stream.write_all(&BODY.as_bytes()[half..]).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let app = stopping.await.unwrap();
    let rows = app.query("SELECT delivery_id FROM events").await;
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn hook_headers_are_recorded_in_any_case_and_absent_ones_are_null() {
    let app = TestApp::start().await;
    let mut d = delivery("hook-1");
    d.extra = vec![
        ("X-GITHUB-HOOK-ID".into(), "123456".into()),
        (
            "x-github-hook-installation-target-type".into(),
            "integration".into(),
        ),
        ("X-GitHub-Hook-Installation-Target-ID".into(), "987".into()),
    ];
    assert_eq!(app.status_of(&d).await, 201);
    assert_eq!(app.status_of(&delivery("hook-2")).await, 201);
    let rows = app
        .query("SELECT delivery_id, hook_id, target_type, target_id, signature, event FROM events ORDER BY delivery_id")
        .await;
    assert_eq!(rows[0]["hook_id"], 123456);
    assert_eq!(rows[0]["target_type"], "integration");
    assert_eq!(rows[0]["target_id"], 987);
    assert_eq!(rows[0]["signature"], sign(SECRET, BODY.as_bytes()));
    assert_eq!(rows[0]["event"], "issues");
    assert!(rows[1].get("hook_id").is_none_or(Value::is_null));
    assert!(rows[1].get("target_type").is_none_or(Value::is_null));
}
