//! The `gma` binary under test, an in-process `gma serve` over a fresh data directory on a free
//! loopback port, and queries of a data directory.

use std::path::Path;
use std::sync::Arc;

use gma_ingest::{IngestConfig, WebhookSecret};
pub use gma_pipeline::testing::query_dir;
use gma_store::{EventStore, StoreOptions};
use serde_json::Value;
use tokio::sync::oneshot;

/// The `gma` binary this test binary was built with.
pub fn gma() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_gma"))
}

pub const SECRET: &str = "test-secret-\u{1F511}";

pub struct TestApp {
    pub base_url: String,
    pub store: Arc<EventStore>,
    /// Keeps the temporary folder alive for the test's length.
    _dir: tempfile::TempDir,
    /// The data directory: inside `dir` unless the test chose another.
    pub data: std::path::PathBuf,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub async fn start() -> Self {
        Self::with_config(|_| {}).await
    }

    pub async fn with_config(adjust: impl FnOnce(&mut IngestConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        Self::in_dir(dir, data, adjust).await
    }

    /// A server whose data directory is `data`; `dir` is removed when the app drops.
    pub async fn in_dir(
        dir: tempfile::TempDir,
        data: std::path::PathBuf,
        adjust: impl FnOnce(&mut IngestConfig),
    ) -> Self {
        let mut config =
            IngestConfig::new(vec![WebhookSecret::new("GITHUB_WEBHOOK_SECRET", SECRET)]);
        adjust(&mut config);
        let store = Arc::new(EventStore::open(&data, StoreOptions::default()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(gma_ingest::serve(listener, config, store.clone(), async {
            let _ = rx.await;
        }));
        Self {
            base_url,
            store,
            _dir: dir,
            data,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// Sends `delivery` and returns the status.
    pub async fn status_of(&self, delivery: &gma_testkit::Delivery) -> u16 {
        delivery.send(&self.client, &self.base_url).await.unwrap().0
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .unwrap()
    }

    /// Rows of `sql` over the data directory, as JSON objects.
    pub async fn query(&self, sql: &str) -> Vec<serde_json::Map<String, Value>> {
        query_dir(&self.data, sql).await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// A run of a command: its arguments and the variables set for it.
pub type ArgsAndEnv<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
