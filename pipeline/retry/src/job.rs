//! One retry run, from the lock to the summary.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use gma_pipeline::blob::{BlobKey, BlobStore};
use gma_pipeline::error::error_chain;
use gma_pipeline::flow::{
    AppendError, CollectSink, IterSource, ParDo, Pipeline, PipelineOptions, SplitSink, TableSink,
    TableWriter,
};
use gma_pipeline::github::{AppKey, Auth, GitHubClient, HookRef, Secret};
use gma_pipeline::lock::{self, Acquired, LockOptions};
use gma_pipeline::sql;
use gma_pipeline::warehouse::{TableDef, Warehouse};
use gma_store::event_sink::EventSink;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::candidates::{self, Candidate, Verdict};
use crate::checkpoint::{self, CheckpointRow};
use crate::error::RetryError;
use crate::options::{RecoveryMode, RetryOptions};
use crate::recover::{FailureRow, Outcome, Recover, Recovery};
use crate::scan::{self, Groups, HookScan, ScanBounds, ScanEnd};
use crate::summary::{HookReport, PlannedRecovery, RetrySummary};

/// The tables a run reads and writes, by their configured names.
#[derive(Debug, Clone)]
pub struct RetryTables {
    /// The events table's name (GMA's `EVENTS_TABLE_ID`).
    pub events: String,
    /// The checkpoint table (GMA's `CHECKPOINT_TABLE_ID`).
    pub checkpoint: TableDef,
    /// The failure table.
    pub failures: TableDef,
}

impl Default for RetryTables {
    fn default() -> Self {
        Self {
            events: sql::EVENTS.name.to_owned(),
            checkpoint: sql::CHECKPOINT,
            failures: sql::FAILURE_EVENTS,
        }
    }
}

impl RetryTables {
    /// Replaces the table placeholders of a retry query with the configured names.
    pub fn resolve(&self, sql: &str) -> String {
        sql::name_tables(
            sql,
            &[
                ("events_table", &self.events),
                ("checkpoint_table", self.checkpoint.name),
                ("failure_table", self.failures.name),
            ],
        )
    }
}

/// Where the run's lock lives.
#[derive(Debug, Clone)]
pub struct RetryLock {
    /// The blob store (local directory or GCS bucket).
    pub store: Arc<dyn BlobStore>,
    /// The lock object's key.
    pub key: BlobKey,
    /// TTL, clock skew, holder.
    pub options: LockOptions,
}

/// How a run ended without error.
#[derive(Debug)]
pub enum RetryOutcome {
    /// The run did its work.
    Done(RetrySummary),
    /// Another run holds the lock: nothing was done.
    Busy {
        /// Who holds it.
        holder: String,
        /// Until when.
        until: DateTime<Utc>,
    },
}

/// Everything a run needs.
pub struct RetryJob {
    /// GitHub's REST API.
    pub github: GitHubClient,
    /// The App, for the App's hook.
    pub app: Option<Arc<AppKey>>,
    /// A token, for repository and organization hooks.
    pub token: Option<Secret>,
    /// Where the events, checkpoint and failure tables are.
    pub warehouse: Arc<dyn Warehouse>,
    /// Their names.
    pub tables: RetryTables,
    /// Where fetched events land (fetch mode).
    pub lander: Option<Arc<dyn EventSink>>,
    /// The lock; `None` runs without one (tests, or a caller that serialises runs itself).
    pub lock: Option<RetryLock>,
    /// The run's knobs.
    pub options: RetryOptions,
}

impl RetryJob {
    /// Runs once: lock, list, look up, recover, checkpoint, summary. The lock is released at the
    /// end, also on error.
    ///
    /// # Errors
    /// [`RetryError`] when the run could not do its work; the checkpoint has been moved as far
    /// as was safe first.
    pub async fn run(self) -> Result<RetryOutcome, RetryError> {
        self.check()?;
        let held = match (&self.lock, self.options.dry_run) {
            (Some(config), false) => {
                match lock::acquire(
                    config.store.clone(),
                    config.key.clone(),
                    config.options.clone(),
                )
                .await?
                {
                    Acquired::Held(held) => Some(held),
                    Acquired::Busy { holder, until } => {
                        tracing::info!(%holder, %until, "Another run holds the retry lock; nothing to do.");
                        return Ok(RetryOutcome::Busy { holder, until });
                    }
                }
            }
            _ => None,
        };
        let lost = held.as_ref().map(|h| h.lost()).unwrap_or_default();
        let result = self.run_locked(lost).await;
        if let Some(held) = held
            && let Err(error) = held.release().await
        {
            tracing::warn!(error = %error_chain(&error), "Could not release the retry lock; it expires by itself.");
        }
        result.map(RetryOutcome::Done)
    }

