//! One leech run: the source query, the archiving step, the two tables.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gma_pipeline::blob::BlobStore;
use gma_pipeline::flow::{
    FlowError, Limited, Mode, ParDo, Pipeline, PipelineOptions, Shard, SplitSink, SqlSource,
    TableSink, TableWriter, WatermarkStore,
};
use gma_pipeline::github::{AppKey, GitHubClient, InstallationTokens};
use gma_pipeline::sql;
use gma_pipeline::warehouse::{ParamValue, Params, TableDef, Warehouse, WarehouseError};
use tokio_util::sync::CancellationToken;

use crate::archive::{ArchiveLogs, Counters, Processed};
use crate::rows::{LogRow, RunRow, StatusRow};
use crate::summary::LeechSummary;

/// The tables a run reads and writes, by their configured names.
#[derive(Debug, Clone)]
pub struct LeechTables {
    /// The events table's name.
    pub events: String,
    /// The status table (GMA's `leech_status`, later `artifacts_status`).
    pub status: TableDef,
    /// The index of archived files.
    pub logs: TableDef,
}

impl Default for LeechTables {
    fn default() -> Self {
        Self {
            events: sql::EVENTS.name.to_owned(),
            status: sql::LEECH_STATUS,
            logs: sql::WORKFLOW_LOGS,
        }
    }
}

/// The knobs of one run.
#[derive(Debug, Clone)]
pub struct LeechOptions {
    /// The shard this task takes (run ids hash to shards).
    pub shard: Shard,
    /// Bounded (once over the backlog) or follow (archive new runs as they land).
    pub mode: Mode,
    /// Backfill: runs completed at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Backfill: runs completed before this.
    pub until: Option<DateTime<Utc>>,
    /// Only this repository (`owner/name`).
    pub repo: Option<String>,
    /// At most this many run attempts.
    pub limit: Option<u64>,
    /// Downloads in flight at once.
    pub concurrency: usize,
    /// Tries per run attempt before a failure is final.
    pub max_attempts: i64,
    /// The wait after a first failure before the next try; it doubles with every failure.
    pub retry_backoff: Duration,
    /// How long GitHub keeps logs (90 days by default; 1 to 400 by repository setting).
    pub retention: Duration,
    /// Show a progress bar.
    pub progress_bar: bool,
    /// Cancelled on SIGTERM/SIGINT.
    pub shutdown: CancellationToken,
}

