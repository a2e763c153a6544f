//! The refresh over a data directory: every view reads the same rows from the typed tables as
//! from the payloads (the reference definitions), and every way events land reaches the tables
//! exactly once.

mod common;

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use gma_pipeline::testing::{events_batch, events_of, fixture_events, metrics_scenario_events};
use gma_pipeline::views::ViewSettings;
use gma_pipeline::warehouse::local::LocalWarehouse;
use gma_pipeline::warehouse::local::compact;
use gma_pipeline::warehouse::{Warehouse, request_refresh};
use gma_refresh::{Compaction, RefreshOptions, refresh, refresh_data_dir};
use gma_store::event::Event;
use gma_store::{EventStore, StoreOptions};

use common::{assert_each_delivery_once, assert_views_agree, table_rows};

/// A data directory with its store, a warehouse appending through the store and reading the
/// typed tables, and one reading the payloads (the reference).
struct Dir {
    _dir: tempfile::TempDir,
    typed: Arc<LocalWarehouse>,
    reference: LocalWarehouse,
}

impl Dir {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EventStore::open(dir.path(), StoreOptions::default()).unwrap());
        let typed = Arc::new(LocalWarehouse::with_event_store(store).await.unwrap());
        let reference = LocalWarehouse::open(dir.path())
            .await
            .unwrap()
            .with_view_settings(ViewSettings::default().reading_payloads());
        Self {
            _dir: dir,
            typed,
            reference,
        }
    }

    async fn land(&self, events: &[Event], payloads: &[String]) {
        self.typed
            .append(&gma_pipeline::sql::EVENTS, events_batch(events, payloads))
            .await
            .unwrap();
    }

    async fn refresh(&self) -> gma_refresh::RefreshSummary {
        refresh(
            Arc::clone(&self.typed) as Arc<dyn Warehouse>,
            &ViewSettings::default(),
            &RefreshOptions::default(),
        )
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn typed_tables_give_every_view_the_rows_of_the_payloads() {
    let dir = Dir::new().await;
    let (events, payloads) = fixture_events();
    dir.land(&events, &payloads).await;
    let summary = dir.refresh().await;
    assert_eq!(summary.built.len(), 16, "{summary}");
    assert!(summary.total_rows() > 0, "{summary}");
    assert_views_agree(dir.typed.as_ref(), &dir.reference).await;
    assert_each_delivery_once(dir.typed.as_ref()).await;
}

#[tokio::test]
async fn typed_tables_give_the_metrics_scenario_the_rows_of_the_payloads() {
    let dir = Dir::new().await;
    let (events, payloads) = metrics_scenario_events();
    dir.land(&events, &payloads).await;
    dir.refresh().await;
    assert_views_agree(dir.typed.as_ref(), &dir.reference).await;
    let settings = ViewSettings {
        incident_labels: vec!["SEV1".to_owned(), "Incident".to_owned()],
        production_environments: vec!["live".to_owned()],
        ..ViewSettings::default()
    };
    let typed = LocalWarehouse::open(dir._dir.path())
        .await
        .unwrap()
        .with_view_settings(settings.clone());
    let reference = LocalWarehouse::open(dir._dir.path())
        .await
        .unwrap()
        .with_view_settings(settings.reading_payloads());
    assert_views_agree(&typed, &reference).await;
}

#[tokio::test]
async fn typed_tables_give_the_shared_corpus_the_rows_of_the_payloads() {
    // The 273 payloads of ../shared/webhook-payloads, when that folder is there.
    let Some(fixtures) = gma_testkit::shared_payloads() else {
        eprintln!("../shared/webhook-payloads is not here; skipped");
        return;
    };
    let dir = Dir::new().await;
    let (events, payloads) = events_of(&fixtures);
    dir.land(&events, &payloads).await;
    dir.refresh().await;
    assert_views_agree(dir.typed.as_ref(), &dir.reference).await;
    assert_each_delivery_once(dir.typed.as_ref()).await;
}

#[tokio::test]
async fn a_refresh_with_nothing_new_appends_nothing() {
    let dir = Dir::new().await;
    let (events, payloads) = fixture_events();
    dir.land(&events, &payloads).await;
    let first = dir.refresh().await;
    let before = table_rows(dir.typed.as_ref()).await;
    let second = dir.refresh().await;
    assert_eq!(second.total_rows(), 0, "{second}");
    assert!(second.built.is_empty(), "{second}");
    assert_eq!(table_rows(dir.typed.as_ref()).await, before);
    assert!(first.total_rows() > 0);
}

/// `events` moved to `received` around `at`, a microsecond apart, with fresh delivery ids.
fn moved(
    events: &[Event],
    payloads: &[String],
    at: chrono::DateTime<Utc>,
    tag: &str,
) -> (Vec<Event>, Vec<String>) {
    let events = events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let mut event = event.clone();
            event.headers.delivery_id = format!("{tag}-{i:03}");
            event.received_micros = at.timestamp_micros() + i as i64;
            event
        })
        .collect();
    (events, payloads.to_vec())
}

