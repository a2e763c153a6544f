//! Helpers for the tests of this crate and of the crates built on it (feature `test-util`):
//! events from the fixtures, a data directory with its store and warehouse, queries of a data
//! directory, clients of the fake GitHub, and emulator datasets.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use chrono::{TimeZone, Utc};
use gma_store::event::{Event, lift};
use gma_store::schema::EventBatchBuilder;
use gma_store::testing::EventBuilder;
use gma_store::{EventStore, StoreOptions};
use gma_testkit::github::FakeGitHub;
use serde_json::{Map, Value};

use crate::github::{AppKey, GitHubClient, GitHubConfig, RetryPolicy};
use crate::warehouse::local::LocalWarehouse;
use crate::warehouse::{Params, Warehouse};

#[cfg(feature = "bigquery")]
mod bigquery;

#[cfg(feature = "bigquery")]
pub use bigquery::{emulator_config, with_dataset};

/// Events from every `testdata/webhooks` payload, received at distinct microseconds, with their
/// payloads as text.
pub fn fixture_events() -> (Vec<Event>, Vec<String>) {
    events_of(&gma_testkit::fixtures())
}

/// The deliveries of the metrics scenario (`testdata/views/metrics/events.ndjson`: pull
/// requests, deployments, incidents and workflow runs of one week), in the file's order, with
/// their payloads byte for byte.
///
/// # Panics
/// When the file is missing or a line is not a delivery.
pub fn metrics_scenario_events() -> (Vec<Event>, Vec<String>) {
    /// One line of the file.
    #[derive(serde::Deserialize)]
    struct Delivery<'a> {
        delivery_id: String,
        event: String,
        received_at: String,
        signature: String,
        hook_id: Option<i64>,
        target_type: Option<String>,
        target_id: Option<i64>,
        #[serde(borrow)]
        payload: &'a serde_json::value::RawValue,
    }
    let path = gma_testkit::repo_root().join("testdata/views/metrics/events.ndjson");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let at = || format!("{}:{}", path.display(), i + 1);
            let delivery: Delivery =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{}: {e}", at()));
            let received_micros = chrono::DateTime::parse_from_rfc3339(&delivery.received_at)
                .unwrap_or_else(|e| panic!("{}: received_at: {e}", at()))
                .timestamp_micros();
            let payload = delivery.payload.get().to_owned();
            let headers = gma_store::event::DeliveryHeaders {
                delivery_id: delivery.delivery_id,
                event: delivery.event,
                signature: delivery.signature,
                hook_id: delivery.hook_id,
                target_type: delivery.target_type,
                target_id: delivery.target_id,
            };
            let event = Event::inline(
                headers,
                received_micros,
                bytes::Bytes::from(payload.clone()),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", at()));
            (event, payload)
        })
        .unzip()
}

/// Events from `fixtures`, received at distinct microseconds a day and a bit apart, with their
/// payloads as text; every other one carries hook target headers.
///
/// # Panics
/// When there are fewer than ten fixtures (`testdata/webhooks` is missing) or one is not a
/// JSON object in UTF-8.
pub fn events_of(fixtures: &[gma_testkit::Fixture]) -> (Vec<Event>, Vec<String>) {
    assert!(fixtures.len() >= 10, "testdata/webhooks is missing");
    let base = Utc
        .with_ymd_and_hms(2026, 3, 4, 5, 6, 7)
        .single()
        .map(|t| t.timestamp_micros())
        .unwrap_or_default();
    fixtures
        .iter()
        .enumerate()
        .map(|(i, fixture)| {
            let name = fixture.path.display();
            let text =
                String::from_utf8(fixture.body.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            if let Err(e) = lift(&fixture.body) {
                panic!("{name}: {e}");
            }
            let mut event = EventBuilder::new(&format!("delivery-{i:03}"), &fixture.body)
                .event(&fixture.event)
                .signature(&format!("sha256={i:064x}"))
                .hook_id(9_007_199_254_740_993 + i as i64)
                .received_micros(base + i as i64 * 86_400_000_123 + 456);
            if i % 2 == 0 {
                event = event.target_type("organization").target_id(42);
            }
            (event.build(), text)
        })
        .unzip()
}

/// A fresh data directory holding `events`, and a warehouse over it (appending through its
/// store) with the views' `settings`.
///
/// # Panics
/// When the directory, the store or the append fails.
pub async fn local_warehouse_with(
    events: &[Event],
    payloads: &[String],
    settings: crate::views::ViewSettings,
) -> (tempfile::TempDir, LocalWarehouse) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(
        EventStore::open(dir.path(), StoreOptions::default()).expect("a store opens in it"),
    );
    let warehouse = LocalWarehouse::with_event_store(store)
        .await
        .expect("a warehouse over the store")
        .with_view_settings(settings);
    warehouse
        .append(&crate::sql::EVENTS, events_batch(events, payloads))
        .await
        .expect("the events are appended");
    (dir, warehouse)
}

