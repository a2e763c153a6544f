//! The command line: every flag with its environment variable, and GMA's variable names where
//! they mean the same thing.

use std::path::PathBuf;

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use gma_pipeline::flow::Shard;
use gma_pipeline::github::HookRef;

use crate::duration_arg::parse_duration;
use crate::size_arg::parse_memory_limit;

/// gma: GitHub events pipeline. Lands GitHub webhook deliveries durably and lets you query them.
#[derive(Debug, Parser)]
#[command(name = "gma", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log format: human text on a terminal and JSON lines otherwise (auto), or either always.
    #[arg(long, env = "GMA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto, global = true)]
    pub log_format: LogFormat,
    /// Log filter, as tracing's EnvFilter reads it (e.g. "info", "gma_ingest=debug").
    #[arg(long, env = "GMA_LOG", default_value = "info", global = true)]
    pub log_level: String,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the webhook endpoint and land every verified delivery in the data directory (or BigQuery with --sink bigquery).
    Serve(Box<ServeArgs>),
    /// Import webhook events from NDJSON files (GMA's BigQuery export, or {headers, payload} lines), plain or .gz, or directories of them.
    Import(ImportArgs),
    /// Recover webhook deliveries GitHub failed to land: list the App's (and hooks') deliveries back to the checkpoint and redeliver or fetch every event that never landed. A bounded run, for cron or Cloud Run Jobs.
    Retry(Box<RetryArgs>),
    /// Archive the logs of every completed workflow run (from workflow_run events) into a blob store and index them, before GitHub deletes them. Bounded, or --follow to archive new runs as they land.
    Leech(Box<LeechArgs>),
    /// Run SQL (BigQuery dialect) over the data directory's tables and views, e.g. "SELECT event, COUNT(*) FROM events GROUP BY event" or "SELECT * FROM pull_requests".
    Query(QueryArgs),
    /// The analyst views of views/ (pull requests, reviews, deployments, DORA metrics): list them, or create them in BigQuery. Locally, gma query reads them without any step.
    Views(ViewsArgs),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Text on a terminal, JSON lines otherwise (as on Cloud Run).
    Auto,
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

/// `gma serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port to listen on (Cloud Run sets PORT).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, env = "GMA_HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Data directory of the embedded event store.
    #[arg(long, env = "GMA_DATA_DIR", default_value = "./gma-data")]
    pub data_dir: PathBuf,
    /// With --sink local, leave the typed event tables to `gma views refresh` instead of keeping them current in the background (seconds after each delivery).
    #[arg(long, env = "GMA_SERVE_NO_REFRESH")]
    pub no_refresh: bool,
    /// The GitHub webhook's secret (GMA's variable name).
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// More accepted secrets, comma- or newline-separated: during a rotation, both the old and the new.
    #[arg(long, env = "GMA_WEBHOOK_SECRETS", hide_env_values = true)]
    pub webhook_secrets: Option<String>,
    /// A file of accepted secrets, one per line ('#' starts a comment).
    #[arg(long, env = "GMA_WEBHOOK_SECRETS_FILE")]
    pub webhook_secrets_file: Option<PathBuf>,
    /// Largest request body accepted; larger deliveries get 413. GitHub caps payloads at 25 MiB.
    #[arg(long, env = "GMA_MAX_BODY_BYTES", default_value_t = gma_ingest::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: u64,
    /// Webhook requests served at once; more wait for a slot.
    #[arg(long, env = "GMA_MAX_CONCURRENT_REQUESTS", default_value_t = 1024)]
    pub max_concurrent_requests: usize,
    /// Seconds a request body may take to arrive.
    #[arg(long, env = "GMA_BODY_TIMEOUT_SECS", default_value_t = 60)]
    pub body_timeout_secs: u64,
    /// Seconds in-flight requests may take to finish after SIGTERM or SIGINT.
    #[arg(long, env = "GMA_SHUTDOWN_TIMEOUT_SECS", default_value_t = 25)]
    pub shutdown_timeout_secs: u64,
    /// Seal a log segment (and compact it into Parquet) once it holds this many bytes.
    #[arg(long, env = "GMA_SEGMENT_MAX_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub segment_max_bytes: u64,
    /// Seal a log segment (and compact it into Parquet) once it is this many seconds old.
    #[arg(long, env = "GMA_SEAL_AFTER_SECS", default_value_t = 300)]
    pub seal_after_secs: u64,
    /// Where events land: the embedded store of --data-dir (local), or a BigQuery table.
    #[arg(long, env = "GMA_SINK", value_enum, default_value_t = Backend::Local)]
    pub sink: Backend,
    /// The BigQuery table and blob store of --sink bigquery.
    #[command(flatten)]
    pub bigquery: BigQueryArgs,
}

