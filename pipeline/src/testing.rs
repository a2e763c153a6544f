//! Events and emulator datasets for the crate's tests.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use futures::FutureExt;

use crate::warehouse::bigquery::{BigQueryConfig, BigQueryWarehouse};

use crate::event::{DeliveryHeaders, Event, Payload, lift};

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
