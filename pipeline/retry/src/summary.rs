//! What a retry run did, printed at the end and logged as one structured line.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::options::RecoveryMode;
use crate::scan::ScanEnd;

/// One webhook's listing and checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookReport {
    /// The webhook.
    pub hook: String,
    /// Pages listed.
    pub pages: u64,
    /// Deliveries examined.
    pub scanned: u64,
    /// Why the listing stopped.
    pub end: ScanEnd,
    /// The checkpoint the run started from.
    pub checkpoint_before: Option<i64>,
    /// The checkpoint written, if it moved.
    pub checkpoint_after: Option<i64>,
}

/// An event a dry run would recover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRecovery {
    /// The event's GUID.
    pub guid: String,
    /// The event type.
    pub event: String,
    /// The webhook.
    pub hook: String,
    /// The attempt that would be redelivered or fetched.
    pub delivery_id: i64,
    /// When GitHub first failed to deliver it.
    pub first_failed_at: DateTime<Utc>,
}

/// The counts and facts of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySummary {
    /// The run.
    pub run_id: String,
    /// How events were recovered.
    pub mode: RecoveryMode,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Per webhook.
    pub hooks: Vec<HookReport>,
    /// Deliveries examined over all webhooks.
    pub deliveries_scanned: u64,
    /// Events no attempt of which succeeded.
    pub failed_events: u64,
    /// Of those, the ones the events table holds anyway.
    pub already_landed: u64,
    /// Recovered by this run.
    pub recovered: u64,
    /// Recovery failed in this run; the next run tries again.
    pub still_failing: u64,
    /// Given up on by this run (failed too often; recorded in `failure_events`).
    pub given_up: u64,
    /// Given up on by earlier runs.
    pub given_up_before: u64,
    /// Left for the next run (time budget, shutdown, GitHub unavailable).
    pub not_attempted: u64,
    /// Queries of the events table (one per run at most).
    pub events_queries: u64,
    /// HTTP requests sent to GitHub.
    pub github_requests: u64,
    /// When the oldest event still unrecovered first failed.
    pub oldest_unrecovered: Option<DateTime<Utc>>,
    /// Whether that event nears the end of the redelivery window.
    pub alert: bool,
    /// The redelivery window.
    pub window: Duration,
    /// What stopped recovery early, if anything did.
    pub stopped: Option<String>,
    /// What a dry run would recover.
    pub planned: Vec<PlannedRecovery>,
    /// How long the run took.
    pub duration: Duration,
}

impl RetrySummary {
    /// The age of the oldest unrecovered failure at `now`.
    pub fn oldest_unrecovered_age(&self, now: DateTime<Utc>) -> Option<Duration> {
        self.oldest_unrecovered
            .map(|t| (now - t).to_std().unwrap_or(Duration::ZERO))
    }

    /// Logs the summary as one structured line.
    pub fn log(&self) {
        let age = self.oldest_unrecovered_age(Utc::now()).map(|d| d.as_secs());
        tracing::info!(
            run_id = %self.run_id,
            mode = ?self.mode,
            dry_run = self.dry_run,
            deliveries_scanned = self.deliveries_scanned,
            failed_events = self.failed_events,
            already_landed = self.already_landed,
            recovered = self.recovered,
            still_failing = self.still_failing,
            given_up = self.given_up,
            given_up_before = self.given_up_before,
            not_attempted = self.not_attempted,
            events_queries = self.events_queries,
            github_requests = self.github_requests,
            oldest_unrecovered_age_secs = age,
            alert = self.alert,
            stopped = self.stopped.as_deref(),
            duration_ms = self.duration.as_millis() as u64,
            "The retry run finished."
        );
        if self.alert {
            tracing::error!(
                oldest_unrecovered = ?self.oldest_unrecovered,
                window_hours = self.window.as_secs() / 3600,
                "ALERT: an unrecovered webhook delivery nears the end of GitHub's redelivery window; \
                 see failure_events and recover it before GitHub forgets it."
            );
        }
    }
}

fn age(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

impl fmt::Display for RetrySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            RecoveryMode::Redeliver => "redeliver",
            RecoveryMode::Fetch => "fetch",
        };
        let dry = if self.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        };
        writeln!(
            f,
            "retry run {} in {:.1?}, mode {mode}{dry}",
            self.run_id, self.duration
        )?;
        for hook in &self.hooks {
            let moved = match (hook.checkpoint_before, hook.checkpoint_after) {
                (_, Some(after)) => format!("checkpoint -> {after}"),
                (Some(before), None) => format!("checkpoint stays {before}"),
                (None, None) => "no checkpoint".to_owned(),
            };
            writeln!(
                f,
                "  hook {}: {} deliveries on {} pages, {}; {moved}",
                hook.hook, hook.scanned, hook.pages, hook.end
            )?;
        }
        writeln!(
            f,
            "  failed events {}: already landed {}, recovered {}, still failing {}, given up {} \
             (earlier {}), left for the next run {}",
            self.failed_events,
            self.already_landed,
            self.recovered,
            self.still_failing,
            self.given_up,
            self.given_up_before,
            self.not_attempted
        )?;
        writeln!(
            f,
            "  events queries {}, GitHub requests {}",
            self.events_queries, self.github_requests
        )?;
        if let Some(oldest) = self.oldest_unrecovered_age(Utc::now()) {
            let alert = if self.alert {
                "  ALERT: nears the end of the redelivery window"
            } else {
                ""
            };
            writeln!(
                f,
                "  oldest unrecovered failure: {} old (window {}){alert}",
                age(oldest),
                age(self.window)
            )?;
        }
        for planned in &self.planned {
            writeln!(
                f,
                "  would recover {} ({}, hook {}, delivery {}, failed since {})",
                planned.guid,
                planned.event,
                planned.hook,
                planned.delivery_id,
                planned.first_failed_at.format("%Y-%m-%d %H:%M:%S UTC")
            )?;
        }
        if let Some(stopped) = &self.stopped {
            writeln!(f, "  stopped early: {stopped}")?;
        }
        Ok(())
    }
}