/// The BigQuery dataset of `--sink bigquery` (`gma serve`, `gma import`) and `--warehouse
/// bigquery` (`gma retry`, `gma leech`), and the events table in it. The flags exist in every
/// build, so a build without the cargo feature `bigquery` says why it cannot use them.
#[derive(Debug, Clone, Args)]
#[cfg_attr(not(feature = "bigquery"), allow(dead_code))]
pub struct BigQueryArgs {
    /// BigQuery: the Google Cloud project of the dataset (GMA's PROJECT_ID; BIG_QUERY_PROJECT_ID
    /// is read too).
    #[arg(long, env = "PROJECT_ID", visible_alias = "project")]
    pub bigquery_project: Option<String>,
    /// BigQuery: the dataset of the events table, created if missing (GMA's DATASET_ID).
    #[arg(long, env = "DATASET_ID", visible_alias = "dataset")]
    pub bigquery_dataset: Option<String>,
    /// BigQuery: the events table's name, created from sql/events.sql if missing (GMA's EVENTS_TABLE_ID).
    #[arg(long, env = "EVENTS_TABLE_ID", default_value = "events")]
    pub events_table: String,
    /// BigQuery: an emulator's address (host:port or a URL) instead of Google; no credentials are sent to it.
    #[arg(long, env = "BIGQUERY_EMULATOR_HOST")]
    pub bigquery_endpoint: Option<String>,
    /// BigQuery: a service account key file; without it, application default credentials
    /// (GOOGLE_APPLICATION_CREDENTIALS, gcloud's login, or the Cloud Run service account).
    #[arg(long, env = "GMA_BIGQUERY_KEY_FILE")]
    pub bigquery_key_file: Option<PathBuf>,
    /// BigQuery: the location to create the dataset in and run jobs in (e.g. US, EU).
    #[arg(long, env = "GMA_BIGQUERY_LOCATION")]
    pub bigquery_location: Option<String>,
    /// BigQuery: where payloads too large for a row (over 8 MiB) go, the row keeping
    /// payload_uri: gs://bucket[/prefix] or a directory. Without it such deliveries get 503.
    #[arg(long, env = "GMA_BLOB_STORE")]
    pub blob_store: Option<String>,
}

/// Where gma keeps events and tables: `--sink` of `gma serve` and `gma import` (where events
/// land), `--warehouse` of `gma retry` and `gma leech` (where their tables are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The data directory: its embedded event store and tables.
    Local,
    /// A BigQuery dataset (events land by streaming inserts; 2xx once BigQuery acknowledged the row).
    Bigquery,
}

/// `gma import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files or directories to import. A directory is searched recursively for .json, .ndjson
    /// and .jsonl files, each optionally .gz.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Data directory of the embedded event store. It must not be in use by a running `gma serve`.
    #[arg(long, env = "GMA_DATA_DIR", default_value = "./gma-data")]
    pub data_dir: PathBuf,
    /// Threads parsing and compressing (default: one per CPU).
    #[arg(long, env = "GMA_IMPORT_WORKERS")]
    pub workers: Option<usize>,
    /// Import only shard INDEX/COUNT of the files (by a hash of each path), e.g. 0/4, so N
    /// tasks given the same paths split them. Default: Cloud Run Jobs'
    /// CLOUD_RUN_TASK_INDEX/CLOUD_RUN_TASK_COUNT when set, else every file.
    #[arg(long, env = "GMA_SHARD", value_name = "INDEX/COUNT")]
    pub shard: Option<Shard>,
    /// Where events land: the embedded store of --data-dir (local), or a BigQuery table (the
    /// same flags as `gma serve`).
    #[arg(long, env = "GMA_SINK", value_enum, default_value_t = Backend::Local)]
    pub sink: Backend,
    /// The BigQuery table and blob store of --sink bigquery.
    #[command(flatten)]
    pub bigquery: BigQueryArgs,
    #[command(flatten)]
    pub memory: MemoryArgs,
}

