//! A source that reads typed rows with SQL from a warehouse, sharded and (in follow mode) after a
//! watermark.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use serde::de::DeserializeOwned;

use super::rows;
use super::source::{Mode, Source, SourceContext, Sourced};
use super::transform::BoxError;
use crate::sql;
use crate::warehouse::{BatchStream, ParamValue, Params, Warehouse};

/// Reads rows of a SQL query (a file of `sql/`, BigQuery dialect) as `T`s.
///
/// - With a [`key`](SqlSource::key) column, a sharded run reads only the rows whose key hashes
///   to its shard (`sql/source_shard.sql` wraps the query; the warehouse pushes the predicate
///   down).
/// - With a [`time`](SqlSource::time) column too, rows come oldest first and carry their time,
///   which moves the run's watermark. In follow mode the source re-runs the query for rows after
///   the newest time it has seen (less [`lateness`](SqlSource::lateness), for rows that commit
///   out of order), skipping keys it already yielded, and waits `poll` when nothing is new. A
///   resumed run starts strictly after its saved watermark, so a row older than the watermark
///   that became visible only after it was saved is left to a bounded run (which re-reads
///   everything its query selects; keep source queries idempotent against their outputs, as an
///   anti-join on the output table is).
pub struct SqlSource<T> {
    warehouse: Arc<dyn Warehouse>,
    sql: String,
    params: Params,
    key: Option<String>,
    time: Option<String>,
    lateness: Duration,
    state: State,
    _rows: PhantomData<fn() -> T>,
}

#[derive(Default)]
struct State {
    query: String,
    mode: Option<Mode>,
    shard_params: Params,
    stream: Option<BatchStream>,
    /// The newest time yielded, in microseconds.
    newest: Option<i64>,
    /// The watermark the run resumed from: rows at or before it were finished by an earlier run.
    floor: Option<i64>,
    /// Rows yielded by the current poll.
    polled: usize,
    /// Keys yielded within the lateness window, with their times (follow mode).
    seen: HashMap<String, i64>,
    exhausted: bool,
}

/// Errors of a SQL source's setup and rows.
#[derive(Debug, thiserror::Error)]
pub enum SqlSourceError {
    /// A column the source was told to use is not a plain identifier.
    #[error("{0:?} is not a column name (letters, digits and _ only)")]
    BadColumn(String),
    /// Sharding and following need a key column.
    #[error("a sharded or follow-mode run needs the source's key column; set SqlSource::key")]
    NoKey,
    /// The time column is missing from the rows or is not a TIMESTAMP.
    #[error("the time column {0} is missing from the rows or is not a TIMESTAMP")]
    BadTime(String),
}

impl<T> SqlSource<T> {
    /// Reads the rows of `sql` (a statement with `${dataset}` placeholders) from `warehouse`.
    pub fn new(warehouse: Arc<dyn Warehouse>, sql: &str) -> Self {
        Self {
            warehouse,
            sql: sql.trim().trim_end_matches(';').to_owned(),
            params: Params::new(),
            key: None,
            time: None,
            lateness: Duration::from_secs(60),
            state: State::default(),
            _rows: PhantomData,
        }
    }

    /// The query's `@name` parameters.
    pub fn params(mut self, params: Params) -> Self {
        self.params = params;
        self
    }

    /// The column that identifies a row: shards split on its hash, follow mode dedupes on it.
    pub fn key(mut self, column: &str) -> Self {
        self.key = Some(column.to_owned());
        self
    }

    /// The TIMESTAMP column rows are ordered and watermarked by (e.g. `received`).
    pub fn time(mut self, column: &str) -> Self {
        self.time = Some(column.to_owned());
        self
    }

    /// How far behind the newest row a follow-mode poll looks again, for rows that become
    /// visible out of order (default one minute).
    pub fn lateness(mut self, lateness: Duration) -> Self {
        self.lateness = lateness;
        self
    }

    fn build_query(&self, context: &SourceContext) -> Result<(String, Params), BoxError> {
        let identifier = |column: &str| -> Result<String, BoxError> {
            if !column.is_empty()
                && column
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                Ok(column.to_owned())
            } else {
                Err(SqlSourceError::BadColumn(column.to_owned()).into())
            }
        };
        let sharded = !context.shard.is_all();
        let follow = context.mode.is_follow();
        let key = match &self.key {
            Some(key) => Some(identifier(key)?),
            None if sharded || follow => return Err(SqlSourceError::NoKey.into()),
            None => None,
        };
        let shard_params = Params::new()
            .with(
                "shard_index",
                ParamValue::Int64(context.shard.index().into()),
            )
            .with(
                "shard_count",
                ParamValue::Int64(context.shard.count().into()),
            );
        let query = match (&self.time, &key) {
            (Some(time), Some(key)) => sql::SOURCE_WINDOW
                .replace("${time}", &identifier(time)?)
                .replace("${key}", key),
            (None, Some(key)) if sharded => sql::SOURCE_SHARD.replace("${key}", key),
            (Some(time), None) => sql::SOURCE_ORDERED.replace("${time}", &identifier(time)?),
            _ => return Ok((self.sql.clone(), Params::new())),
        };
        Ok((query.replace("${source}", &self.sql), shard_params))
    }

    fn params_after(&self, after: Option<i64>) -> Params {
        let mut params = self.params.clone();
        params.0.extend(self.state.shard_params.0.iter().cloned());
        if self.time.is_some() {
            let after = after
                .and_then(|micros| Utc.timestamp_micros(micros).single())
                .unwrap_or_else(earliest);
            params
                .0
                .push(("after".into(), ParamValue::Timestamp(after)));
        }
        params
    }
}