impl Default for LeechOptions {
    fn default() -> Self {
        Self {
            shard: Shard::ALL,
            mode: Mode::Bounded,
            since: None,
            until: None,
            repo: None,
            limit: None,
            concurrency: 8,
            max_attempts: 5,
            retry_backoff: Duration::from_secs(3600),
            retention: Duration::from_secs(90 * 86_400),
            progress_bar: false,
            shutdown: CancellationToken::new(),
        }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum LeechError {
    /// A table could not be created.
    #[error("the leech job cannot run without its table {table}")]
    Table {
        /// The table.
        table: String,
        /// What failed.
        #[source]
        source: WarehouseError,
    },
    /// The pipeline failed (source query, a table write).
    #[error(
        "the leech pipeline failed; the rows written so far are kept and the next run continues"
    )]
    Flow(#[from] FlowError),
}

/// Everything a run needs.
pub struct LeechJob {
    /// GitHub's REST API.
    pub github: GitHubClient,
    /// The App whose installations' tokens read the logs.
    pub app: Arc<AppKey>,
    /// Where the events and the two tables are.
    pub warehouse: Arc<dyn Warehouse>,
    /// Their names.
    pub tables: LeechTables,
    /// Where the zips go.
    pub logs: Arc<dyn BlobStore>,
    /// The knobs.
    pub options: LeechOptions,
}

impl LeechJob {
    /// Runs: bounded to the end of the backlog, or following new runs until shutdown.
    ///
    /// # Errors
    /// [`LeechError`] when a table cannot be created or the pipeline fails.
    pub async fn run(self) -> Result<LeechSummary, LeechError> {
        let options = &self.options;
        let status = self.open_table(self.tables.status).await?;
        let logs = self.open_table(self.tables.logs).await?;
        let source = self.source();
        let counters = Arc::new(Counters::default());
        let tokens = InstallationTokens::new(self.github.clone(), self.app.clone());
        let archive = ArchiveLogs {
            tokens: tokens.clone(),
            github: self.github.clone(),
            logs: self.logs.clone(),
            retention: options.retention,
            max_attempts: options.max_attempts,
            counters: counters.clone(),
        };
        let sink = SplitSink::new(
            |processed: Processed| (processed.logs, processed.status.into_iter().collect()),
            TableSink::<LogRow>::with_writer(logs),
            TableSink::<StatusRow>::with_writer(status),
        );
        let step = ParDo::new("archive", archive).concurrency(options.concurrency.max(1));
        let pipeline = Pipeline::new(self.pipeline_options());
        let run = match options.limit {
            Some(limit) => {
                pipeline
                    .read("runs", Limited::new(source, limit))
                    .apply(step)
                    .write("status", sink)
                    .run()
                    .await?
            }
            None => {
                pipeline
                    .read("runs", source)
                    .apply(step)
                    .write("status", sink)
                    .run()
                    .await?
            }
        };
        let summary = LeechSummary {
            archived: counters.archived.load(Ordering::Relaxed),
            reused: counters.reused.load(Ordering::Relaxed),
            bytes: counters.bytes.load(Ordering::Relaxed),
            not_found: counters.not_found.load(Ordering::Relaxed),
            failed: counters.failed.load(Ordering::Relaxed),
            skipped: counters.skipped.load(Ordering::Relaxed),
            github_requests: self.github.requests_sent(),
            tokens_issued: tokens.issued(),
            run,
        };
        summary.log();
        Ok(summary)
    }

    /// Creates `table` unless it exists: once per run, before the pipeline's sinks write to it.
    async fn open_table(&self, table: TableDef) -> Result<TableWriter, LeechError> {
        TableWriter::open(self.warehouse.clone(), table)
            .await
            .map_err(|source| LeechError::Table {
                table: table.name.to_owned(),
                source,
            })
    }

    /// The source: completed run attempts not archived yet, within the run's bounds.
    fn source(&self) -> SqlSource<RunRow> {
        let options = &self.options;
        let source_sql = sql::name_tables(
            sql::LEECH_SOURCE,
            &[
                ("events_table", &self.tables.events),
                ("status_table", self.tables.status.name),
            ],
        );
        let params = Params::new()
            .with("max_attempts", ParamValue::Int64(options.max_attempts))
            .with(
                "backoff_seconds",
                ParamValue::Int64(
                    i64::try_from(options.retry_backoff.as_secs()).unwrap_or(i64::MAX),
                ),
            )
            .with("now", ParamValue::Timestamp(Utc::now()))
            .with(
                "since",
                ParamValue::Timestamp(options.since.unwrap_or(DateTime::<Utc>::UNIX_EPOCH)),
            )
            .with(
                "until",
                ParamValue::Timestamp(options.until.unwrap_or_else(far_future)),
            )
            .with(
                "repo",
                ParamValue::String(options.repo.clone().unwrap_or_default()),
            );
        SqlSource::<RunRow>::new(self.warehouse.clone(), &source_sql)
            .params(params)
            .key("run_id")
            .time("received")
    }

    /// The pipeline's shard, mode and knobs.
    fn pipeline_options(&self) -> PipelineOptions {
        let options = &self.options;
        PipelineOptions {
            shard: options.shard,
            mode: options.mode,
            shutdown: options.shutdown.clone(),
            watermarks: Some(WatermarkStore::new(self.warehouse.clone())),
            progress_bar: options.progress_bar,
            sink_batch: 200,
            ..PipelineOptions::new("leech")
        }
    }
}

/// A time after every run's completion: the default upper bound.
fn far_future() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or_else(Utc::now)
}