    fn check(&self) -> Result<(), RetryError> {
        if self.options.hooks.is_empty() {
            return Err(RetryError::Config(
                "no webhook to examine; give --hook app (the App's webhook) or a repository or \
                 organization hook"
                    .into(),
            ));
        }
        for hook in &self.options.hooks {
            if hook.is_app() && self.app.is_none() {
                return Err(RetryError::Config(
                    "the App's webhook needs the App's credentials: set GITHUB_APP_ID and \
                     GITHUB_PRIVATE_KEY (or --github-private-key-file)"
                        .into(),
                ));
            }
            if !hook.is_app() && self.token.is_none() {
                return Err(RetryError::Config(format!(
                    "hook {hook} needs a token with admin:repo_hook / admin:org_hook read access: \
                     set GITHUB_TOKEN"
                )));
            }
        }
        if self.options.mode == RecoveryMode::Fetch
            && self.lander.is_none()
            && !self.options.dry_run
        {
            return Err(RetryError::Config(
                "--mode fetch needs an events sink to land the fetched events into".into(),
            ));
        }
        Ok(())
    }

    fn auth(&self, hook: &HookRef) -> Auth {
        match (hook.is_app(), &self.app, &self.token) {
            (true, Some(app), _) => Auth::App(app.clone()),
            (false, _, Some(token)) => Auth::Token(token.clone()),
            _ => Auth::None,
        }
    }

    /// The run's steps, under the lock (if any): create the tables, list every hook, ask the
    /// warehouse about the failed events, recover them (or plan, in a dry run), then move the
    /// checkpoints and sum up.
    async fn run_locked(self, lost: CancellationToken) -> Result<RetrySummary, RetryError> {
        let started = Instant::now();
        let run_started = Utc::now();
        let options = &self.options;
        let stop = options.shutdown.child_token();
        let watchers = spawn_stoppers(&stop, lost, options.max_duration);
        let writers = self.open_tables().await?;
        let instance = self.github.config().instance();
        let (scans, groups) = self.scan_hooks(&instance, run_started, &stop).await?;
        let (candidates, events_queries) = self.candidates(groups).await?;
        let mut summary = new_summary(options, &scans, candidates.len(), events_queries, started);
        let (to_recover, give_up_rows) = triage(options, candidates, &mut summary);
        let recoveries = match &writers {
            Some(writers) => {
                append(&writers.failures, &give_up_rows).await?;
                self.recover_all(to_recover, &writers.failures, &stop)
                    .await?
            }
            None => plan(to_recover, &mut summary),
        };
        count_outcomes(options, &recoveries, &mut summary);
        if summary.stopped.is_none() && summary.not_attempted > 0 && !options.dry_run {
            summary.stopped = Some(stop_reason(options, &watchers));
        }
        let oldest_unhandled = oldest_unhandled(options, &recoveries, &mut summary);
        let rows = self.checkpoint_rows(
            &scans,
            &oldest_unhandled,
            &instance,
            run_started,
            &mut summary,
        );
        if let Some(writers) = &writers {
            checkpoint::write(&writers.checkpoint, &rows).await?;
        }
        summary.github_requests = self.github.requests_sent();
        summary.duration = started.elapsed();
        summary.log();
        finish(summary, &recoveries)
    }

    /// Creates the tables the run writes, unless it is a dry run (which writes nothing).
    async fn open_tables(&self) -> Result<Option<Writers>, RetryError> {
        if self.options.dry_run {
            return Ok(None);
        }
        let open = |table: TableDef| async move {
            TableWriter::open(self.warehouse.clone(), table)
                .await
                .map_err(|source| RetryError::Write {
                    table: table.name.to_owned(),
                    source,
                })
        };
        Ok(Some(Writers {
            checkpoint: open(self.tables.checkpoint).await?,
            failures: open(self.tables.failures).await?,
        }))
    }

