//! `gma views refresh`, and the refreshes `gma query` and `gma serve` run on the data directory:
//! the typed event tables brought up to date with the events stored (see gma-refresh).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gma_pipeline::error::error_chain;
use gma_pipeline::flow::Shard;
use gma_pipeline::views::{ViewSettings, typed_views};
use gma_pipeline::warehouse::Warehouse;
use gma_pipeline::warehouse::local::LocalWarehouse;
use gma_refresh::{Compaction, RefreshOptions, RefreshSummary, refresh, refresh_data_dir};
use gma_store::EventStore;
use tokio_util::sync::CancellationToken;

use crate::backend;
use crate::cli::{Backend, ViewsRefreshArgs};
use crate::signals::cancel_on_signal;

/// How often `gma serve` looks for events committed since its last refresh.
const SERVE_REFRESH_TICK: Duration = Duration::from_secs(1);

/// How often `gma serve`'s refresh also compacts the tables: the appends of a refresh every
/// second leave small files, merged a few minutes later.
const SERVE_COMPACT_EVERY: Duration = Duration::from_secs(300);

/// Runs `gma views refresh`: once, or every `--interval` until a signal with `--follow`.
pub async fn run(args: ViewsRefreshArgs) -> Result<()> {
    check_only(&args.only)?;
    let local = backend::warehouse_choice(args.warehouse)? == Backend::Local;
    if local && !args.data_dir.exists() {
        bail!(
            "the data directory {} does not exist: point --data-dir (GMA_DATA_DIR) at the one gma serve writes",
            args.data_dir.display()
        );
    }
    // The data directory's refresh holds its lock and compacts; BigQuery's is the plain job.
    let target = if local {
        Target::Local(Arc::new(
            backend::open_local(&args.data_dir, args.memory).await?,
        ))
    } else {
        let backend = backend::job_backend(
            args.warehouse,
            &args.bigquery,
            &args.data_dir,
            false,
            args.memory,
        )
        .await?;
        let settings = ViewSettings {
            events_table: backend
                .events_table
                .unwrap_or_else(|| gma_pipeline::sql::EVENTS.name.to_owned()),
            ..ViewSettings::default()
        };
        Target::Remote(backend.warehouse, settings)
    };
    let (shutdown, signals) = cancel_on_signal(
        "Stopping: the tables in flight stop after their current chunk; the next refresh goes on from there.",
    );
    let options = RefreshOptions {
        shard: match args.shard {
            Some(shard) => shard,
            None => Shard::from_env()?,
        },
        lateness: args.lateness,
        concurrency: args.concurrency.max(1),
        tables: args.only.iter().map(|t| t.trim().to_owned()).collect(),
        progress_bar: std::io::stderr().is_terminal(),
        shutdown: shutdown.clone(),
    };
    let outcome = loop {
        let once = match &target {
            Target::Local(warehouse) => {
                refresh_data_dir(
                    &args.data_dir,
                    Arc::clone(warehouse),
                    &options,
                    Compaction::Always,
                )
                .await
            }
            Target::Remote(warehouse, settings) => {
                refresh(Arc::clone(warehouse), settings, &options).await
            }
        };
        match once {
            Ok(summary) => println!("{summary}"),
            Err(error) if args.follow && !shutdown.is_cancelled() => {
                tracing::error!(error = %error_chain(&error), "The refresh failed; trying again at the next interval.");
            }
            Err(error) => break Err(error).context("refreshing the typed event tables"),
        }
        if !args.follow || shutdown.is_cancelled() {
            break Ok(());
        }
        tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            () = tokio::time::sleep(args.interval) => {}
        }
    };
    signals.abort();
    outcome
}

/// What `gma views refresh` refreshes.
enum Target {
    /// The data directory's tables.
    Local(Arc<LocalWarehouse>),
    /// BigQuery's, with the views' settings (the events table's name).
    Remote(Arc<dyn Warehouse>, ViewSettings),
}

/// Refuses `--only` names that are not typed tables.
fn check_only(only: &[String]) -> Result<()> {
    for name in only {
        if !typed_views().any(|(view, _)| view.name == name.trim()) {
            let names: Vec<&str> = typed_views().map(|(view, _)| view.name).collect();
            bail!(
                "--only {name:?} is not a typed event table; these are: {}",
                names.join(", ")
            );
        }
    }
    Ok(())
}

/// Brings the data directory's typed tables up to date before `gma query` answers, quietly
/// unless it fails (then the query still answers, with a warning that the views may miss the
/// newest events).
pub async fn before_query(dir: &Path, warehouse: Arc<LocalWarehouse>) {
    let options = RefreshOptions {
        progress_bar: std::io::stderr().is_terminal(),
        ..RefreshOptions::default()
    };
    match refresh_data_dir(dir, warehouse, &options, Compaction::AfterAppends).await {
        Ok(summary) if !summary.built.is_empty() => eprintln!("{summary}"),
        Ok(_) => {}
        Err(error) => tracing::warn!(
            error = %error_chain(&error),
            "Could not bring the typed event tables up to date; the views may miss the newest events (run `gma views refresh` to see why)."
        ),
    }
}

/// Keeps the data directory's typed tables current while `gma serve` lands events in `store`:
/// a refresh whenever events were committed since the last one (looked at every second), and
/// one with a compaction every few minutes, until `shutdown`. Returns when the refresh in flight, if any, has stopped.
pub async fn serve_in_background(
    dir: PathBuf,
    store: Arc<EventStore>,
    shutdown: CancellationToken,
) -> Result<()> {
    let warehouse = Arc::new(
        LocalWarehouse::open(&dir)
            .await
            .with_context(|| format!("opening {} for the typed tables' refresh", dir.display()))?,
    );
    let options = RefreshOptions {
        shutdown: shutdown.clone(),
        ..RefreshOptions::default()
    };
    let mut refreshed_at: Option<u64> = None;
    let mut compacted_at: Option<Instant> = None;
    loop {
        let commits = store.metrics().commits.get();
        // Compaction is due on its own clock, so a server gone quiet still merges the last
        // appends' small files and deletes what earlier merges replaced.
        let compaction_due = compacted_at.is_none_or(|at| at.elapsed() >= SERVE_COMPACT_EVERY);
        if refreshed_at != Some(commits) || compaction_due {
            let compact = if compaction_due {
                compacted_at = Some(Instant::now());
                Compaction::Always
            } else {
                Compaction::Never
            };
            match refresh_data_dir(&dir, Arc::clone(&warehouse), &options, compact).await {
                Ok(summary) => {
                    refreshed_at = Some(commits);
                    log_refresh(&summary);
                }
                Err(error) => tracing::warn!(
                    error = %error_chain(&error),
                    "Could not refresh the typed event tables; trying again in a moment."
                ),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(SERVE_REFRESH_TICK) => {}
        }
    }
}

fn log_refresh(summary: &RefreshSummary) {
    if summary.total_rows() > 0 || !summary.built.is_empty() {
        tracing::info!(
            rows = summary.total_rows(),
            built = summary.built.len(),
            elapsed_ms = summary.elapsed.as_millis() as u64,
            "Refreshed the typed event tables."
        );
    }
}
