//! The refresh on BigQuery's emulator (bqemulator): the typed tables built by `create_views`
//! and refreshed give every view the rows the payload-reading views give on DataFusion, with
//! redeliveries and rows landing out of order as several Cloud Run instances land them.

mod common;

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use gma_pipeline::testing::{
    emulator_config, events_batch, fixture_events, local_warehouse_with, with_dataset,
};
use gma_pipeline::views::{VIEWS, ViewSettings};
use gma_pipeline::warehouse::local::LocalWarehouse;
use gma_pipeline::warehouse::{Warehouse, request_refresh};
use gma_refresh::{RefreshOptions, refresh};
use gma_store::event::Event;

use common::{assert_each_delivery_once, assert_views_agree, table_rows};

/// A data directory holding `events`, read through the payload views (the reference).
async fn reference(events: &[Event], payloads: &[String]) -> (tempfile::TempDir, LocalWarehouse) {
    local_warehouse_with(events, payloads, ViewSettings::default().reading_payloads()).await
}

#[tokio::test]
async fn typed_tables_on_bigquery_give_every_view_the_rows_of_the_payloads() {
    let (mut events, mut payloads) = fixture_events();
    // Recent, so the second part's rows fall in the incremental window.
    let base = (Utc::now() - TimeDelta::days(1)).timestamp_micros();
    let first = events[0].received_micros;
    for event in &mut events {
        event.received_micros = base - (event.received_micros - first) / 1000;
    }
    let (local_events, local_payloads) = (events.clone(), payloads.clone());
    // BigQuery also gets redeliveries a day later (the local store refuses a second copy).
    for i in (0..local_events.len()).step_by(4) {
        let mut copy = local_events[i].clone();
        copy.received_micros += 86_400_000_000;
        events.push(copy);
        payloads.push(local_payloads[i].clone());
    }
    let (half_events, half_payloads) = (events.len() / 2, payloads.len() / 2);
    let (_dir, local) = reference(&local_events, &local_payloads).await;
    with_dataset(emulator_config("refresh"), |bigquery| async move {
        let settings = ViewSettings::default();
        bigquery
            .ensure_table(&gma_pipeline::sql::EVENTS)
            .await
            .unwrap();
        bigquery
            .create_views(&settings, &VIEWS.iter().collect::<Vec<_>>())
            .await
            .unwrap();
        let warehouse: Arc<dyn Warehouse> = Arc::new(bigquery.clone());
        // Half the rows, a refresh, then the rest: some older than the watermark now (they
        // land late, within the lateness allowance), the redeliveries among them.
        bigquery
            .append(
                &gma_pipeline::sql::EVENTS,
                events_batch(&events[..half_events], &payloads[..half_payloads]),
            )
            .await
            .unwrap();
        let summary = refresh(
            Arc::clone(&warehouse),
            &settings,
            &RefreshOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(summary.built.len(), 16, "{summary}");
        bigquery
            .append(
                &gma_pipeline::sql::EVENTS,
                events_batch(&events[half_events..], &payloads[half_payloads..]),
            )
            .await
            .unwrap();
        let options = RefreshOptions {
            lateness: std::time::Duration::from_secs(3 * 86_400),
            ..RefreshOptions::default()
        };
        refresh(Arc::clone(&warehouse), &settings, &options)
            .await
            .unwrap();
        assert_views_agree(&bigquery, &local).await;
        assert_each_delivery_once(&bigquery).await;
        // Nothing new: nothing appended.
        let before = table_rows(&bigquery).await;
        let again = refresh(Arc::clone(&warehouse), &settings, &options)
            .await
            .unwrap();
        assert_eq!(again.total_rows(), 0, "{again}");
        assert_eq!(table_rows(&bigquery).await, before);
    })
    .await;
}

#[tokio::test]
async fn an_import_of_old_events_reaches_the_tables_that_replaced_views_on_bigquery() {
    let (events, payloads) = fixture_events();
    let (_dir, local) = reference(&events, &payloads).await;
    with_dataset(emulator_config("refresh_import"), |bigquery| async move {
        let settings = ViewSettings::default();
        bigquery
            .ensure_table(&gma_pipeline::sql::EVENTS)
            .await
            .unwrap();
        // A dataset from before typed tables: its event views are views, replaced by tables.
        let views: Vec<_> = VIEWS.iter().collect();
        bigquery
            .create_views(&settings.clone().reading_payloads(), &views)
            .await
            .unwrap();
        bigquery.create_views(&settings, &views).await.unwrap();
        let warehouse: Arc<dyn Warehouse> = Arc::new(bigquery.clone());
        refresh(
            Arc::clone(&warehouse),
            &settings,
            &RefreshOptions::default(),
        )
        .await
        .unwrap();
        // The tables are current; an import lands events of 2026-03 and asks for them.
        bigquery
            .append(&gma_pipeline::sql::EVENTS, events_batch(&events, &payloads))
            .await
            .unwrap();
        let micros =
            |e: &Event| chrono::DateTime::from_timestamp_micros(e.received_micros).unwrap();
        let from = events.iter().map(micros).min().unwrap();
        let until = events.iter().map(micros).max().unwrap();
        request_refresh(&bigquery, from, until, events.len() as u64, "import")
            .await
            .unwrap();
        let summary = refresh(
            Arc::clone(&warehouse),
            &settings,
            &RefreshOptions::default(),
        )
        .await
        .unwrap();
        assert!(summary.total_rows() > 0, "{summary}");
        assert_views_agree(&bigquery, &local).await;
        assert_each_delivery_once(&bigquery).await;
    })
    .await;
}