    /// Lists every hook's deliveries back to its checkpoint (or the window's start), grouping
    /// the failed attempts by event.
    async fn scan_hooks(
        &self,
        instance: &str,
        run_started: DateTime<Utc>,
        stop: &CancellationToken,
    ) -> Result<(Vec<HookScan>, Groups), RetryError> {
        let options = &self.options;
        let checkpoints = if options.is_backfill() {
            HashMap::new()
        } else {
            checkpoint::read(self.warehouse.as_ref(), &self.tables, instance).await?
        };
        let window_start = run_started
            - chrono::Duration::from_std(options.window).unwrap_or(chrono::Duration::MAX);
        if let Some(since) = options.since
            && since < window_start
        {
            tracing::warn!(
                %since,
                %window_start,
                "The --since time is older than the redelivery window; GitHub keeps no older \
                 deliveries to recover, so the listing stops at the window's start."
            );
        }
        let mut groups = Groups::default();
        let mut scans = Vec::new();
        for hook in &options.hooks {
            let bounds = ScanBounds {
                checkpoint: checkpoints.get(&hook.to_string()).copied(),
                oldest: options.since.unwrap_or(window_start).max(window_start),
                newest: options.until,
            };
            scans.push(self.scan_hook(hook, bounds, stop, &mut groups).await?);
        }
        Ok((scans, groups))
    }

    /// Lists one hook's deliveries within `bounds`.
    async fn scan_hook(
        &self,
        hook: &HookRef,
        bounds: ScanBounds,
        stop: &CancellationToken,
        groups: &mut Groups,
    ) -> Result<HookScan, RetryError> {
        let options = &self.options;
        let scan = scan::scan_hook(
            &self.github,
            &self.auth(hook),
            hook,
            bounds,
            options.per_page,
            stop,
            groups,
        )
        .await
        .map_err(|source| RetryError::List {
            hook: hook.to_string(),
            source,
        })?;
        if scan.end == ScanEnd::Window && scan.checkpoint.is_some() && !options.is_backfill() {
            tracing::error!(
                hook = %hook,
                checkpoint = scan.checkpoint,
                "The checkpoint is older than the redelivery window: deliveries between it \
                 and the window's start could not be examined; run retry more often than \
                 the window."
            );
        }
        Ok(scan)
    }

    /// The failed events with what the warehouse knows of each and the verdict on it, and how
    /// many queries of the events table that took.
    async fn candidates(&self, groups: Groups) -> Result<(Vec<Candidate>, u64), RetryError> {
        let failed = groups.into_failed();
        let known = candidates::look_up(self.warehouse.as_ref(), &self.tables, &failed).await?;
        let events_queries = u64::from(!failed.is_empty());
        let candidates = failed
            .into_iter()
            .map(|group| {
                let facts = known.get(&group.guid).copied().unwrap_or_default();
                Candidate::decide(group, facts, self.options.give_up_after)
            })
            .collect();
        Ok((candidates, events_queries))
    }

    /// Each hook's new checkpoint row (none in a dry run or a backfill), with its report added
    /// to `summary`.
    fn checkpoint_rows(
        &self,
        scans: &[HookScan],
        oldest_unhandled: &HashMap<String, i64>,
        instance: &str,
        run_started: DateTime<Utc>,
        summary: &mut RetrySummary,
    ) -> Vec<CheckpointRow> {
        let options = &self.options;
        let mut rows = Vec::new();
        for scan in scans {
            let next =
                checkpoint::advance(scan, oldest_unhandled.get(&scan.hook.to_string()).copied());
            let write = next.filter(|_| !options.dry_run && !options.is_backfill());
            if let Some(id) = write {
                rows.push(CheckpointRow {
                    delivery_id: id.to_string(),
                    created: run_started,
                    github_instance_url: checkpoint::instance_column(instance),
                    hook: scan.hook.to_string(),
                    run_id: options.run_id.clone(),
                });
            }
            summary.hooks.push(report(scan, write));
        }
        rows
    }

    /// The recovery pipeline: failed events, oldest first → recover (bounded concurrency) →
    /// failure rows to `failure_events`, outcomes collected for the checkpoint.
    async fn recover_all(
        &self,
        to_recover: Vec<Candidate>,
        failures: &TableWriter,
        stop: &CancellationToken,
    ) -> Result<Vec<Recovery>, RetryError> {
        if to_recover.is_empty() {
            return Ok(Vec::new());
        }
        let total = to_recover.len();
        let options = PipelineOptions {
            shutdown: stop.clone(),
            progress_bar: self.options.progress_bar,
            sink_batch: 100,
            ..PipelineOptions::new("retry")
        };
        let recover = Recover {
            github: self.github.clone(),
            app_auth: self.app.clone().map(Auth::App),
            token_auth: self.token.clone().map(Auth::Token),
            mode: self.options.mode,
            lander: self.lander.clone(),
            stop: stop.clone(),
        };
        let run_id = self.options.run_id.clone();
        let (collect, outcomes) = CollectSink::new();
        let sink = SplitSink::new(
            move |recovery: Recovery| {
                let row = recovery.failure_row(&run_id);
                (row.into_iter().collect(), vec![recovery])
            },
            TableSink::<FailureRow>::with_writer(failures.clone()),
            collect,
        );
        let run = Pipeline::new(options)
            .read("failed events", IterSource::new(to_recover.clone(), 64))
            .apply(ParDo::new("recover", recover).concurrency(self.options.concurrency.max(1)))
            .write("outcomes", sink)
            .run()
            .await?;
        tracing::debug!(summary = %run, "The recovery pipeline finished.");
        let mut done = take(&outcomes);
        // Events the source never emitted (the run stopped) were not started.
        let seen: std::collections::HashSet<String> = done
            .iter()
            .map(|r| r.candidate.group.guid.clone())
            .collect();
        for candidate in to_recover {
            if !seen.contains(&candidate.group.guid) {
                done.push(Recovery {
                    candidate,
                    outcome: Outcome::NotStarted,
                });
            }
        }
        debug_assert_eq!(done.len(), total);
        Ok(done)
    }
}

