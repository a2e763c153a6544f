//! The step of a refresh: one typed table's day chunks, each projected and appended in turn.
//!
//! A table's chunks run one after another, never at once: a delivery redelivered a day later
//! sits in two chunks, and the later chunk must see the row the earlier one appended.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use chrono::TimeDelta;
use futures::TryStreamExt;
use gma_pipeline::flow::{BoxError, DoFn, TableWriter};
use gma_pipeline::views::ViewDef;
use gma_pipeline::warehouse::{ParamValue, Params, TableDef, Warehouse, WarehouseError};
use tokio_util::sync::CancellationToken;

use crate::job::MarkRow;
use crate::plan::Window;

/// Rows gathered before an append: one Parquet file locally, one request to BigQuery.
const APPEND_ROWS: usize = 50_000;

/// The work of one typed table: its windows cut into day chunks, oldest first.
#[derive(Debug, Clone)]
pub struct TableChunks {
    /// The event view whose SELECT projects the rows.
    pub view: &'static ViewDef,
    /// Its typed table.
    pub table: TableDef,
    /// The chunks of whole days, oldest first.
    pub chunks: Vec<Window>,
    /// On a first build, the pipeline name of its progress mark
    /// ([`crate::plan::built_mark`]), moved after every chunk.
    pub progress: Option<String>,
}

/// What one table's chunks appended.
#[derive(Debug, Clone, Copy)]
pub struct Refreshed {
    /// The typed table.
    pub table: &'static str,
    /// Rows appended.
    pub rows: u64,
}

/// Runs each chunk's query (the SQL of [`gma_pipeline::views::ViewSettings::refresh_rows`])
/// and appends its rows to the table.
pub struct RefreshTable {
    warehouse: Arc<dyn Warehouse>,
    /// The query of each typed table, by table name.
    queries: Vec<(&'static str, String)>,
    horizon: TimeDelta,
    shard: String,
    shutdown: CancellationToken,
}

impl RefreshTable {
    /// The step over `warehouse` with each table's query, comparing delivery ids with the rows
    /// received `horizon` before a chunk; once `shutdown` is cancelled a table stops between
    /// chunks (what it appended stays, and is found held when the next refresh redoes it).
    pub fn new(
        warehouse: Arc<dyn Warehouse>,
        queries: Vec<(&'static str, String)>,
        horizon: Duration,
        shard: String,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            warehouse,
            queries,
            horizon: TimeDelta::from_std(horizon).unwrap_or(TimeDelta::MAX),
            shard,
            shutdown,
        }
    }

    /// Records that a first build holds every event received up to `until`.
    async fn record_progress(
        &self,
        pipeline: &str,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), gma_pipeline::flow::AppendError> {
        let row = MarkRow {
            pipeline: pipeline.to_owned(),
            shard: self.shard.clone(),
            watermark: Some(until),
            updated: Some(chrono::Utc::now()),
        };
        TableWriter::new(Arc::clone(&self.warehouse), gma_pipeline::sql::WATERMARKS)?
            .append(&[row])
            .await
    }

    /// Projects and appends the events of one day chunk; the rows appended.
    async fn chunk(
        &self,
        table: &TableDef,
        sql: &str,
        window: Window,
    ) -> Result<u64, WarehouseError> {
        let held_after = window
            .after
            .checked_sub_signed(self.horizon)
            .unwrap_or(window.after);
        let params = Params::new()
            .with("after", ParamValue::Timestamp(window.after))
            .with("until", ParamValue::Timestamp(window.until))
            .with("held_after", ParamValue::Timestamp(held_after));
        let mut stream = self.warehouse.query_stream(sql, &params).await?;
        let (mut pending, mut pending_rows, mut rows) = (Vec::new(), 0, 0);
        while let Some(batch) = stream.try_next().await? {
            if batch.num_rows() == 0 {
                continue;
            }
            pending_rows += batch.num_rows();
            pending.push(batch);
            if pending_rows >= APPEND_ROWS {
                rows += self.append(table, &mut pending).await?;
                pending_rows = 0;
            }
        }
        rows += self.append(table, &mut pending).await?;
        Ok(rows)
    }

    async fn append(
        &self,
        table: &TableDef,
        batches: &mut Vec<RecordBatch>,
    ) -> Result<u64, WarehouseError> {
        if batches.is_empty() {
            return Ok(0);
        }
        let batch = arrow::compute::concat_batches(&batches[0].schema(), batches.iter())?;
        batches.clear();
        let rows = batch.num_rows() as u64;
        self.warehouse.append(table, batch).await?;
        Ok(rows)
    }
}

#[async_trait]
impl DoFn for RefreshTable {
    type In = TableChunks;
    type Out = Refreshed;

    async fn process(&self, work: TableChunks) -> Result<Vec<Refreshed>, BoxError> {
        let name = work.table.name;
        let Some((_, sql)) = self.queries.iter().find(|(table, _)| *table == name) else {
            return Err(format!("no refresh query for {name}").into());
        };
        let mut rows = 0;
        for window in work.chunks {
            if self.shutdown.is_cancelled() {
                return Err(format!(
                    "{name}: stopped by a shutdown before the day after {}; the next refresh goes on from there",
                    window.after.to_rfc3339()
                )
                .into());
            }
            rows += self
                .chunk(&work.table, sql, window)
                .await
                .map_err(|error| {
                    format!(
                        "{name}, the events received after {} until {}: {}",
                        window.after.to_rfc3339(),
                        window.until.to_rfc3339(),
                        gma_pipeline::error::error_chain(&error)
                    )
                })?;
            if let Some(pipeline) = &work.progress {
                self.record_progress(pipeline, window.until)
                    .await
                    .map_err(|error| {
                        format!(
                            "{name}: recording the first build's progress: {}",
                            gma_pipeline::error::error_chain(&error)
                        )
                    })?;
            }
        }
        Ok(vec![Refreshed { table: name, rows }])
    }

    fn describe(&self, work: &TableChunks) -> String {
        let span = match (work.chunks.first(), work.chunks.last()) {
            (Some(first), Some(last)) => format!(
                " ({} day chunks, received after {} until {})",
                work.chunks.len(),
                first.after.to_rfc3339(),
                last.until.to_rfc3339()
            ),
            _ => String::new(),
        };
        format!("{}{span}", work.table.name)
    }
}