/// The events table's rows for `events` with their `payloads`.
///
/// # Panics
/// When the rows do not make a batch (a bug in the schema).
pub fn events_batch(events: &[Event], payloads: &[String]) -> RecordBatch {
    let mut builder = EventBatchBuilder::new();
    for (event, payload) in events.iter().zip(payloads) {
        builder.append(event, payload);
    }
    builder.finish().expect("events make a batch")
}

/// Rows of `sql` over the data directory `dir`, read as `gma query` reads it (beside any
/// writer), as JSON objects.
///
/// # Panics
/// When the query fails.
pub async fn query_dir(dir: &Path, sql: &str) -> Vec<Map<String, Value>> {
    let warehouse = LocalWarehouse::open(dir)
        .await
        .expect("the local warehouse opens");
    let result = warehouse
        .query(sql, &Params::new())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    result.to_json_rows().expect("rows encode as JSON")
}

/// A data directory in a temporary folder, its event store open and a local warehouse over
/// both, as a job running beside `gma serve` sees it.
pub struct LocalSite {
    /// The temporary folder, removed on drop.
    pub dir: tempfile::TempDir,
    /// The open event store.
    pub store: Arc<EventStore>,
    /// The warehouse over the store.
    pub warehouse: Arc<LocalWarehouse>,
}

impl LocalSite {
    /// A fresh data directory.
    ///
    /// # Panics
    /// When the folder, the store or the warehouse cannot be made.
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Arc::new(
            EventStore::open(dir.path(), StoreOptions::default()).expect("a store opens in it"),
        );
        let warehouse = LocalWarehouse::with_event_store(Arc::clone(&store))
            .await
            .expect("a warehouse opens over it");
        Self {
            dir,
            store,
            warehouse: Arc::new(warehouse),
        }
    }

    /// Rows of `sql` through the site's warehouse, as JSON objects.
    ///
    /// # Panics
    /// When the query fails.
    pub async fn rows(&self, sql: &str) -> Vec<Map<String, Value>> {
        let result = self
            .warehouse
            .query(sql, &Params::new())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        result.to_json_rows().expect("rows encode as JSON")
    }
}

/// The fake GitHub's test App: [`FakeGitHub::APP_ID`] with its private key.
///
/// # Panics
/// When the bundled key does not parse (a broken checkout).
pub fn github_app() -> Arc<AppKey> {
    let key = AppKey::from_pem(
        &FakeGitHub::APP_ID.to_string(),
        FakeGitHub::private_key_pem().as_bytes(),
    )
    .expect("the test App's key parses");
    Arc::new(key)
}

/// A client of the GitHub API at `url` trying each call `attempts` times, with waits of
/// milliseconds where production waits seconds (backoff, rate limits) and no spacing of POSTs.
///
/// # Panics
/// When the client cannot be built.
pub fn github_client(url: &str, attempts: u32) -> GitHubClient {
    let mut config = GitHubConfig::new(url);
    config.retry = RetryPolicy {
        attempts,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_rate_limit_wait: Duration::from_secs(10),
        secondary_wait: Duration::from_millis(200),
        rate_limit_retries: 5,
    };
    config.mutations_per_minute = 0;
    config.timeout = Duration::from_secs(10);
    GitHubClient::new(config).expect("a GitHub client builds")
}

/// [`github_client`] of `gh`, trying each call three times.
pub fn fake_github_client(gh: &FakeGitHub) -> GitHubClient {
    github_client(gh.url(), 3)
}