fn take<T>(shared: &Arc<Mutex<Vec<T>>>) -> Vec<T> {
    let mut guard = shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    std::mem::take(&mut *guard)
}

/// The tables a run writes, created at its start.
struct Writers {
    checkpoint: TableWriter,
    failures: TableWriter,
}

/// The summary before recovery: the listing's and the warehouse's counts.
fn new_summary(
    options: &RetryOptions,
    scans: &[HookScan],
    failed_events: usize,
    events_queries: u64,
    started: Instant,
) -> RetrySummary {
    RetrySummary {
        run_id: options.run_id.clone(),
        mode: options.mode,
        dry_run: options.dry_run,
        hooks: Vec::new(),
        deliveries_scanned: scans.iter().map(|s| s.scanned).sum(),
        failed_events: failed_events as u64,
        already_landed: 0,
        recovered: 0,
        still_failing: 0,
        given_up: 0,
        given_up_before: 0,
        not_attempted: 0,
        events_queries,
        github_requests: 0,
        oldest_unrecovered: None,
        alert: false,
        window: options.window,
        stopped: None,
        planned: Vec::new(),
        duration: started.elapsed(),
    }
}

/// Sorts the candidates by verdict: those to recover, and the failure rows of those given up
/// on; the others are only counted.
fn triage(
    options: &RetryOptions,
    candidates: Vec<Candidate>,
    summary: &mut RetrySummary,
) -> (Vec<Candidate>, Vec<FailureRow>) {
    let mut to_recover = Vec::new();
    let mut give_up_rows = Vec::new();
    for candidate in candidates {
        match &candidate.verdict {
            Verdict::Landed => summary.already_landed += 1,
            Verdict::GivenUpBefore => summary.given_up_before += 1,
            Verdict::GiveUp { failures } => {
                summary.given_up += 1;
                give_up_rows.push(FailureRow::new(
                    &candidate,
                    &options.run_id,
                    format!(
                        "gave up after {failures} failed recoveries (limit {}); recover it by \
                         hand from GitHub's delivery log",
                        options.give_up_after
                    ),
                    true,
                ));
            }
            Verdict::Recover => to_recover.push(candidate),
        }
    }
    (to_recover, give_up_rows)
}

/// A dry run's recoveries: each one planned, none started.
fn plan(to_recover: Vec<Candidate>, summary: &mut RetrySummary) -> Vec<Recovery> {
    summary.planned = to_recover
        .iter()
        .map(|c| PlannedRecovery {
            guid: c.group.guid.clone(),
            event: c.group.event.clone(),
            hook: c.group.hook.to_string(),
            delivery_id: c.group.newest_id(),
            first_failed_at: c.group.first_failed_at(),
        })
        .collect();
    summary.not_attempted = to_recover.len() as u64;
    to_recover
        .into_iter()
        .map(|candidate| Recovery {
            candidate,
            outcome: Outcome::NotStarted,
        })
        .collect()
}

/// Appends `rows` to `table`, when there are any.
///
/// # Errors
/// [`RetryError::Rows`] when a row does not convert, [`RetryError::Write`] when the warehouse
/// refuses.
pub(crate) async fn append<T: Serialize>(
    table: &TableWriter,
    rows: &[T],
) -> Result<(), RetryError> {
    if rows.is_empty() {
        return Ok(());
    }
    table.append(rows).await.map_err(|error| match error {
        AppendError::Rows(error) => RetryError::Rows(error),
        AppendError::Warehouse(source) => RetryError::Write {
            table: table.table().name.to_owned(),
            source,
        },
    })
}

