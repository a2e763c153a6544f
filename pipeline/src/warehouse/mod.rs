//! SQL over gma's tables, in BigQuery's dialect, on either backend.
//!
//! [`Warehouse`] is the one interface pipelines read and write tables through. Two backends
//! implement it with the same SQL text (files in the repository's `sql/` folder):
//!
//! - [`local::LocalWarehouse`]: DataFusion over the data directory (the embedded event store plus
//!   day-partitioned Parquet tables), with BigQuery's functions registered as UDFs;
//! - [`bigquery::BigQueryWarehouse`]: Google BigQuery (or its emulator) over its REST API with
//!   `reqwest` (see [`bigquery`] for why not `gcp-bigquery-client`).
//!
//! Table names in SQL are written `${dataset}name`; each backend resolves the placeholder
//! ([`crate::sql::resolve`]). Values reach SQL as named parameters (`@name`, [`Params`]), never
//! spliced into the text by callers.

#[cfg(feature = "bigquery")]
pub mod bigquery;
pub mod bigquery_functions;
pub mod ddl;
pub mod local;
pub mod refresh_request;

pub use refresh_request::request_refresh;

pub use crate::sql::TableDef;

#[cfg(test)]
pub(crate) mod crosscheck_tests;

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

/// A query's result: its schema (also when it has no rows) and its batches.
#[derive(Debug)]
pub struct QueryResult {
    /// The result's columns.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    /// Number of rows over all batches.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The rows as JSON objects (column name to value; NULLs left out), for printing and
    /// checking.
    ///
    /// # Errors
    /// [`WarehouseError::Arrow`] when a column has no JSON form.
    pub fn to_json_rows(
        &self,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, WarehouseError> {
        let mut writer = arrow::json::ArrayWriter::new(Vec::new());
        for batch in &self.batches {
            writer.write(batch)?;
        }
        writer.finish()?;
        let bytes = writer.into_inner();
        if bytes.is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| WarehouseError::Arrow(arrow::error::ArrowError::JsonError(e.to_string())))
    }
}

