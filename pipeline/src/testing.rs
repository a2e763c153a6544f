//! Events and emulator datasets for the crate's tests.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use futures::FutureExt;

use crate::warehouse::bigquery::{BigQueryConfig, BigQueryWarehouse, Credentials};

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
    let host =
        std::env::var(crate::warehouse::bigquery::config::EMULATOR_HOST_VAR).unwrap_or_default();
    assert!(
        !host.trim().is_empty(),
        "BIGQUERY_EMULATOR_HOST is not set: these tests need bqemulator; start it with \
         `bash .ci/emulators` and export what it prints (or run the tests through `.ci/run`)"
    );
    let project =
        std::env::var("GMA_BQ_EMULATOR_PROJECT").unwrap_or_else(|_| "test-project".to_owned());
    let suffix = &crate::warehouse::bigquery::request_id()[..8];
    BigQueryConfig {
        project,
        dataset: format!("gma_test_{test}_{suffix}"),
        endpoint: Some(host),
        credentials: Credentials::None,
        location: None,
        page_size: None,
    }
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
