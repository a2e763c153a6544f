//! What a run did: live counters per stage, failed elements, and the summary at the end.

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::shard::Shard;

/// How many failures a summary keeps verbatim; the rest are only counted.
pub const KEPT_FAILURES: usize = 20;

/// An element a stage could not process, with why. Failures are counted and kept in the run's
/// summary and logged; none is dropped silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The stage that failed it.
    pub stage: String,
    /// The element, as the stage describes it (e.g. a delivery id, `file:line`).
    pub element: String,
    /// The error with its causes ([`crate::error::error_chain`]).
    pub error: String,
    /// When it failed.
    pub at: DateTime<Utc>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.stage, self.element, self.error)
    }
}

/// What a stage is, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    /// Reads elements.
    Source,
    /// Processes elements.
    Transform,
    /// Writes elements.
    Sink,
}

/// Live counters of one stage, shared by the stage and the progress display.
#[derive(Debug)]
pub struct StageCounters {
    /// The stage's name.
    pub name: String,
    /// What the stage is.
    pub kind: StageKind,
    input: AtomicU64,
    output: AtomicU64,
    failed: AtomicU64,
}

impl StageCounters {
    pub(crate) fn new(name: &str, kind: StageKind) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            kind,
            input: AtomicU64::new(0),
            output: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    pub(crate) fn add_input(&self, n: u64) {
        self.input.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_output(&self, n: u64) {
        self.output.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_failed(&self, n: u64) {
        self.failed.fetch_add(n, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> StageCounts {
        StageCounts {
            name: self.name.clone(),
            kind: self.kind,
            input: self.input.load(Ordering::Relaxed),
            output: self.output.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// The counts of one stage: elements in, elements out, elements failed. A source counts rows
/// read as output; a sink counts rows written as output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageCounts {
    /// The stage's name.
    pub name: String,
    /// What the stage is.
    pub kind: StageKind,
    /// Elements that reached the stage.
    pub input: u64,
    /// Elements the stage produced (read, emitted, written).
    pub output: u64,
    /// Elements that failed in the stage (recorded as [`Failure`]s).
    pub failed: u64,
}

/// The counters of a whole run and the failures it kept.
#[derive(Debug, Default)]
pub struct RunCounters {
    stages: Mutex<Vec<Arc<StageCounters>>>,
    failures: Mutex<(u64, Vec<Failure>)>,
}

impl RunCounters {
    pub(crate) fn stage(&self, name: &str, kind: StageKind) -> Arc<StageCounters> {
        let counters = StageCounters::new(name, kind);
        if let Ok(mut stages) = self.stages.lock() {
            stages.push(Arc::clone(&counters));
        }
        counters
    }

    pub(crate) fn record_failure(&self, failure: &Failure) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.0 += 1;
            if failures.1.len() < KEPT_FAILURES {
                failures.1.push(failure.clone());
            }
        }
    }

    /// Every stage's counts so far, in pipeline order.
    pub fn snapshot(&self) -> Vec<StageCounts> {
        self.stages
            .lock()
            .map(|stages| stages.iter().map(|s| s.snapshot()).collect())
            .unwrap_or_default()
    }

    pub(crate) fn failures(&self) -> (u64, Vec<Failure>) {
        self.failures.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

/// The summary of a finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The pipeline's name.
    pub pipeline: String,
    /// The shard the run took.
    pub shard: String,
    /// Whether it followed its source (unbounded) rather than reading it once.
    pub follow: bool,
    /// Counts per stage, in pipeline order.
    pub stages: Vec<StageCounts>,
    /// Failed elements over all stages.
    pub failed: u64,
    /// The first [`KEPT_FAILURES`] failures.
    pub failures: Vec<Failure>,
    /// The watermark the run reached (follow mode, or a source with a time column).
    pub watermark: Option<DateTime<Utc>>,
    /// Wall-clock time of the run.
    pub duration: Duration,
    /// Whether the run stopped early on a shutdown signal.
    pub interrupted: bool,
}

impl RunSummary {
    pub(crate) fn new(
        pipeline: &str,
        shard: Shard,
        follow: bool,
        counters: &RunCounters,
        watermark: Option<DateTime<Utc>>,
        duration: Duration,
        interrupted: bool,
    ) -> Self {
        let (failed, failures) = counters.failures();
        Self {
            pipeline: pipeline.to_owned(),
            shard: shard.to_string(),
            follow,
            stages: counters.snapshot(),
            failed,
            failures,
            watermark,
            duration,
            interrupted,
        }
    }

    /// The counts of the stage called `name`.
    pub fn stage(&self, name: &str) -> Option<&StageCounts> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// Rows read by the sources.
    pub fn read(&self) -> u64 {
        self.total(StageKind::Source)
    }

    /// Rows written by the sinks.
    pub fn written(&self) -> u64 {
        self.total(StageKind::Sink)
    }

    fn total(&self, kind: StageKind) -> u64 {
        self.stages
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.output)
            .sum()
    }

    /// Logs the summary as one structured line, and each kept failure.
    pub fn log(&self) {
        for failure in &self.failures {
            tracing::warn!(
                pipeline = %self.pipeline,
                stage = %failure.stage,
                element = %failure.element,
                error = %failure.error,
                "An element failed."
            );
        }
        let stages = serde_json::to_string(&self.stages).unwrap_or_default();
        tracing::info!(
            pipeline = %self.pipeline,
            shard = %self.shard,
            follow = self.follow,
            read = self.read(),
            written = self.written(),
            failed = self.failed,
            watermark = ?self.watermark.map(|w| w.to_rfc3339()),
            duration_ms = self.duration.as_millis() as u64,
            interrupted = self.interrupted,
            stages = %stages,
            "The pipeline run finished."
        );
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (shard {}{}): read {}, written {}, failed {} in {:.1}s",
            self.pipeline,
            self.shard,
            if self.follow { ", follow" } else { "" },
            self.read(),
            self.written(),
            self.failed,
            self.duration.as_secs_f64()
        )?;
        if self.interrupted {
            f.write_str(" (stopped by a shutdown signal)")?;
        }
        if let Some(watermark) = self.watermark {
            write!(f, "; watermark {}", watermark.to_rfc3339())?;
        }
        for stage in &self.stages {
            write!(
                f,
                "\n  {:<9} {:<20} in {:>9}  out {:>9}  failed {:>7}",
                format!("{:?}", stage.kind).to_lowercase(),
                stage.name,
                stage.input,
                stage.output,
                stage.failed
            )?;
        }
        for failure in &self.failures {
            write!(f, "\n  failed: {failure}")?;
        }
        if self.failed > self.failures.len() as u64 {
            write!(
                f,
                "\n  ... and {} more failures",
                self.failed - self.failures.len() as u64
            )?;
        }
        Ok(())
    }
}