/// `gma query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL statement, in BigQuery's dialect. Tables: events.
    pub sql: String,
    /// Data directory of the embedded event store.
    #[arg(long, env = "GMA_DATA_DIR", default_value = "./gma-data")]
    pub data_dir: PathBuf,
    /// Output format: a table on a terminal and CSV otherwise (auto), or as named.
    #[arg(long, value_enum, default_value_t = OutputFormat::Auto)]
    pub format: OutputFormat,
    /// Answer from the typed event tables as they are, without bringing them up to date first (the views may miss the newest events).
    #[arg(long)]
    pub no_refresh: bool,
    #[command(flatten)]
    pub views: ViewSettingsArgs,
    #[command(flatten)]
    pub memory: MemoryArgs,
}

/// How much memory queries over the data directory may use (`gma query`, and `gma import`,
/// `gma retry` and `gma leech` on the data directory).
#[derive(Debug, Clone, Copy, Args)]
pub struct MemoryArgs {
    /// Memory the process's queries over the data directory may hold together, e.g. 512MiB, 2G,
    /// 1.5GiB: sorts, aggregates and sort-merge joins spill to DATA_DIR/tmp/spill beyond it; a
    /// query that cannot spill fails with a message naming this flag. Default: half of the
    /// machine's memory (or of the container's cgroup limit).
    #[arg(long, env = "GMA_MEMORY_LIMIT", value_parser = parse_memory_limit, value_name = "SIZE")]
    pub memory_limit: Option<usize>,
}

/// The team's definitions the DORA views read (`gma query` and `gma views apply`).
#[derive(Debug, Clone, Args)]
pub struct ViewSettingsArgs {
    /// Issue labels that mark an incident for dora_time_to_restore, compared without case (repeat the flag or separate with commas).
    #[arg(
        long = "incident-label",
        env = "GMA_INCIDENT_LABELS",
        value_delimiter = ',',
        default_value = "incident"
    )]
    pub incident_labels: Vec<String>,
    /// Deployment environments that count as production for the DORA views, compared without case, besides those GitHub marks production_environment.
    #[arg(
        long = "production-environment",
        env = "GMA_PRODUCTION_ENVIRONMENTS",
        value_delimiter = ',',
        default_value = "production,prod"
    )]
    pub production_environments: Vec<String>,
}

/// `gma views`.
#[derive(Debug, Args)]
pub struct ViewsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ViewsCommand,
}

/// `gma views` subcommands.
#[derive(Debug, Subcommand)]
pub enum ViewsCommand {
    /// List every view in dependency order: its layer, its name and what it computes.
    List,
    /// Create or replace the views in a BigQuery dataset, in dependency order (the events table is created first if missing; the event views are typed tables, kept up to date by `gma views refresh`).
    Apply(Box<ViewsApplyArgs>),
    /// Bring the typed event tables up to date with the events stored: once, or following new events until SIGTERM/SIGINT. The first refresh builds them from all stored events.
    Refresh(Box<ViewsRefreshArgs>),
}

