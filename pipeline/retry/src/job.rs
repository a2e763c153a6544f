//! One retry run, from the lock to the summary.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use gma_pipeline::blob::{BlobKey, BlobStore};
use gma_pipeline::error::error_chain;
use gma_pipeline::flow::{
    CollectSink, IterSource, ParDo, Pipeline, PipelineOptions, SplitSink, TableSink,
};
use gma_pipeline::github::{AppKey, Auth, GitHubClient, HookRef, Secret};
use gma_pipeline::lock::{self, Acquired, LockOptions};
use gma_pipeline::sql;
use gma_pipeline::warehouse::ddl::TableLayout;
use gma_pipeline::warehouse::{TableDef, Warehouse};
use gma_store::event_sink::EventSink;
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

    async fn run_locked(self, lost: CancellationToken) -> Result<RetrySummary, RetryError> {
        let started = Instant::now();
        let run_started = Utc::now();
        let options = &self.options;
        let stop = options.shutdown.child_token();
        let watchers = spawn_stoppers(&stop, lost, options.max_duration);

        if !options.dry_run {
            for table in [&self.tables.checkpoint, &self.tables.failures] {
                self.warehouse
                    .ensure_table(table)
                    .await
                    .map_err(|source| RetryError::Write {
                        table: table.name.to_owned(),
                        source,
                    })?;
            }
        }
        let instance = self.github.config().instance();
        let checkpoints = if options.is_backfill() {
            HashMap::new()
        } else {
            checkpoint::read(self.warehouse.as_ref(), &self.tables, &instance).await?
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
            let scan = scan::scan_hook(
                &self.github,
                &self.auth(hook),
                hook,
                bounds,
                options.per_page,
                &stop,
                &mut groups,
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
            scans.push(scan);
        }

        let failed = groups.into_failed();
        let known = candidates::look_up(self.warehouse.as_ref(), &self.tables, &failed).await?;
        let events_queries = u64::from(!failed.is_empty());
        let candidates: Vec<Candidate> = failed
            .into_iter()
            .map(|group| {
                let facts = known.get(&group.guid).copied().unwrap_or_default();
                Candidate::decide(group, facts, options.give_up_after)
            })
            .collect();

        let mut summary = RetrySummary {
            run_id: options.run_id.clone(),
            mode: options.mode,
            dry_run: options.dry_run,
            hooks: Vec::new(),
            deliveries_scanned: scans.iter().map(|s| s.scanned).sum(),
            failed_events: candidates.len() as u64,
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
        };

        let mut handled: HashMap<String, bool> = HashMap::new();
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
                Verdict::Recover => {
                    to_recover.push(candidate);
                    continue;
                }
            }
            handled.insert(candidate.group.guid.clone(), true);
        }

        let recoveries = if options.dry_run {
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
        } else {
            self.write_failures(give_up_rows).await?;
            self.recover_all(to_recover, &stop).await?
        };
        for recovery in &recoveries {
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
            handled.insert(
                recovery.candidate.group.guid.clone(),
                recovery.outcome.is_handled(),
            );
        }
        if summary.stopped.is_none() && summary.not_attempted > 0 && !options.dry_run {
            summary.stopped = Some(stop_reason(options, &watchers));
        }

        // The oldest failure still unrecovered, and each hook's new checkpoint.
        let mut oldest_unhandled: HashMap<String, i64> = HashMap::new();
        for recovery in &recoveries {
            let group = &recovery.candidate.group;
            if !recovery.outcome.is_handled() {
                let at = group.first_failed_at();
                summary.oldest_unrecovered =
                    Some(summary.oldest_unrecovered.map_or(at, |t| t.min(at)));
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
        let mut rows = Vec::new();
        for scan in &scans {
            let next =
                checkpoint::advance(scan, oldest_unhandled.get(&scan.hook.to_string()).copied());
            let write = next.filter(|_| !options.dry_run && !options.is_backfill());
            if let Some(id) = write {
                rows.push(CheckpointRow {
                    delivery_id: id.to_string(),
                    created: run_started,
                    github_instance_url: checkpoint::instance_column(&instance),
                    hook: scan.hook.to_string(),
                    run_id: options.run_id.clone(),
                });
            }
            summary.hooks.push(report(scan, write));
        }
        checkpoint::write(self.warehouse.as_ref(), &self.tables, &rows).await?;
        summary.github_requests = self.github.requests_sent();
        summary.duration = started.elapsed();
        summary.log();
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

    async fn write_failures(&self, rows_to_write: Vec<FailureRow>) -> Result<(), RetryError> {
        if rows_to_write.is_empty() {
            return Ok(());
        }
        let failed = |source| RetryError::Write {
            table: self.tables.failures.name.to_owned(),
            source,
        };
        let layout = TableLayout::parse(&self.tables.failures).map_err(failed)?;
        let batch = gma_pipeline::flow::rows::to_batch(layout.arrow_schema(), &rows_to_write)?;
        self.warehouse
            .append(&self.tables.failures, batch)
            .await
            .map_err(failed)
    }

    /// The recovery pipeline: failed events, oldest first → recover (bounded concurrency) →
    /// failure rows to `failure_events`, outcomes collected for the checkpoint.
    async fn recover_all(
        &self,
        to_recover: Vec<Candidate>,
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
            TableSink::<FailureRow>::new(self.warehouse.clone(), self.tables.failures),
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
