//! BigQuery's side of the backend (cargo feature `bigquery`): its events sink and warehouse,
//! connected with the configuration the BigQuery flags give.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use gma_pipeline::warehouse::bigquery::event_sink::BigQueryEventSink;
use gma_pipeline::warehouse::bigquery::{BigQueryConfig, BigQueryWarehouse};

use super::JobBackend;
use crate::cli::BigQueryArgs;

/// The events table `args` names, spooling large bodies under `data_dir`; `flag` is the flag
/// that asked for BigQuery, for the error.
pub async fn event_sink(
    args: &BigQueryArgs,
    data_dir: &Path,
    flag: &str,
) -> Result<BigQueryEventSink> {
    let config = args.sink_config(data_dir.join("spool"))?;
    BigQueryEventSink::connect(config)
        .await
        .with_context(|| format!("connecting to BigQuery ({flag})"))
}

/// The dataset `config` names as a warehouse; `asked_by` is the flag or command that asked for
/// BigQuery, for the error.
pub fn warehouse(config: BigQueryConfig, asked_by: &str) -> Result<BigQueryWarehouse> {
    BigQueryWarehouse::connect(config)
        .with_context(|| format!("connecting to BigQuery ({asked_by})"))
}

/// `gma retry`'s or `gma leech`'s BigQuery dataset, with the events table as the lander when
/// the job `lands_events`.
pub async fn job_backend(
    args: &BigQueryArgs,
    data_dir: &Path,
    lands_events: bool,
) -> Result<JobBackend> {
    const FLAG: &str = "--warehouse bigquery";
    let events_table = Some(args.events_table.trim().to_owned());
    if lands_events {
        let sink = Arc::new(event_sink(args, data_dir, FLAG).await?);
        return Ok(JobBackend {
            warehouse: Arc::new(sink.warehouse().clone()),
            lander: Some(sink),
            store: None,
            events_table,
        });
    }
    // The sink's configuration although nothing lands: it checks --blob-store, as it always has.
    let config = args.sink_config(data_dir.join("spool"))?;
    Ok(JobBackend {
        warehouse: Arc::new(warehouse(config.warehouse, FLAG)?),
        lander: None,
        store: None,
        events_table,
    })
}

/// Logs where `gma serve` lands events.
pub fn log_landing(sink: &BigQueryEventSink, args: &BigQueryArgs) {
    tracing::info!(
        warehouse = ?sink.warehouse(),
        table = %sink.table(),
        blob_store = args.blob_store.as_deref().unwrap_or("(none)"),
        "Landing events in BigQuery."
    );
}
