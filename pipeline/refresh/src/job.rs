//! One refresh: read the watermarks and requests, plan the day chunks, run them, move the
//! watermarks of the tables whose chunks all succeeded.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use gma_pipeline::error::error_chain;
use gma_pipeline::flow::rows::{RowError, from_batch};
use gma_pipeline::flow::{
    BoxError, CollectSink, DoFn, FlowError, IterSource, ParDo, Pipeline, PipelineOptions,
    TableWriter,
};
use gma_pipeline::sql::{self, TableDef};
use gma_pipeline::views::{ViewDef, ViewError, ViewSettings, typed_views};
use gma_pipeline::warehouse::local::{LocalWarehouse, compact};
use gma_pipeline::warehouse::{ParamValue, Params, Warehouse, WarehouseError};
use serde::{Deserialize, Serialize};

use crate::lock::RefreshLock;
use crate::options::{REDELIVERY_HORIZON, RefreshOptions};
use crate::plan::{self, Marks, Request, Window};
use crate::step::{RefreshTable, Refreshed, TableChunks};
use crate::summary::RefreshSummary;

/// Why a refresh could not run, or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Reading the watermarks or requests, creating a table or writing the watermarks failed.
    #[error("the warehouse")]
    Warehouse(#[from] WarehouseError),
    /// A typed table's query could not be built (a bug caught by tests).
    #[error("building the refresh query")]
    View(#[from] ViewError),
    /// A row of the watermarks or requests could not be read.
    #[error("reading the refresh state")]
    Rows(#[from] RowError),
    /// The watermarks could not be written; the rows appended stay, and the next refresh finds
    /// them held.
    #[error("writing the watermarks")]
    Marks(#[from] gma_pipeline::flow::AppendError),
    /// The pipeline stopped.
    #[error("the refresh pipeline")]
    Flow(#[from] FlowError),
    /// Compacting the tables after a refresh failed; the refresh's rows stand.
    #[error("compacting the typed tables")]
    Compact(#[source] WarehouseError),
    /// The data directory's refresh lock could not be taken.
    #[error("taking the refresh lock (is the data directory writable?)")]
    Lock(#[source] std::io::Error),
    /// Some tables failed or were stopped; they keep their watermarks and the next refresh
    /// redoes them, the others moved on.
    #[error(
        "{failed} of {tables_run} typed tables were not refreshed ({tables}), first: {first}; run the refresh again once the cause is fixed"
    )]
    Tables {
        /// Tables that failed.
        failed: u64,
        /// Tables run.
        tables_run: u64,
        /// The tables left behind.
        tables: String,
        /// The first failure.
        first: String,
    },
}

/// A watermark row (`sql/watermarks.sql`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MarkRow {
    pub(crate) pipeline: String,
    #[serde(default)]
    pub(crate) shard: String,
    pub(crate) watermark: Option<DateTime<Utc>>,
    #[serde(default)]
    pub(crate) updated: Option<DateTime<Utc>>,
}

/// What the plan needs to know of the warehouse.
struct State {
    marks: HashMap<String, DateTime<Utc>>,
    requests: Vec<Request>,
}

/// Events of one type received on one day (`sql/refresh_days.sql`).
#[derive(Debug, Deserialize)]
struct DayCount {
    event: Option<String>,
    day: Option<NaiveDate>,
    events: i64,
}

/// At most this many events of a table's type in one chunk (unless a single day holds more):
/// the dedupe and projection of a chunk run over its events at once.
const CHUNK_EVENTS: u64 = 5_000;

/// Brings the typed tables of the data directory `dir` up to date, as [`refresh`] does, holding
/// its [`RefreshLock`] (waiting while another process refreshes); then, when `compact` says so,
/// merges the small files appends left in the typed tables and the refresh's own tables.
///
/// # Errors
/// [`RefreshError::Lock`], or as [`refresh`]; [`RefreshError::Compact`] when the refresh
/// succeeded and the compaction did not (nothing is lost: the files stay as they were).
pub async fn refresh_data_dir(
    dir: &std::path::Path,
    warehouse: Arc<LocalWarehouse>,
    options: &RefreshOptions,
    compact: Compaction,
) -> Result<RefreshSummary, RefreshError> {
    let _lock = RefreshLock::acquire(dir)
        .await
        .map_err(RefreshError::Lock)?;
    let mut summary = refresh(
        Arc::clone(&warehouse) as Arc<dyn Warehouse>,
        &ViewSettings::default(),
        options,
    )
    .await?;
    let wanted = match compact {
        Compaction::Never => false,
        Compaction::AfterAppends => summary.total_rows() > 0,
        Compaction::Always => true,
    };
    if wanted {
        let tables: Vec<TableDef> = typed_views()
            .map(|(_, table)| table)
            .chain([sql::WATERMARKS, sql::REFRESH_REQUESTS])
            .collect();
        summary.compacted = Some(
            warehouse
                .compact(&tables, compact::MIN_FILES)
                .await
                .map_err(RefreshError::Compact)?,
        );
    }
    Ok(summary)
}

/// Whether [`refresh_data_dir`] compacts the tables after the refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compaction {
    /// Never (a caller that compacts on its own schedule).
    Never,
    /// When the refresh appended rows.
    AfterAppends,
    /// Always (also deletes what earlier compactions replaced, once past their grace).
    Always,
}

/// Brings the typed tables `options` names (all, in its shard) up to date with the events in
/// `warehouse`, with the views' `settings` (the events table's name among them).
///
/// # Errors
/// [`RefreshError`]: nothing moved when the state could not be read; with
/// [`RefreshError::Tables`] the tables that finished moved on and the rest are redone next time.
pub async fn refresh(
    warehouse: Arc<dyn Warehouse>,
    settings: &ViewSettings,
    options: &RefreshOptions,
) -> Result<RefreshSummary, RefreshError> {
    let started = Instant::now();
    let tables = chosen(options);
    for table in [sql::WATERMARKS, sql::REFRESH_REQUESTS]
        .iter()
        .chain(tables.iter().map(|(_, t)| t))
    {
        warehouse.ensure_table(table).await?;
    }
    let now = Utc::now();
    let state = read_state(warehouse.as_ref(), &tables).await?;
    let work = plan_tables(warehouse.as_ref(), settings, options, &tables, &state, now).await?;
    let built = work
        .iter()
        .filter(|w| w.progress.is_some())
        .map(|w| w.table.name)
        .collect();
    let planned = work.iter().map(|w| w.chunks.len() as u64).sum();
    let failed_tables = Arc::new(Mutex::new(BTreeSet::new()));
    let done = run_tables(
        Arc::clone(&warehouse),
        settings,
        options,
        &tables,
        work,
        &failed_tables,
    )
    .await?;
    let failed_tables = failed_tables.lock().map(|t| t.clone()).unwrap_or_default();
    let mut summary = RefreshSummary {
        chunks: planned,
        failed_tables: done.failed,
        first_failure: done.first_failure.clone(),
        built,
        until: Some(now),
        ..RefreshSummary::default()
    };
    for (_, table) in &tables {
        summary.rows.insert(table.name, 0);
    }
    for refreshed in &done.refreshed {
        *summary.rows.entry(refreshed.table).or_default() += refreshed.rows;
    }
    let finished: Vec<TableDef> = tables
        .iter()
        .map(|(_, t)| *t)
        .filter(|t| done.refreshed.iter().any(|r| r.table == t.name))
        .collect();
    write_marks(&warehouse, &state, &finished, now, options).await?;
    summary.elapsed = started.elapsed();
    if done.failed > 0 {
        return Err(RefreshError::Tables {
            failed: done.failed,
            tables_run: tables.len() as u64,
            tables: failed_tables.into_iter().collect::<Vec<_>>().join(", "),
            first: done.first_failure.unwrap_or_default(),
        });
    }
    Ok(summary)
}

/// Each table's chunks: its windows, cut by the days that hold events of its type.
async fn plan_tables(
    warehouse: &dyn Warehouse,
    settings: &ViewSettings,
    options: &RefreshOptions,
    tables: &[(&'static ViewDef, TableDef)],
    state: &State,
    now: DateTime<Utc>,
) -> Result<Vec<TableChunks>, RefreshError> {
    let mut work = Vec::new();
    let mut days = HashMap::new();
    for (view, table) in tables {
        let marks = marks_of(&state.marks, table.name);
        let event = view.event_type().unwrap_or_default();
        let mut chunks = Vec::new();
        for window in plan::windows(&marks, &state.requests, now, options.lateness) {
            if let std::collections::hash_map::Entry::Vacant(entry) = days.entry(window) {
                entry.insert(day_counts(warehouse, settings, window).await?);
            }
            let of_type: Vec<(NaiveDate, u64)> = days[&window]
                .iter()
                .filter(|(e, _, _)| e == event)
                .map(|(_, day, n)| (*day, *n))
                .collect();
            chunks.extend(plan::chunks(window, &of_type, CHUNK_EVENTS));
        }
        work.push(TableChunks {
            view,
            table: *table,
            chunks,
            progress: marks
                .received
                .is_none()
                .then(|| plan::built_mark(table.name)),
        });
    }
    Ok(work)
}

/// The typed tables `options` names that fall in its shard.
fn chosen(options: &RefreshOptions) -> Vec<(&'static ViewDef, TableDef)> {
    typed_views()
        .filter(|(view, _)| {
            options.tables.is_empty() || options.tables.iter().any(|t| t == view.name)
        })
        .filter(|(view, _)| options.shard.takes(view.name))
        .collect()
}

fn marks_of(marks: &HashMap<String, DateTime<Utc>>, table: &str) -> Marks {
    Marks {
        received: marks.get(&plan::received_mark(table)).copied(),
        requests: marks.get(&plan::requests_mark(table)).copied(),
        built: marks.get(&plan::built_mark(table)).copied(),
    }
}

async fn read_state(
    warehouse: &dyn Warehouse,
    tables: &[(&'static ViewDef, TableDef)],
) -> Result<State, RefreshError> {
    let mut marks = HashMap::new();
    for batch in warehouse
        .query(sql::REFRESH_WATERMARKS, &Params::new())
        .await?
        .batches
    {
        for row in from_batch::<MarkRow>(&batch)? {
            if let Some(watermark) = row.watermark {
                marks.insert(row.pipeline, watermark);
            }
        }
    }
    let all_marks: Vec<Marks> = tables
        .iter()
        .map(|(_, t)| marks_of(&marks, t.name))
        .collect();
    let requested_after = all_marks
        .iter()
        .map(|m| m.requests)
        .min()
        .flatten()
        .unwrap_or(DateTime::UNIX_EPOCH);
    let params = Params::new().with("requested_after", ParamValue::Timestamp(requested_after));
    let mut requests = Vec::new();
    for batch in warehouse
        .query(sql::REFRESH_PENDING, &params)
        .await?
        .batches
    {
        requests.extend(from_batch::<Request>(&batch)?);
    }
    Ok(State { marks, requests })
}

/// The events of each type received on each day of `window`.
async fn day_counts(
    warehouse: &dyn Warehouse,
    settings: &ViewSettings,
    window: Window,
) -> Result<Vec<(String, NaiveDate, u64)>, RefreshError> {
    let sql = sql::name_tables(
        sql::REFRESH_DAYS,
        &[("events_table", settings.events_table.trim())],
    );
    let params = Params::new()
        .with("after", ParamValue::Timestamp(window.after))
        .with("until", ParamValue::Timestamp(window.until));
    let mut counts = Vec::new();
    for batch in warehouse.query(&sql, &params).await?.batches {
        for row in from_batch::<DayCount>(&batch)? {
            let (Some(event), Some(day)) = (row.event, row.day) else {
                continue;
            };
            counts.push((event, day, u64::try_from(row.events).unwrap_or(0)));
        }
    }
    Ok(counts)
}

/// What running the chunks gave.
struct Done {
    refreshed: Vec<Refreshed>,
    failed: u64,
    first_failure: Option<String>,
}

async fn run_tables(
    warehouse: Arc<dyn Warehouse>,
    settings: &ViewSettings,
    options: &RefreshOptions,
    tables: &[(&'static ViewDef, TableDef)],
    work: Vec<TableChunks>,
    failed_tables: &Arc<Mutex<BTreeSet<&'static str>>>,
) -> Result<Done, RefreshError> {
    let mut queries = Vec::with_capacity(tables.len());
    for (view, table) in tables {
        queries.push((table.name, settings.refresh_rows(view)?));
    }
    let step = Recording {
        inner: RefreshTable::new(
            warehouse,
            queries,
            REDELIVERY_HORIZON,
            options.shard.to_string(),
            options.shutdown.clone(),
        ),
        failed_tables: Arc::clone(failed_tables),
    };
    let mut pipeline = PipelineOptions::new("views_refresh");
    pipeline.shard = options.shard;
    pipeline.shutdown = options.shutdown.clone();
    pipeline.progress_bar = options.progress_bar;
    let (sink, refreshed) = CollectSink::new();
    let run = Pipeline::new(pipeline)
        .read("tables", IterSource::new(work, 1))
        .apply(
            ParDo::new("refresh", step)
                .concurrency(options.concurrency)
                .ordered(false),
        )
        .write("done", sink)
        .run()
        .await?;
    let refreshed = refreshed.lock().map(|r| r.clone()).unwrap_or_default();
    Ok(Done {
        refreshed,
        failed: run.failed,
        first_failure: run.failures.first().map(|f| f.error.clone()),
    })
}

/// The step, recording which tables failed.
struct Recording {
    inner: RefreshTable,
    failed_tables: Arc<Mutex<BTreeSet<&'static str>>>,
}

#[async_trait::async_trait]
impl DoFn for Recording {
    type In = TableChunks;
    type Out = Refreshed;

    async fn process(&self, work: TableChunks) -> Result<Vec<Refreshed>, BoxError> {
        let table = work.table.name;
        let result = self.inner.process(work).await;
        if let Err(error) = &result {
            tracing::warn!(table, error = %error_chain(error.as_ref()), "Could not refresh a typed table; its watermark stays and the next refresh redoes what is missing.");
            if let Ok(mut failed) = self.failed_tables.lock() {
                failed.insert(table);
            }
        }
        result
    }

    fn describe(&self, work: &TableChunks) -> String {
        self.inner.describe(work)
    }
}

/// Moves the watermarks of the `finished` tables, in one append: the received mark on a first
/// build or when it lags `now` by more than a quarter of the lateness (windows stay short
/// without a row per run: `gma serve` refreshes every second or so), and the requests mark to
/// the newest request taken.
async fn write_marks(
    warehouse: &Arc<dyn Warehouse>,
    state: &State,
    finished: &[TableDef],
    now: DateTime<Utc>,
    options: &RefreshOptions,
) -> Result<(), RefreshError> {
    let newest_request = state.requests.iter().map(|r| r.requested).max();
    let step = chrono::TimeDelta::from_std(options.lateness / 4).unwrap_or_default();
    let mut rows = Vec::new();
    let mut mark = |pipeline: String, watermark: DateTime<Utc>| {
        rows.push(MarkRow {
            pipeline,
            shard: options.shard.to_string(),
            watermark: Some(watermark),
            updated: Some(now),
        });
    };
    for table in finished {
        let marks = marks_of(&state.marks, table.name);
        if marks.received.is_none_or(|m| now - m > step) {
            mark(plan::received_mark(table.name), now);
        }
        if let Some(newest) = newest_request
            && marks.requests.is_none_or(|taken| newest > taken)
        {
            mark(plan::requests_mark(table.name), newest);
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    TableWriter::new(Arc::clone(warehouse), sql::WATERMARKS)?
        .append(&rows)
        .await?;
    Ok(())
}
