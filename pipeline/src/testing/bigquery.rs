//! Datasets in bqemulator (`BIGQUERY_EMULATOR_HOST`), fresh per test.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use crate::warehouse::bigquery::{BigQueryConfig, BigQueryWarehouse};

/// The emulator's configuration for a fresh dataset named after `test`.
///
/// # Panics
/// When `BIGQUERY_EMULATOR_HOST` is not set, saying how to start the emulators.
pub fn emulator_config(test: &str) -> BigQueryConfig {
    let project = gma_testkit::emulators::bigquery_project();
    BigQueryConfig::new(
        project,
        gma_testkit::emulators::bigquery_dataset(&format!("gma_test_{test}")),
    )
}

/// Runs `body` against a warehouse over a fresh dataset, then deletes the dataset, also when
/// `body` panics.
///
/// # Panics
/// When the emulator refuses the dataset, or as `body` panics.
pub async fn with_dataset<F, Fut>(config: BigQueryConfig, body: F)
where
    F: FnOnce(BigQueryWarehouse) -> Fut,
    Fut: Future<Output = ()>,
{
    let warehouse = BigQueryWarehouse::connect(config).expect("the emulator's warehouse");
    warehouse
        .ensure_dataset()
        .await
        .expect("the emulator creates the dataset");
    let outcome = AssertUnwindSafe(body(warehouse.clone()))
        .catch_unwind()
        .await;
    warehouse
        .delete_dataset()
        .await
        .expect("the emulator deletes the dataset");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