/// Counts the recoveries' outcomes into `summary`.
fn count_outcomes(options: &RetryOptions, recoveries: &[Recovery], summary: &mut RetrySummary) {
    for recovery in recoveries {
        match &recovery.outcome {
            Outcome::Recovered => summary.recovered += 1,
            Outcome::AlreadyLanded => summary.already_landed += 1,
            Outcome::Failed { .. } => summary.still_failing += 1,
            Outcome::Stopped { reason } => {
                summary.not_attempted += 1;
                summary.stopped.get_or_insert_with(|| reason.clone());
            }
            Outcome::NotStarted => {
                if !options.dry_run {
                    summary.not_attempted += 1;
                }
            }
        }
    }
}

/// The oldest failure still unrecovered (with the alert it may raise, into `summary`), and per
/// hook the oldest attempt id of an unrecovered event, below which its checkpoint must stay.
fn oldest_unhandled(
    options: &RetryOptions,
    recoveries: &[Recovery],
    summary: &mut RetrySummary,
) -> HashMap<String, i64> {
    let mut oldest_unhandled: HashMap<String, i64> = HashMap::new();
    for recovery in recoveries {
        let group = &recovery.candidate.group;
        if !recovery.outcome.is_handled() {
            let at = group.first_failed_at();
            summary.oldest_unrecovered = Some(summary.oldest_unrecovered.map_or(at, |t| t.min(at)));
            let entry = oldest_unhandled
                .entry(group.hook.to_string())
                .or_insert(i64::MAX);
            *entry = (*entry).min(group.oldest_id());
        }
    }
    if let Some(oldest) = summary.oldest_unrecovered {
        let alert_after = options.window.saturating_sub(options.alert_margin);
        summary.alert = (Utc::now() - oldest).to_std().unwrap_or_default() >= alert_after;
    }
    oldest_unhandled
}

/// The run's result: its summary, or the error of a recovery GitHub (or the events sink)
/// stopped.
fn finish(summary: RetrySummary, recoveries: &[Recovery]) -> Result<RetrySummary, RetryError> {
    let unavailable = recoveries.iter().find_map(|r| match &r.outcome {
        Outcome::Stopped { reason } => Some(reason.clone()),
        _ => None,
    });
    if let Some(message) = unavailable {
        return Err(RetryError::Unavailable {
            recovered: summary.recovered,
            left: summary.not_attempted + summary.still_failing,
            message,
        });
    }
    Ok(summary)
}

fn report(scan: &HookScan, written: Option<i64>) -> HookReport {
    HookReport {
        hook: scan.hook.to_string(),
        pages: scan.pages,
        scanned: scan.scanned,
        end: scan.end,
        checkpoint_before: scan.checkpoint,
        checkpoint_after: written,
    }
}

/// The tasks that stop a run early: the time budget and a lost lock.
struct Stoppers {
    budget_spent: Arc<std::sync::atomic::AtomicBool>,
    lock_lost: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Stoppers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn spawn_stoppers(
    stop: &CancellationToken,
    lost: CancellationToken,
    max_duration: Option<std::time::Duration>,
) -> Stoppers {
    use std::sync::atomic::{AtomicBool, Ordering};
    let budget_spent = Arc::new(AtomicBool::new(false));
    let lock_lost = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    if let Some(budget) = max_duration {
        let (stop, flag) = (stop.clone(), budget_spent.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(budget).await;
            flag.store(true, Ordering::SeqCst);
            tracing::warn!(
                budget_secs = budget.as_secs(),
                "The run's time budget is spent; no further recovery starts."
            );
            stop.cancel();
        }));
    }
    let (stop_on_loss, flag) = (stop.clone(), lock_lost.clone());
    tasks.push(tokio::spawn(async move {
        lost.cancelled().await;
        flag.store(true, Ordering::SeqCst);
        tracing::error!("Lost the retry lock (another run took it over); stopping.");
        stop_on_loss.cancel();
    }));
    Stoppers {
        budget_spent,
        lock_lost,
        tasks,
    }
}

fn stop_reason(options: &RetryOptions, stoppers: &Stoppers) -> String {
    use std::sync::atomic::Ordering;
    if stoppers.lock_lost.load(Ordering::SeqCst) {
        "the retry lock was lost to another run".into()
    } else if stoppers.budget_spent.load(Ordering::SeqCst) {
        format!(
            "the time budget (--max-duration {} s) was spent",
            options.max_duration.map_or(0, |d| d.as_secs())
        )
    } else {
        "the run was asked to stop (signal)".into()
    }
}