/// `gma views refresh`.
#[derive(Debug, Args)]
pub struct ViewsRefreshArgs {
    /// Keep refreshing every --interval until SIGTERM/SIGINT.
    #[arg(long)]
    pub follow: bool,
    /// In --follow mode, the time between refreshes.
    #[arg(long, env = "GMA_REFRESH_INTERVAL", value_parser = parse_duration, default_value = "1m")]
    pub interval: Duration,
    /// How late an event may land after its received time and still be taken by the next refresh (several servers land events a little out of order).
    #[arg(long, env = "GMA_REFRESH_LATENESS", value_parser = parse_duration, default_value = "1h")]
    pub lateness: Duration,
    /// Refresh only these typed tables (repeat or separate with commas); `gma views list` names the event views, whose tables these are.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Take only shard INDEX/COUNT of the tables (by a hash of the name), so N tasks split the work. Default: Cloud Run Jobs' CLOUD_RUN_TASK_INDEX/CLOUD_RUN_TASK_COUNT when set.
    #[arg(long, env = "GMA_SHARD", value_name = "INDEX/COUNT")]
    pub shard: Option<Shard>,
    /// Tables refreshed at once.
    #[arg(long, env = "GMA_REFRESH_CONCURRENCY", default_value_t = 2)]
    pub concurrency: usize,
    /// Data directory of the embedded store (the warehouse of --warehouse local).
    #[arg(long, env = "GMA_DATA_DIR", default_value = "./gma-data")]
    pub data_dir: PathBuf,
    /// Where the events and typed tables are: the data directory (local, the default) or BigQuery. GMA_SINK is read when GMA_WAREHOUSE is unset.
    #[arg(long, visible_alias = "sink", env = "GMA_WAREHOUSE", value_enum)]
    pub warehouse: Option<Backend>,
    /// The BigQuery dataset of --warehouse bigquery.
    #[command(flatten)]
    pub bigquery: BigQueryArgs,
    #[command(flatten)]
    pub memory: MemoryArgs,
}

/// `gma views apply`.
#[derive(Debug, Args)]
pub struct ViewsApplyArgs {
    /// Print the DDL instead of running it; needs no credentials.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply only these views (and the views they read); repeat or separate with commas.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    #[command(flatten)]
    pub views: ViewSettingsArgs,
    #[command(flatten)]
    pub bigquery: BigQueryArgs,
}

/// How `gma query` prints rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table on a terminal, CSV otherwise.
    Auto,
    /// An aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

/// How gma reaches GitHub's API, shared by the jobs that call it.
#[derive(Debug, Args)]
pub struct GitHubArgs {
    /// GitHub's REST API: https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise
    /// Server (GMA's GITHUB_ENTERPRISE_SERVER_URL, https://HOST, is read too).
    #[arg(long, env = "GITHUB_API_URL")]
    pub github_api_url: Option<String>,
    /// The GitHub App's id (GMA's GITHUB_APP_ID).
    #[arg(long, env = "GITHUB_APP_ID")]
    pub github_app_id: Option<String>,
    /// The GitHub App's private key, the PEM text (GMA's GITHUB_PRIVATE_KEY).
    #[arg(
        long,
        env = "GITHUB_PRIVATE_KEY",
        hide_env_values = true,
        conflicts_with = "github_private_key_file"
    )]
    pub github_private_key: Option<String>,
    /// The GitHub App's private key, a .pem file.
    #[arg(long, env = "GITHUB_PRIVATE_KEY_FILE")]
    pub github_private_key_file: Option<PathBuf>,
    /// A token for repository and organization hooks (needs read access to their webhooks).
    #[arg(long, env = "GITHUB_TOKEN", hide_env_values = true)]
    pub github_token: Option<String>,
    /// Mutations (POSTs) sent to GitHub per minute at most, under its secondary rate limits.
    #[arg(long, env = "GMA_GITHUB_MUTATIONS_PER_MINUTE", default_value_t = 60)]
    pub github_mutations_per_minute: u32,
    /// The longest a call waits for GitHub's rate limit to reset before the run ends.
    #[arg(long, env = "GMA_GITHUB_MAX_RATE_LIMIT_WAIT", value_parser = parse_duration, default_value = "15m")]
    pub github_max_rate_limit_wait: Duration,
}

