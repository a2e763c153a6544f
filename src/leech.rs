//! `gma leech`: archive completed workflow runs' logs, once or following new runs.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use gma_leech::{LeechJob, LeechOptions, LeechTables};
use gma_pipeline::flow::{Mode, Shard};
use gma_pipeline::sql;
use tokio_util::sync::CancellationToken;

use crate::backend;
use crate::cli::LeechArgs;
use crate::signals::cancel_on_signal;
use crate::stores::open_job_store;

/// Runs and prints the summary.
pub async fn run(args: LeechArgs) -> Result<()> {
    let github = args.github.connect()?;
    let app = github.app.context(
        "gma leech reads logs with the App's installation tokens: set GITHUB_APP_ID and \
         GITHUB_PRIVATE_KEY (or --github-private-key-file)",
    )?;
    let backend = backend::job_backend(
        args.warehouse,
        &args.bigquery,
        &args.data_dir,
        false,
        args.memory,
    )
    .await?;
    let tables = tables(&args, backend.events_table)?;
    let logs = open_job_store(
        args.logs_store.as_deref(),
        "LOGS_BUCKET_NAME",
        &args.data_dir.join("logs"),
        "logs",
        "--logs-store",
    )?;
    let shard = match args.shard {
        Some(shard) => shard,
        None => Shard::from_env()?,
    };
    let (shutdown, signals) =
        cancel_on_signal("Stopping: finishing the downloads in flight, then saving the watermark.");
    let job = LeechJob {
        github: github.client,
        app,
        warehouse: backend.warehouse,
        tables,
        logs,
        options: options(&args, shard, shutdown),
    };
    let summary = job.run().await;
    signals.abort();
    let summary = summary?;
    print!("{summary}");
    Ok(())
}

/// The tables: the data directory's own, or in BigQuery the events table and the names the
/// flags give.
fn tables(args: &LeechArgs, bigquery_events: Option<String>) -> Result<LeechTables> {
    let Some(events) = bigquery_events else {
        return Ok(LeechTables::default());
    };
    Ok(LeechTables {
        events,
        status: sql::LEECH_STATUS.renamed(&args.status_table)?,
        logs: sql::WORKFLOW_LOGS.renamed(&args.logs_table)?,
    })
}

/// The job's options from the flags.
fn options(args: &LeechArgs, shard: Shard, shutdown: CancellationToken) -> LeechOptions {
    LeechOptions {
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
    }
}
