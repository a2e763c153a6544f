//! The router over a store in a fresh temporary directory (or any sink), requests sent to it
//! without a socket, and what the store holds.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use gma_ingest::{IngestConfig, WebhookSecret};
use gma_store::event_sink::EventSink;
use gma_store::{EventStore, StoreOptions};
use gma_testkit::Delivery;
use serde_json::{Map, Value};
use tower::ServiceExt;

/// The secret deliveries are signed with.
pub const SECRET: &str = "test-secret-\u{1F511}";

/// Longest a request may take before the test fails instead of hanging.
const CALL_LIMIT: Duration = Duration::from_secs(60);

/// A small issues payload.
pub const BODY: &str = r#"{"action":"opened","sender":{"login":"octocat","id":1}}"#;

/// An `issues` delivery `id` of [`BODY`], signed with [`SECRET`].
pub fn delivery(id: &str) -> Delivery {
    Delivery::json(id, "issues", BODY, SECRET)
}

/// A JSON object of exactly `len` bytes.
pub fn padded_json(len: usize) -> Vec<u8> {
    let head = br#"{"action":"created","padding":""#;
    let tail = br#""}"#;
    let mut body = head.to_vec();
    body.resize(len - tail.len(), b'a');
    body.extend_from_slice(tail);
    body
}

/// What the router answered.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `error` of a JSON error body.
    pub fn error(&self) -> String {
        let body = self.json();
        body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {body}"))
            .to_owned()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

/// The router over an [`EventStore`] in a temporary directory, or over a sink around it.
pub struct Ingest {
    router: Router,
    /// The store in the temporary directory.
    pub store: Arc<EventStore>,
    dir: tempfile::TempDir,
}

impl Ingest {
    /// The defaults over a fresh store.
    pub fn start() -> Self {
        Self::with_config(|_| {})
    }

    /// The defaults changed by `adjust`, over a fresh store.
    pub fn with_config(adjust: impl FnOnce(&mut IngestConfig)) -> Self {
        Self::with_sink(|store| store, adjust)
    }

    /// The defaults changed by `adjust`, over the sink `wrap` makes of a fresh store.
    pub fn with_sink(
        wrap: impl FnOnce(Arc<EventStore>) -> Arc<dyn EventSink>,
        adjust: impl FnOnce(&mut IngestConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EventStore::open(dir.path(), StoreOptions::default()).unwrap());
        let mut config =
            IngestConfig::new(vec![WebhookSecret::new("GITHUB_WEBHOOK_SECRET", SECRET)]);
        adjust(&mut config);
        Self {
            router: gma_ingest::router(config, wrap(Arc::clone(&store))),
            store,
            dir,
        }
    }

    /// Sends `request` and reads the whole answer.
    pub async fn call(&self, request: Request<Body>) -> Answer {
        let response = tokio::time::timeout(CALL_LIMIT, self.router.clone().oneshot(request))
            .await
            .expect("the router answers in time")
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Sends `delivery` to `POST /webhook`.
    pub async fn send(&self, delivery: &Delivery) -> Answer {
        self.call(delivery.request().map(Body::from)).await
    }

    /// The status `delivery` is answered with.
    pub async fn status_of(&self, delivery: &Delivery) -> u16 {
        self.send(delivery).await.status
    }

    /// `method path` without a body.
    pub async fn request(&self, method: &str, path: &str) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        self.call(request).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.request("GET", path).await
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text()
    }

    /// Every stored row, as JSON objects in the order they landed.
    pub fn rows(&self) -> Vec<Map<String, Value>> {
        gma_store::testing::stored_rows(self.dir.path())
    }

    /// How many rows are stored.
    pub fn stored_count(&self) -> usize {
        self.rows().len()
    }
}
