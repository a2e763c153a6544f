//! gma's webhook server: it takes GitHub's deliveries, verifies their signatures and lands each
//! event durably in the event store, answering 2xx only once it is safe.
//!
//! ```no_run
//! # async fn run(store: std::sync::Arc<gma_store::EventStore>) -> std::io::Result<()> {
//! use gma_ingest::{IngestConfig, WebhookSecret, serve};
//! let config = IngestConfig::new(vec![WebhookSecret::new("GITHUB_WEBHOOK_SECRET", "s3cret")]);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, config, store, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! Events land in an [`EventSink`]: the embedded event store, or BigQuery.
//!
//! Routes: `POST /webhook`, `GET /healthz` (200 when the sink can take writes), `GET /version`
//! and `GET /metrics` (Prometheus). The server does nothing else: recovery, archiving and views
//! are other components' work.
#![deny(missing_docs)]

mod body;
pub mod metrics;
pub mod rejection;
pub mod secret;
mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gma_store::event_sink::EventSink;
use prometheus_client::registry::Registry;
use tower::limit::ConcurrencyLimitLayer;

pub use rejection::Rejection;
pub use secret::WebhookSecret;

use metrics::IngestMetrics;

/// The largest body GitHub sends: 25 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 26_214_400;

/// How the webhook server behaves.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// The secrets a delivery's signature may match (several during a rotation).
    pub secrets: Vec<WebhookSecret>,
    /// Largest body accepted; larger ones get 413. Example: 26214400 (25 MiB).
    pub max_body_bytes: u64,
    /// Bodies larger than this stream to a spool file instead of memory.
    pub spill_bytes: usize,
    /// Longest time a body may take to arrive.
    pub body_timeout: Duration,
    /// Webhook requests served at once; more wait for a slot.
    pub max_concurrent_requests: usize,
    /// After a shutdown signal, how long in-flight requests may take to finish.
    pub shutdown_timeout: Duration,
    /// What `GET /version` reports.
    pub version: String,
}

impl IngestConfig {
    /// The defaults, with `secrets`.
    pub fn new(secrets: Vec<WebhookSecret>) -> Self {
        Self {
            secrets,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            spill_bytes: 512 * 1024,
            body_timeout: Duration::from_secs(60),
            max_concurrent_requests: 1024,
            shutdown_timeout: Duration::from_secs(25),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Errors of starting the server.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// No secret was configured.
    #[error(
        "no webhook secret is configured: set GITHUB_WEBHOOK_SECRET to the secret of the GitHub webhook (or list several in GMA_WEBHOOK_SECRETS, or in a file named by GMA_WEBHOOK_SECRETS_FILE)"
    )]
    NoSecret,
    /// A secret is empty.
    #[error("webhook secret {0} is empty; an empty secret would accept anyone's deliveries")]
    EmptySecret(String),
}

/// Checks a configuration before serving.
///
/// # Errors
/// [`IngestError::NoSecret`] or [`IngestError::EmptySecret`].
pub fn validate(config: &IngestConfig) -> Result<(), IngestError> {
    if config.secrets.is_empty() {
        return Err(IngestError::NoSecret);
    }
    if let Some(empty) = config.secrets.iter().find(|s| s.is_empty()) {
        return Err(IngestError::EmptySecret(empty.id().to_owned()));
    }
    Ok(())
}

/// What the handlers share.
pub(crate) struct App {
    config: IngestConfig,
    store: Arc<dyn EventSink>,
    metrics: IngestMetrics,
    registry: Registry,
}

/// Builds the server's routes over `store` (any [`EventSink`]).
pub fn router(config: IngestConfig, store: Arc<dyn EventSink>) -> Router {
    let metrics = IngestMetrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    store.register_metrics(&mut registry);
    let limit = config.max_concurrent_requests.max(1);
    let app = Arc::new(App {
        config,
        store,
        metrics,
        registry,
    });
    Router::new()
        .route(
            "/webhook",
            post(webhook::webhook)
                .layer(ConcurrencyLimitLayer::new(limit))
                .fallback(method_not_allowed),
        )
        .route("/healthz", get(healthz).fallback(method_not_allowed))
        .route("/version", get(version).fallback(method_not_allowed))
        .route("/metrics", get(render_metrics).fallback(method_not_allowed))
        .fallback(not_found)
        .with_state(app)
}

/// Serves `router(config, store)` on `listener` until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish (up to the configured limit) and closes the sink
/// (the local store seals and compacts its log).
///
/// # Errors
/// The I/O error of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: IngestConfig,
    store: Arc<dyn EventSink>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let drain_limit = config.shutdown_timeout;
    let app = router(config, Arc::clone(&store));
    let (signalled_tx, mut signalled_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("Shutting down: no new connections; finishing in-flight requests.");
        let _ = signalled_tx.send(true);
    });
    let drain_timeout = async move {
        let _ = signalled_rx.wait_for(|signalled| *signalled).await;
        tokio::time::sleep(drain_limit).await;
    };
    tokio::select! {
        result = server => result?,
        () = drain_timeout => {
            tracing::warn!(limit_secs = drain_limit.as_secs(), "In-flight requests did not finish in time; closing them.");
        }
    }
    store.close().await;
    tracing::info!(sink = store.kind(), "Stopped.");
    Ok(())
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    match app.store.check_writable().await {
        Ok(()) => {
            Json(serde_json::json!({ "status": "ok", "sink": app.store.kind() })).into_response()
        }
        Err(error) => Rejection::StoreUnavailable(error).into_response(),
    }
}

async fn version(State(app): State<Arc<App>>) -> Response {
    Json(serde_json::json!({ "name": "gma", "version": app.config.version })).into_response()
}

async fn render_metrics(State(app): State<Arc<App>>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &app.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn method_not_allowed() -> Response {
    Rejection::MethodNotAllowed.into_response()
}

async fn not_found() -> Response {
    Rejection::NotFound.into_response()
}
