//! Statuses that depend on the sink: a closed store, a sink that is down, a sink that is slow to
//! make an event durable.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use gma_store::event::Event;
use gma_store::event_sink::EventSink;
use gma_store::{AppendOutcome, EventStore, Spool, SpoolGuard, StoreError};
use gma_testkit::Delivery;
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

use crate::support::{Ingest, SECRET, delivery, padded_json};

#[tokio::test]
async fn a_closed_store_is_503_with_retry_after_and_unhealthy() {
    let app = Ingest::start();
    app.store.close().await;
    let response = app.send(&delivery("s-1")).await;
    assert_eq!(response.status, 503);
    assert_eq!(response.headers["retry-after"], "5");
    assert!(response.error().contains("nothing was stored"));
    let health = app.get("/healthz").await;
    assert_eq!(health.status, 503);
}

/// A sink that takes nothing: every call says it is unavailable.
#[derive(Debug)]
struct Down;

fn down() -> StoreError {
    StoreError::Unavailable {
        reason: "the sink is down for the test".into(),
    }
}

#[async_trait]
impl EventSink for Down {
    fn kind(&self) -> &'static str {
        "down"
    }

    async fn land(&self, _: &Event, _: Option<SpoolGuard>) -> Result<AppendOutcome, StoreError> {
        Err(down())
    }

    async fn spool(&self) -> Result<Spool, StoreError> {
        Err(down())
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        Err(down())
    }
}

#[tokio::test]
async fn a_sink_that_is_down_is_503_for_small_and_spooled_bodies_and_unhealthy() {
    let app = Ingest::with_sink(|_| Arc::new(Down), |_| {});
    let small = app.send(&delivery("down-1")).await;
    let large = Delivery::json("down-2", "create", padded_json(1 << 20), SECRET);
    let large = app.send(&large).await;
    for answer in [&small, &large] {
        assert_eq!(answer.status, 503);
        assert_eq!(answer.headers["retry-after"], "5");
        let message = answer.error();
        assert!(
            message.contains("nothing was stored") && message.contains("down for the test"),
            "{message}"
        );
    }
    let health = app.get("/healthz").await;
    assert_eq!(health.status, 503);
    assert!(health.error().contains("down for the test"));
    let metrics = app.metrics().await;
    for line in [
        r#"gma_ingest_requests_total{status="503",event="issues"} 1"#,
        r#"gma_ingest_requests_total{status="503",event="unverified"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    assert_eq!(app.stored_count(), 0);
}

/// The store behind a gate: each landing says it arrived, then waits for a permit the test
/// hands out.
#[derive(Debug)]
struct Gated {
    store: Arc<EventStore>,
    gate: Arc<Gate>,
}

/// What a [`Gated`] sink and its test share.
#[derive(Debug)]
struct Gate {
    /// A permit per landing that has started.
    arrived: Semaphore,
    /// A permit per landing allowed to go on.
    open: Semaphore,
}

impl Gate {
    /// Waits until a landing has started.
    async fn arrival(&self) {
        let arrived = tokio::time::timeout(Duration::from_secs(30), self.arrived.acquire());
        arrived
            .await
            .expect("a landing starts")
            .expect("the gate stays open")
            .forget();
    }
}

#[async_trait]
impl EventSink for Gated {
    fn kind(&self) -> &'static str {
        "gated"
    }

    async fn land(
        &self,
        event: &Event,
        spool: Option<SpoolGuard>,
    ) -> Result<AppendOutcome, StoreError> {
        self.gate.arrived.add_permits(1);
        self.gate
            .open
            .acquire()
            .await
            .expect("the gate stays open")
            .forget();
        self.store.land(event, spool).await
    }

    async fn spool(&self) -> Result<Spool, StoreError> {
        self.store.spool().await
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        self.store.check_writable().await
    }

    fn register_metrics(&self, registry: &mut Registry) {
        self.store.register_metrics(registry);
    }
}

/// A router over a gated store, and the gate.
fn gated() -> (Arc<Ingest>, Arc<Gate>) {
    let gate = Arc::new(Gate {
        arrived: Semaphore::new(0),
        open: Semaphore::new(0),
    });
    let shared = Arc::clone(&gate);
    let app = Ingest::with_sink(
        |store| {
            Arc::new(Gated {
                store,
                gate: shared,
            })
        },
        |_| {},
    );
    (Arc::new(app), gate)
}

/// Waits until `/metrics` holds `line`.
async fn metrics_show(app: &Ingest, line: &str) {
    for _ in 0..500 {
        if app.metrics().await.contains(line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{line} never showed in\n{}", app.metrics().await);
}

#[tokio::test]
async fn a_slow_sink_holds_the_answer_until_the_event_is_durable() {
    let (app, gate) = gated();
    let sending = tokio::spawn({
        let app = Arc::clone(&app);
        async move { app.send(&delivery("slow-1")).await.status }
    });
    gate.arrival().await;
    metrics_show(&app, "gma_ingest_in_flight 1").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !sending.is_finished(),
        "answered before the event was durable"
    );
    assert_eq!(app.stored_count(), 0);
    gate.open.add_permits(1);
    assert_eq!(sending.await.unwrap(), 201);
    assert_eq!(app.stored_count(), 1);
    metrics_show(&app, "gma_ingest_in_flight 0").await;
}

#[tokio::test]
async fn a_delivery_whose_client_left_mid_landing_still_lands_with_its_spooled_payload() {
    let (app, gate) = gated();
    let body = padded_json(1 << 20);
    let d = Delivery::json("gone-1", "create", body.clone(), SECRET);
    let sending = tokio::spawn({
        let app = Arc::clone(&app);
        async move { app.call(d.request().map(Body::from)).await.status }
    });
    gate.arrival().await;
    sending.abort();
    assert!(sending.await.unwrap_err().is_cancelled());
    gate.open.add_permits(1);
    for _ in 0..500 {
        if app.stored_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rows = app.rows();
    assert_eq!(rows.len(), 1, "the append outlives the request");
    assert_eq!(rows[0]["delivery_id"], "gone-1");
    assert_eq!(rows[0]["payload"].as_str().map(str::len), Some(body.len()));
}
