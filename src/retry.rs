//! `gma retry`: one bounded run of the failed-delivery recovery job.

use std::io::IsTerminal;

use anyhow::Result;
use gma_pipeline::blob::BlobKey;
use gma_pipeline::lock::LockOptions;
use gma_pipeline::sql;
use gma_retry::job::RetryLock;
use gma_retry::{RecoveryMode, RetryJob, RetryOptions, RetryOutcome, RetryTables};
use tokio_util::sync::CancellationToken;

use crate::backend;
use crate::cli::{RetryArgs, RetryMode};
use crate::signals::cancel_on_signal;
use crate::stores::open_job_store;

/// The lock object's key: GMA's name for it.
const LOCK_KEY: &str = "retry-lock";

/// Runs once and prints the summary.
pub async fn run(args: RetryArgs) -> Result<()> {
    let github = args.github.connect()?;
    let mode = match args.mode {
        RetryMode::Redeliver => RecoveryMode::Redeliver,
        RetryMode::Fetch => RecoveryMode::Fetch,
    };
    let lands_events = mode == RecoveryMode::Fetch && !args.dry_run;
    let backend = backend::job_backend(
        args.warehouse,
        &args.bigquery,
        &args.data_dir,
        lands_events,
        args.memory,
    )
    .await?;
    let tables = tables(&args, backend.events_table)?;
    let lock = lock(&args)?;
    let (shutdown, signals) = cancel_on_signal(
        "Stopping: no further recovery starts; the checkpoint is written as far as is safe.",
    );
    let job = RetryJob {
        github: github.client,
        app: github.app,
        token: github.token,
        warehouse: backend.warehouse,
        tables,
        lander: backend.lander,
        lock: Some(lock),
        options: options(&args, mode, shutdown),
    };
    let outcome = job.run().await;
    signals.abort();
    if let Some(store) = backend.store {
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

/// The tables: the data directory's own, or in BigQuery the events table and the names the
/// flags give.
fn tables(args: &RetryArgs, bigquery_events: Option<String>) -> Result<RetryTables> {
    let Some(events) = bigquery_events else {
        return Ok(RetryTables::default());
    };
    Ok(RetryTables {
        events,
        checkpoint: sql::CHECKPOINT.renamed(&args.checkpoint_table)?,
        failures: sql::FAILURE_EVENTS.renamed(&args.failure_table)?,
    })
}

/// The lock in --lock-store (GMA's BUCKET_NAME, else the data directory's `locks`).
fn lock(args: &RetryArgs) -> Result<RetryLock> {
    let store = open_job_store(
        args.lock_store.as_deref(),
        "BUCKET_NAME",
        &args.data_dir.join("locks"),
        "lock",
        "--lock-store",
    )?;
    Ok(RetryLock {
        store,
        key: BlobKey::new(LOCK_KEY)?,
        options: LockOptions::new(args.lock_ttl).with_clock_skew(args.lock_ttl_clock_skew),
    })
}

/// The job's options from the flags.
fn options(args: &RetryArgs, mode: RecoveryMode, shutdown: CancellationToken) -> RetryOptions {
    RetryOptions {
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
    }
}
