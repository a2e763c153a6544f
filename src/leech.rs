//! `gma leech`: archive completed workflow runs' logs, once or following new runs.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context, Result};
use gma_leech::{LeechJob, LeechOptions, LeechTables};
use gma_pipeline::blob::open_blob_store;
use gma_pipeline::flow::{Mode, Shard};
use gma_pipeline::sql;
use gma_pipeline::warehouse::Warehouse;
use gma_pipeline::warehouse::bigquery::BigQueryWarehouse;
use gma_pipeline::warehouse::local::LocalWarehouse;
use tokio_util::sync::CancellationToken;

use crate::cli::{LeechArgs, Sink};
use crate::signals::shutdown_signal;
use crate::stores::store_location;

/// Runs and prints the summary.
pub async fn run(args: LeechArgs) -> Result<()> {
    let github = args.github.connect()?;
    let app = github.app.context(
        "gma leech reads logs with the App's installation tokens: set GITHUB_APP_ID and \
         GITHUB_PRIVATE_KEY (or --github-private-key-file)",
    )?;
    let (warehouse, tables): (Arc<dyn Warehouse>, LeechTables) = match args.sink {
        Sink::Local => (
            Arc::new(LocalWarehouse::open(&args.data_dir).await?),
            LeechTables::default(),
        ),
        Sink::Bigquery => {
            let config = args.bigquery.sink_config(args.data_dir.join("spool"))?;
            let tables = LeechTables {
                events: config.events_table.trim().to_owned(),
                status: sql::LEECH_STATUS.renamed(&args.status_table)?,
                logs: sql::WORKFLOW_LOGS.renamed(&args.logs_table)?,
            };
            let warehouse = BigQueryWarehouse::connect(config.warehouse)
                .context("connecting to BigQuery (--sink bigquery)")?;
            (Arc::new(warehouse), tables)
        }
    };
    let location = store_location(
        args.logs_store.as_deref(),
        "LOGS_BUCKET_NAME",
        &args.data_dir.join("logs"),
    );
    let logs = open_blob_store(&location)
        .with_context(|| format!("opening the logs store {location} (--logs-store)"))?;
    let shard = match args.shard {
        Some(shard) => shard,
        None => Shard::from_env()?,
    };
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    let signals = tokio::spawn(async move {
        shutdown_signal().await;
        tracing::warn!("Stopping: finishing the downloads in flight, then saving the watermark.");
        on_signal.cancel();
    });
    let job = LeechJob {
        github: github.client,
        app,
        warehouse,
        tables,
        logs,
        options: LeechOptions {
            shard,
            mode: if args.follow {
                Mode::Follow { poll: args.poll }
            } else {
                Mode::Bounded
            },
            since: args.since,
            until: args.until,
            repo: args.repo.clone().filter(|r| !r.trim().is_empty()),
            limit: args.limit,
            concurrency: args.concurrency,
            max_attempts: args.max_attempts,
            retry_backoff: args.retry_backoff,
            retention: args.log_retention,
            progress_bar: std::io::stderr().is_terminal(),
            shutdown,
        },
    };
    let summary = job.run().await;
    signals.abort();
    let summary = summary?;
    print!("{summary}");
    Ok(())
}
