//! The routes besides `POST /webhook`, and requests to no route.

use gma_testkit::sign;
use serde_json::json;

use crate::support::{BODY, Ingest, SECRET, delivery};

#[tokio::test]
async fn healthz_version_and_metrics() {
    let app = Ingest::start();
    let health = app.get("/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"status": "ok", "sink": "local"}));
    let version = app.get("/version").await.json();
    assert_eq!(version["name"], "gma");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));

    app.send(&delivery("m-1")).await;
    let mut bad = delivery("m-2");
    bad.signature = Some(sign("wrong", BODY.as_bytes()));
    app.send(&bad).await;
    let response = app.get("/metrics").await;
    assert!(
        response.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text();
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
async fn wrong_methods_are_405_allowing_post_and_unknown_paths_404() {
    let app = Ingest::start();
    let response = app.get("/webhook").await;
    assert_eq!(response.status, 405);
    assert_eq!(response.headers["allow"], "POST");
    assert!(response.error().contains("POST"));

    let response = app.request("POST", "/nope").await;
    assert_eq!(response.status, 404);
    for path in ["/healthz", "/version", "/metrics"] {
        assert_eq!(app.request("POST", path).await.status, 405, "{path}");
    }
}