/// `gma retry`.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The webhooks whose deliveries are examined: app (the GitHub App's), repos/OWNER/REPO/hooks/ID, orgs/ORG/hooks/ID. Repeat or separate with commas.
    #[arg(
        long = "hook",
        env = "GMA_RETRY_HOOKS",
        value_delimiter = ',',
        default_value = "app"
    )]
    pub hooks: Vec<HookRef>,
    /// How events are recovered: redeliver (GitHub sends them again to gma serve) or fetch
    /// (gma reads each payload from GitHub's delivery log and lands it itself).
    #[arg(long, env = "GMA_RETRY_MODE", value_enum, default_value_t = RetryMode::Redeliver)]
    pub mode: RetryMode,
    /// List what would be recovered; change nothing (no lock, no redelivery, no rows).
    #[arg(long)]
    pub dry_run: bool,
    /// Backfill: examine deliveries from this time (RFC 3339 or YYYY-MM-DD) instead of going back to the checkpoint; checkpoints are neither read nor written.
    #[arg(long, value_parser = parse_time)]
    pub since: Option<DateTime<Utc>>,
    /// Backfill: examine deliveries up to this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<DateTime<Utc>>,
    /// How long GitHub keeps deliveries redeliverable: 3d on github.com, 7d on GitHub Enterprise Server.
    #[arg(long, env = "GMA_RETRY_WINDOW", value_parser = parse_duration, default_value = "3d")]
    pub window: Duration,
    /// Raise the alert when an unrecovered failure is this close to the end of the window.
    #[arg(long, env = "GMA_RETRY_ALERT_MARGIN", value_parser = parse_duration, default_value = "1d")]
    pub alert_margin: Duration,
    /// The run's time budget (GMA's JOB_TIMEOUT): once spent no further recovery starts, and the
    /// next run continues from the checkpoint.
    #[arg(long, env = "JOB_TIMEOUT", value_parser = parse_duration, default_value = "45m")]
    pub max_duration: Duration,
    /// Runs that may fail to recover one event before it is given up on (recorded in failure_events).
    #[arg(long, env = "GMA_RETRY_GIVE_UP_AFTER", default_value_t = 5)]
    pub give_up_after: u32,
    /// Recoveries in flight at once.
    #[arg(long, env = "GMA_RETRY_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
    /// Where the lock lives: gs://bucket[/prefix] or a directory (default: GMA's BUCKET_NAME as
    /// gs://BUCKET_NAME, else DATA_DIR/locks).
    #[arg(long, env = "GMA_LOCK_STORE")]
    pub lock_store: Option<String>,
    /// How long the lock lasts without renewal (GMA's LOCK_TTL); a running job renews it.
    #[arg(long, env = "LOCK_TTL", value_parser = parse_duration, default_value = "5m")]
    pub lock_ttl: Duration,
    /// How much longer than its expiry a lock is respected, for clocks that disagree (GMA's LOCK_TTL_CLOCK_SKEW).
    #[arg(long, env = "LOCK_TTL_CLOCK_SKEW", value_parser = parse_duration, default_value = "10s")]
    pub lock_ttl_clock_skew: Duration,
    /// Data directory of the embedded store (the warehouse of --warehouse local).
    #[arg(long, env = "GMA_DATA_DIR", default_value = "./gma-data")]
    pub data_dir: PathBuf,
    /// Where the events, checkpoint and failure_events tables are: the data directory (local,
    /// the default) or BigQuery. GMA_SINK is read when GMA_WAREHOUSE is unset.
    #[arg(long, visible_alias = "sink", env = "GMA_WAREHOUSE", value_enum)]
    pub warehouse: Option<Backend>,
    #[command(flatten)]
    pub memory: MemoryArgs,
    /// BigQuery: the checkpoint table's name (GMA's CHECKPOINT_TABLE_ID).
    #[arg(long, env = "CHECKPOINT_TABLE_ID", default_value = "checkpoint")]
    pub checkpoint_table: String,
    /// BigQuery: the failure table's name.
    #[arg(long, env = "GMA_FAILURE_TABLE_ID", default_value = "failure_events")]
    pub failure_table: String,
    /// GitHub.
    #[command(flatten)]
    pub github: GitHubArgs,
    /// The BigQuery dataset of --warehouse bigquery.
    #[command(flatten)]
    pub bigquery: BigQueryArgs,
}