/// The tables a warehouse has created (or found) since it was opened, by name, so that an
/// append creates its table once, not on every batch.
#[derive(Debug, Default)]
pub(crate) struct ReadyTables(Mutex<HashSet<&'static str>>);

impl ReadyTables {
    /// Whether `table` was made ready.
    pub(crate) fn contains(&self, table: &TableDef) -> bool {
        self.names().contains(table.name)
    }

    /// Records `table` as ready.
    pub(crate) fn insert(&self, table: &TableDef) {
        self.names().insert(table.name);
    }

    /// The names; a name is only ever inserted whole, so a poisoned set is still consistent.
    fn names(&self) -> MutexGuard<'_, HashSet<&'static str>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A stream of result batches, for results too large to hold at once.
pub type BatchStream = BoxStream<'static, Result<RecordBatch, WarehouseError>>;

/// The value of one named query parameter (`@name` in the SQL text).
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A STRING.
    String(String),
    /// An INT64.
    Int64(i64),
    /// A BOOL.
    Bool(bool),
    /// A TIMESTAMP (UTC, microsecond precision).
    Timestamp(DateTime<Utc>),
    /// An ARRAY<STRING>, e.g. for `WHERE id IN UNNEST(@ids)`.
    StringArray(Vec<String>),
    /// An ARRAY<INT64>.
    Int64Array(Vec<i64>),
}

/// Named query parameters, in the order given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(pub Vec<(String, ParamValue)>);

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `@name` = `value`.
    pub fn with(mut self, name: impl Into<String>, value: ParamValue) -> Self {
        self.0.push((name.into(), value));
        self
    }

    /// The value of `@name`, if given.
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// One backend of SQL tables: runs BigQuery-dialect queries and appends rows.
///
/// Implementations are shared by pipeline stages (`Arc<dyn Warehouse>`), so every method takes
/// `&self` and may be called concurrently.
#[async_trait]
pub trait Warehouse: Send + Sync {
    /// A short name of the backend for logs and summaries ("local", "bigquery").
    fn backend(&self) -> &'static str;

    /// Runs one SQL statement (BigQuery dialect, `${dataset}` placeholders, `@name` parameters)
    /// and collects its rows.
    async fn query(&self, sql: &str, params: &Params) -> Result<QueryResult, WarehouseError>;

    /// Runs one SQL statement like [`Warehouse::query`] and streams its rows batch by batch
    /// (pages of a BigQuery job, batches of a DataFusion plan), so a large result is never held
    /// whole.
    async fn query_stream(&self, sql: &str, params: &Params)
    -> Result<BatchStream, WarehouseError>;

    /// Creates `table` from its DDL unless it exists.
    async fn ensure_table(&self, table: &TableDef) -> Result<(), WarehouseError>;

    /// Appends `batch` to `table` (created first if absent) and returns once the rows are
    /// durable: fsynced Parquet locally, acknowledged by BigQuery remotely. The batch's columns
    /// must be the table's, by name; a missing nullable column is NULL.
    ///
    /// Appending the same rows twice (a retry after an unknown outcome) must not store them
    /// twice where the backend can prevent it: BigQuery gets a stable `insertId` per row.
    async fn append(&self, table: &TableDef, batch: RecordBatch) -> Result<(), WarehouseError>;

    /// Creates the typed table `table` unless it exists, first removing a view of the same name
    /// (an event view created before typed tables). A table holding rows is kept as it is.
    async fn replace_view_with_table(&self, table: &TableDef) -> Result<(), WarehouseError> {
        self.ensure_table(table).await
    }

    /// Creates or replaces `views` with `settings`, in the order given (give them in
    /// [`VIEWS`](crate::views::VIEWS) order, as [`with_dependencies`](crate::views::with_dependencies)
    /// returns them), each in one statement. With [`EventViews::Typed`](crate::views::EventViews)
    /// an event view is created as its typed table instead
    /// ([`Warehouse::replace_view_with_table`]), with the refresh's watermarks and requests tables.
    ///
    /// # Errors
    /// [`WarehouseError::CreateView`] naming the first view that failed; the views before it
    /// are in place and the rest untouched, so running it again after a fix completes the set.
    async fn create_views(
        &self,
        settings: &crate::views::ViewSettings,
        views: &[&crate::views::ViewDef],
    ) -> Result<(), WarehouseError> {
        let typed = settings.event_views == crate::views::EventViews::Typed;
        if typed && views.iter().any(|view| view.typed_table().is_some()) {
            for table in [crate::sql::WATERMARKS, crate::sql::REFRESH_REQUESTS] {
                self.ensure_table(&table).await?;
            }
        }
        for view in views {
            if let Some(table) = view.typed_table().filter(|_| typed) {
                self.replace_view_with_table(&table)
                    .await
                    .map_err(|source| WarehouseError::CreateView {
                        view: view.name,
                        source: Box::new(source),
                    })?;
                continue;
            }
            let ddl = settings.create_statement(view)?;
            self.query(&ddl, &Params::new()).await.map_err(|source| {
                WarehouseError::CreateView {
                    view: view.name,
                    source: Box::new(source),
                }
            })?;
        }
        Ok(())
    }
}

/// Errors of running SQL or writing rows, on either backend.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// Reading or writing the embedded store failed.
    #[error(transparent)]
    Store(#[from] gma_store::StoreError),
    /// The query failed to plan or run on DataFusion.
    #[error(transparent)]
    Query(#[from] datafusion::error::DataFusionError),
    /// A local query needed more memory than the warehouse's limit in an operator that cannot
    /// spill to disk (a hash join's build side, say), or spilling itself failed.
    #[error(
        "the query needed more than the memory limit of {}: raise it with --memory-limit (GMA_MEMORY_LIMIT), or narrow the query (e.g. WHERE received >= TIMESTAMP '2026-01-01')",
        local::memory::mib(*.limit_bytes)
    )]
    MemoryLimit {
        /// The limit, in bytes.
        limit_bytes: usize,
        /// DataFusion's error, naming the largest consumers of memory.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// An Arrow error converting rows.
    #[error("converting rows")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The SQL text holds no statement or more than one.
    #[error("expected exactly one SQL statement, found {0}")]
    StatementCount(usize),
    /// A parameter the SQL names was not given, or has a type the backend cannot bind.
    #[error("query parameter @{name}: {reason}")]
    Param {
        /// The parameter's name, without `@`.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A table's DDL could not be understood.
    #[error("table {table}: {reason}")]
    Ddl {
        /// The table.
        table: String,
        /// What is wrong with its DDL.
        reason: String,
    },
    /// The remote warehouse (BigQuery) refused or failed a request.
    #[error("{backend}: {message}")]
    Remote {
        /// Which backend.
        backend: &'static str,
        /// What it said, and what to do about it.
        message: String,
    },
    /// A view of `views/` failed to plan (a bug in its SQL, caught by the views' tests) or its
    /// settings are invalid.
    #[error("the view {view}: {reason}")]
    View {
        /// The view.
        view: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The backend cannot do this; the message says what to do instead.
    #[error("{0}")]
    Unsupported(String),
    /// A configured table name is not a plain table name.
    #[error(transparent)]
    TableName(#[from] crate::sql::BadTableName),
    /// A view could not be rendered with the deployment's settings.
    #[error(transparent)]
    ViewSettings(#[from] crate::views::ViewError),
    /// Creating a view failed; the views before it are in place and the rest untouched, so
    /// running it again after a fix completes the set.
    #[error("creating the view {view}")]
    CreateView {
        /// The view.
        view: &'static str,
        /// What the warehouse said.
        #[source]
        source: Box<WarehouseError>,
    },
    /// Some rows of an append were refused; none of them is stored.
    #[error("{table}: {count} rows refused, first: {first}")]
    RowsRefused {
        /// The table.
        table: String,
        /// How many rows.
        count: usize,
        /// The first refusal's reason.
        first: String,
    },
}
impl crate::error::Transient for WarehouseError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Store(error) => crate::error::Transient::is_transient(error),
            _ => false,
        }
    }
}