#[tokio::test]
async fn live_events_and_imports_of_old_events_reach_the_tables_once() {
    let dir = Dir::new().await;
    let (events, payloads) = fixture_events();
    dir.land(&events, &payloads).await;
    dir.refresh().await;

    // As `gma serve` lands them: received now.
    let (live, live_payloads) = moved(&events, &payloads, Utc::now(), "live");
    dir.land(&live, &live_payloads).await;
    let summary = dir.refresh().await;
    assert!(summary.total_rows() > 0, "{summary}");
    assert_views_agree(dir.typed.as_ref(), &dir.reference).await;

    // As `gma import` lands them: received years ago, after the tables were current. Without
    // a request the incremental window does not reach them...
    let old_at = Utc::now() - TimeDelta::days(3 * 365);
    let (old, old_payloads) = moved(&events, &payloads, old_at, "imported");
    dir.land(&old, &old_payloads).await;
    assert_eq!(dir.refresh().await.total_rows(), 0);
    // ... and with the request the import writes, the next refresh takes them.
    let until = old_at + TimeDelta::microseconds(old.len() as i64);
    request_refresh(
        dir.typed.as_ref(),
        old_at,
        until,
        old.len() as u64,
        "import",
    )
    .await
    .unwrap();
    let summary = dir.refresh().await;
    assert!(summary.total_rows() > 0, "{summary}");
    assert_views_agree(dir.typed.as_ref(), &dir.reference).await;
    assert_each_delivery_once(dir.typed.as_ref()).await;
    // The request is taken once.
    assert_eq!(dir.refresh().await.total_rows(), 0);
}

#[tokio::test]
async fn a_refresh_stopped_midway_is_finished_by_the_next_without_doubles() {
    let dir = Dir::new().await;
    let (events, payloads) = fixture_events();
    dir.land(&events, &payloads).await;
    // Stopped soon after it started: the tables in flight may have appended some days, and
    // none of them moved its watermark.
    let options = RefreshOptions {
        concurrency: 1,
        ..RefreshOptions::default()
    };
    let stopping = options.clone();
    let warehouse = Arc::clone(&dir.typed) as Arc<dyn Warehouse>;
    let run =
        tokio::spawn(async move { refresh(warehouse, &ViewSettings::default(), &stopping).await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    options.shutdown.cancel();
    let _ = run.await.unwrap();
    dir.refresh().await;
    assert_views_agree(dir.typed.as_ref(), &dir.reference).await;
    assert_each_delivery_once(dir.typed.as_ref()).await;
}

#[tokio::test]
async fn rows_appended_before_a_crash_are_not_appended_again() {
    let dir = Dir::new().await;
    let (events, payloads) = fixture_events();
    dir.land(&events, &payloads).await;
    dir.refresh().await;
    let before = table_rows(dir.typed.as_ref()).await;
    // The worst moment to die: every row appended, no watermark written.
    std::fs::remove_dir_all(dir._dir.path().join("tables").join("watermarks")).unwrap();
    let summary = dir.refresh().await;
    assert_eq!(summary.built.len(), 16, "a first refresh again: {summary}");
    assert_eq!(summary.total_rows(), 0, "{summary}");
    assert_eq!(table_rows(dir.typed.as_ref()).await, before);
    assert_views_agree(dir.typed.as_ref(), &dir.reference).await;
}

#[tokio::test]
async fn refreshing_a_data_directory_keeps_its_folders_compact() {
    let dir = Dir::new().await;
    let (events, payloads) = fixture_events();
    let warehouse = Arc::new(LocalWarehouse::open(dir._dir.path()).await.unwrap());
    // Twelve rounds of arrivals, each refreshed as `gma query` does: an append per round.
    for round in 0..12 {
        let (live, live_payloads) = moved(
            &events[..4],
            &payloads[..4],
            Utc::now(),
            &format!("round{round}"),
        );
        dir.land(&live, &live_payloads).await;
        refresh_data_dir(
            dir._dir.path(),
            Arc::clone(&warehouse),
            &RefreshOptions::default(),
            Compaction::AfterAppends,
        )
        .await
        .unwrap();
    }
    for (_, table) in gma_pipeline::views::typed_views() {
        let folders =
            compact::live_files_by_folder(&dir._dir.path().join("tables").join(table.name))
                .unwrap();
        for (folder, files) in folders {
            assert!(
                files < compact::MIN_FILES,
                "{}: {files} files",
                folder.display()
            );
        }
    }
    assert_views_agree(dir.typed.as_ref(), &dir.reference).await;
    assert_each_delivery_once(dir.typed.as_ref()).await;
}