/// How `gma retry` recovers an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RetryMode {
    /// GitHub delivers it again.
    Redeliver,
    /// gma reads it from GitHub's delivery log and lands it.
    Fetch,
}

/// A time on the command line: RFC 3339, or a date (midnight UTC).
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{text:?} is not a time; write 2026-11-28 or 2026-11-28T10:00:00Z"))
}

/// `gma leech`.
#[derive(Debug, Args)]
pub struct LeechArgs {
    /// Keep archiving new runs as their events land, until SIGTERM/SIGINT (the watermark is
    /// saved, and the next run resumes from it).
    #[arg(long)]
    pub follow: bool,
    /// In --follow mode, how long to wait before looking again when no new runs came.
    #[arg(long, env = "GMA_LEECH_POLL", value_parser = parse_duration, default_value = "30s")]
    pub poll: Duration,
    /// Take only shard INDEX/COUNT of the runs (by a hash of the run id), so N tasks split the
    /// work. Default: Cloud Run Jobs' CLOUD_RUN_TASK_INDEX/CLOUD_RUN_TASK_COUNT when set.
    #[arg(long, env = "GMA_SHARD", value_name = "INDEX/COUNT")]
    pub shard: Option<Shard>,
    /// Backfill: only runs completed at or after this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<DateTime<Utc>>,
    /// Backfill: only runs completed before this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<DateTime<Utc>>,
    /// Only this repository (owner/name).
    #[arg(long)]
    pub repo: Option<String>,
    /// At most this many run attempts.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Downloads in flight at once.
    #[arg(long, env = "GMA_LEECH_CONCURRENCY", default_value_t = 8)]
    pub concurrency: usize,
    /// Tries per run attempt before a failure is final.
    #[arg(long, env = "GMA_LEECH_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: i64,
    /// Wait after a first failure before the next try; doubles with every failure.
    #[arg(long, env = "GMA_LEECH_RETRY_BACKOFF", value_parser = parse_duration, default_value = "1h")]
    pub retry_backoff: Duration,
    /// How long GitHub keeps logs: a 404 on a run completed longer ago is final (NOT_FOUND).
    #[arg(long, env = "GMA_LOG_RETENTION", value_parser = parse_duration, default_value = "90d")]
    pub log_retention: Duration,
    /// Where the zips go: gs://bucket[/prefix] or a directory (default: GMA's LOGS_BUCKET_NAME
    /// as gs://LOGS_BUCKET_NAME, else DATA_DIR/logs).
    #[arg(long, env = "GMA_LOGS_STORE")]
    pub logs_store: Option<String>,
    /// Data directory of the embedded store (the warehouse of --warehouse local).
    #[arg(long, env = "GMA_DATA_DIR", default_value = "./gma-data")]
    pub data_dir: PathBuf,
    /// Where the events, leech_status and workflow_logs tables are: the data directory (local,
    /// the default) or BigQuery. GMA_SINK is read when GMA_WAREHOUSE is unset.
    #[arg(long, visible_alias = "sink", env = "GMA_WAREHOUSE", value_enum)]
    pub warehouse: Option<Backend>,
    #[command(flatten)]
    pub memory: MemoryArgs,
    /// BigQuery: the status table's name (GMA's ARTIFACTS_TABLE_ID).
    #[arg(long, env = "ARTIFACTS_TABLE_ID", default_value = "leech_status")]
    pub status_table: String,
    /// BigQuery: the log index table's name.
    #[arg(
        long,
        env = "GMA_WORKFLOW_LOGS_TABLE_ID",
        default_value = "workflow_logs"
    )]
    pub logs_table: String,
    /// GitHub.
    #[command(flatten)]
    pub github: GitHubArgs,
    /// The BigQuery dataset of --warehouse bigquery.
    #[command(flatten)]
    pub bigquery: BigQueryArgs,
}