/// Earlier than any row: BigQuery's smallest TIMESTAMP.
fn earliest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[async_trait]
impl<T: DeserializeOwned + Send + 'static> Source for SqlSource<T> {
    type Item = T;

    async fn open(&mut self, context: &SourceContext) -> Result<(), BoxError> {
        let (query, shard_params) = self.build_query(context)?;
        self.state = State {
            query,
            mode: Some(context.mode),
            shard_params,
            newest: context.resume_after.map(|t| t.timestamp_micros()),
            floor: context.resume_after.map(|t| t.timestamp_micros()),
            ..State::default()
        };
        Ok(())
    }

    async fn next(&mut self) -> Result<Option<Vec<Sourced<T>>>, BoxError> {
        loop {
            if self.state.exhausted {
                return Ok(None);
            }
            if self.state.stream.is_none() {
                // A follow run's later polls look back by the lateness for rows that became
                // visible out of order (the seen keys keep them from coming twice), but never
                // before the watermark it resumed from, which an earlier run finished.
                let after = match self.state.mode {
                    Some(Mode::Follow { .. }) => {
                        let floor = self.state.floor.unwrap_or(i64::MIN);
                        self.state
                            .newest
                            .map(|newest| (newest - self.lateness.as_micros() as i64).max(floor))
                    }
                    _ => self.state.floor,
                };
                let params = self.params_after(after);
                let stream = self
                    .warehouse
                    .query_stream(&self.state.query, &params)
                    .await?;
                self.state.stream = Some(stream);
                self.state.polled = 0;
            }
            let batch = match self.state.stream.as_mut() {
                Some(stream) => stream.next().await.transpose()?,
                None => None,
            };
            match batch {
                Some(batch) => {
                    let rows = self.rows(&batch)?;
                    if !rows.is_empty() {
                        self.state.polled += rows.len();
                        return Ok(Some(rows));
                    }
                }
                None => {
                    self.state.stream = None;
                    match self.state.mode {
                        Some(Mode::Follow { poll }) => {
                            if self.state.polled == 0 {
                                tokio::time::sleep(poll).await;
                            }
                        }
                        _ => {
                            self.state.exhausted = true;
                        }
                    }
                }
            }
        }
    }
}

impl<T: DeserializeOwned> SqlSource<T> {
    /// Turns a batch into sourced rows, with times and (in follow mode) without rows already
    /// yielded.
    fn rows(&mut self, batch: &RecordBatch) -> Result<Vec<Sourced<T>>, BoxError> {
        let times = match &self.time {
            Some(column) => Some(timestamps(batch, column)?),
            None => None,
        };
        let follow = matches!(self.state.mode, Some(Mode::Follow { .. }));
        let keys = match (&self.key, follow) {
            (Some(column), true) => {
                let index = batch
                    .schema()
                    .index_of(column)
                    .map_err(|_| SqlSourceError::NoKey)?;
                Some(cast(batch.column(index), &DataType::Utf8)?)
            }
            _ => None,
        };
        let items: Vec<T> = rows::from_batch(batch)?;
        let mut out = Vec::with_capacity(items.len());
        for (row, item) in items.into_iter().enumerate() {
            let time = times.as_ref().and_then(|t| t[row]);
            if let (Some(keys), Some(time)) = (&keys, time) {
                let keys = keys.as_string::<i32>();
                let key = keys.value(row).to_owned();
                if self.state.seen.contains_key(&key) {
                    continue;
                }
                self.state.seen.insert(key, time);
            }
            if let Some(time) = time {
                self.state.newest = Some(self.state.newest.map_or(time, |n| n.max(time)));
            }
            out.push(Sourced {
                item,
                time: time.and_then(|t| Utc.timestamp_micros(t).single()),
            });
        }
        if follow && let Some(newest) = self.state.newest {
            let horizon = newest - 2 * self.lateness.as_micros() as i64;
            self.state.seen.retain(|_, time| *time >= horizon);
        }
        Ok(out)
    }
}

/// The time column of `batch` in microseconds, NULL as `None`.
fn timestamps(batch: &RecordBatch, column: &str) -> Result<Vec<Option<i64>>, BoxError> {
    let bad = || SqlSourceError::BadTime(column.to_owned());
    let index = batch.schema().index_of(column).map_err(|_| bad())?;
    let array = batch.column(index);
    if !matches!(array.data_type(), DataType::Timestamp(_, _)) {
        return Err(bad().into());
    }
    let micros = cast(
        array,
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    )?;
    let micros = micros
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(bad)?;
    Ok((0..micros.len())
        .map(|i| micros.is_valid(i).then(|| micros.value(i)))
        .collect())
}
