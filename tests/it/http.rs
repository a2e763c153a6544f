//! The webhook endpoint over real HTTP, where the wire matters: a body shorter than its declared
//! length, a chunked body over the limit, a graceful stop with a delivery in flight. Every other
//! status, and the other routes, are tested on the router itself in `gma-ingest`.

use gma_testkit::sign;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{SECRET, TestApp};

const BODY: &str = r#"{"action":"opened","sender":{"login":"octocat","id":1}}"#;

async fn stored_count(app: &TestApp) -> i64 {
    app.query("SELECT COUNT(*) AS n FROM events").await[0]["n"]
        .as_i64()
        .unwrap()
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
