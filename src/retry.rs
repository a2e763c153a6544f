//! `gma retry`: one bounded run of the failed-delivery recovery job.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context, Result};
use gma_pipeline::blob::{BlobKey, open_blob_store};
use gma_pipeline::lock::LockOptions;
use gma_pipeline::sql;
use gma_pipeline::warehouse::Warehouse;
use gma_pipeline::warehouse::bigquery::BigQueryWarehouse;
use gma_pipeline::warehouse::bigquery::event_sink::BigQueryEventSink;
use gma_pipeline::warehouse::local::LocalWarehouse;
use gma_retry::job::RetryLock;
use gma_retry::{RecoveryMode, RetryJob, RetryOptions, RetryOutcome, RetryTables};
use gma_store::event_sink::EventSink;
use gma_store::{EventStore, StoreOptions};
use tokio_util::sync::CancellationToken;

use crate::cli::{RetryArgs, RetryMode, Sink};
use crate::signals::shutdown_signal;
use crate::stores::store_location;

/// The lock object's key: GMA's name for it.
const LOCK_KEY: &str = "retry-lock";

/// Runs once and prints the summary.
pub async fn run(args: RetryArgs) -> Result<()> {
    let github = args.github.connect()?;
    let mode = match args.mode {
        RetryMode::Redeliver => RecoveryMode::Redeliver,
        RetryMode::Fetch => RecoveryMode::Fetch,
    };
    let fetch = mode == RecoveryMode::Fetch && !args.dry_run;
    let mut local_store = None;
    let (warehouse, lander, tables): (Arc<dyn Warehouse>, Option<Arc<dyn EventSink>>, RetryTables) =
        match args.sink {
            Sink::Local => {
                let warehouse = if fetch {
                    let dir = args.data_dir.clone();
                    let store = tokio::task::spawn_blocking(move || {
                        EventStore::open(&dir, StoreOptions::default())
                    })
                    .await?
                    .context(
                        "--mode fetch lands events in the data directory itself; while gma serve \
                         runs on it, use --mode redeliver (GitHub sends them to gma serve)",
                    )?;
                    let store = Arc::new(store);
                    local_store = Some(store.clone());
                    LocalWarehouse::with_event_store(store).await?
                } else {
                    LocalWarehouse::open(&args.data_dir).await?
                };
                let lander = local_store.clone().map(|store| store as Arc<dyn EventSink>);
                (Arc::new(warehouse), lander, RetryTables::default())
            }
            Sink::Bigquery => {
                let config = args.bigquery.sink_config(args.data_dir.join("spool"))?;
                let tables = RetryTables {
                    events: config.events_table.trim().to_owned(),
                    checkpoint: sql::CHECKPOINT.renamed(&args.checkpoint_table)?,
                    failures: sql::FAILURE_EVENTS.renamed(&args.failure_table)?,
                };
                if fetch {
                    let sink = BigQueryEventSink::connect(config)
                        .await
                        .context("connecting to BigQuery (--sink bigquery)")?;
                    let warehouse: Arc<dyn Warehouse> = Arc::new(sink.warehouse().clone());
                    (
                        warehouse,
                        Some(Arc::new(sink) as Arc<dyn EventSink>),
                        tables,
                    )
                } else {
                    let warehouse = BigQueryWarehouse::connect(config.warehouse)
                        .context("connecting to BigQuery (--sink bigquery)")?;
                    (Arc::new(warehouse), None, tables)
                }
            }
        };

    let lock_location = store_location(
        args.lock_store.as_deref(),
        "BUCKET_NAME",
        &args.data_dir.join("locks"),
    );
    let lock_store = open_blob_store(&lock_location)
        .with_context(|| format!("opening the lock store {lock_location} (--lock-store)"))?;
    let lock = RetryLock {
        store: lock_store,
        key: BlobKey::new(LOCK_KEY)?,
        options: LockOptions::new(args.lock_ttl).with_clock_skew(args.lock_ttl_clock_skew),
    };

    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    let signals = tokio::spawn(async move {
        shutdown_signal().await;
        tracing::warn!(
            "Stopping: no further recovery starts; the checkpoint is written as far as is safe."
        );
        on_signal.cancel();
    });
    let options = RetryOptions {
        hooks: args.hooks.clone(),
        mode,
        window: args.window,
        since: args.since,
        until: args.until,
        dry_run: args.dry_run,
        max_duration: Some(args.max_duration),
        give_up_after: args.give_up_after,
        concurrency: args.concurrency,
        alert_margin: args.alert_margin,
        progress_bar: std::io::stderr().is_terminal(),
        shutdown,
        ..RetryOptions::default()
    };
    let job = RetryJob {
        github: github.client,
        app: github.app,
        token: github.token,
        warehouse,
        tables,
        lander,
        lock: Some(lock),
        options,
    };
    let outcome = job.run().await;
    signals.abort();
    if let Some(store) = local_store {
        store.close().await;
    }
    match outcome? {
        RetryOutcome::Busy { holder, until } => {
            println!(
                "another run holds the lock until {} (holder {holder}); nothing to do",
                until.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
        RetryOutcome::Done(summary) => print!("{summary}"),
    }
    Ok(())
}
