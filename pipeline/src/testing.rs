//! Events and emulator datasets for the crate's tests.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use futures::FutureExt;

use crate::warehouse::bigquery::{BigQueryConfig, BigQueryWarehouse};

use arrow::array::RecordBatch;
use chrono::{TimeZone, Utc};

use gma_store::event::{DeliveryHeaders, Event, Payload, lift};
use gma_store::schema::EventBatchBuilder;

/// A `push`-like event `id` received at `received_micros`, with `payload` lifted.
pub(crate) fn event(id: &str, received_micros: i64, payload: &str) -> Event {
    Event {
        headers: DeliveryHeaders {
            delivery_id: id.into(),
            event: "push".into(),
            signature: "sha256=00".into(),
            hook_id: Some(7),
            target_type: Some("repository".into()),
            target_id: None,
        },
        received_micros,
        lifted: lift(payload.as_bytes()).unwrap_or_default(),
        payload: Payload::Inline(Bytes::copy_from_slice(payload.as_bytes())),
        payload_size: payload.len() as u64,
    }
}

/// The emulator's configuration for a fresh dataset named after `test`.
pub(crate) fn emulator_config(test: &str) -> BigQueryConfig {
    let project = gma_testkit::emulators::bigquery_project();
    BigQueryConfig::new(
        project,
        gma_testkit::emulators::bigquery_dataset(&format!("gma_test_{test}")),
    )
}

/// Runs `body` against a warehouse over a fresh dataset, then deletes the dataset, also when
/// `body` panics.
pub(crate) async fn with_dataset<F, Fut>(config: BigQueryConfig, body: F)
where
    F: FnOnce(BigQueryWarehouse) -> Fut,
    Fut: Future<Output = ()>,
{
    let warehouse = BigQueryWarehouse::connect(config).unwrap();
    warehouse.ensure_dataset().await.unwrap();
    let outcome = AssertUnwindSafe(body(warehouse.clone()))
        .catch_unwind()
        .await;
    warehouse.delete_dataset().await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Events from every `testdata/webhooks` payload, received at distinct microseconds.
pub(crate) fn fixture_events() -> (Vec<Event>, Vec<String>) {
    events_of(&gma_testkit::fixtures())
}

/// Events from `fixtures`, received at distinct microseconds a day and a bit apart.
pub(crate) fn events_of(fixtures: &[gma_testkit::Fixture]) -> (Vec<Event>, Vec<String>) {
    assert!(fixtures.len() >= 10, "testdata/webhooks is missing");
    let base = Utc
        .with_ymd_and_hms(2026, 3, 4, 5, 6, 7)
        .unwrap()
        .timestamp_micros();
    fixtures
        .iter()
        .enumerate()
        .map(|(i, fixture)| {
            let text = String::from_utf8(fixture.body.clone()).unwrap();
            let event = Event {
                headers: DeliveryHeaders {
                    delivery_id: format!("delivery-{i:03}"),
                    event: fixture.event.clone(),
                    signature: format!("sha256={i:064x}"),
                    hook_id: Some(9_007_199_254_740_993 + i as i64),
                    target_type: (i % 2 == 0).then(|| "organization".to_owned()),
                    target_id: (i % 2 == 0).then_some(42),
                },
                received_micros: base + i as i64 * 86_400_000_123 + 456,
                lifted: lift(&fixture.body).unwrap(),
                payload: Payload::Inline(bytes::Bytes::from(fixture.body.clone())),
                payload_size: fixture.body.len() as u64,
            };
            (event, text)
        })
        .unzip()
}

/// The events table's rows for `events` with their `payloads`.
pub(crate) fn events_batch(events: &[Event], payloads: &[String]) -> RecordBatch {
    let mut builder = EventBatchBuilder::new();
    for (event, payload) in events.iter().zip(payloads) {
        builder.append(event, payload);
    }
    builder.finish().unwrap()
}
