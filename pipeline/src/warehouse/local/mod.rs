//! The local backend of [`Warehouse`]: DataFusion over the data directory.
//!
//! - `events` is the embedded store: its compacted Parquet files plus the records still in the
//!   log, so an event is queryable as soon as its delivery was acknowledged.
//! - Every other table (each of [`crate::sql::TABLES`], and any table given to
//!   [`Warehouse::ensure_table`]) is the Parquet files under `tables/<name>/`
//!   ([`tables`]); a table with no files yet is empty, with the schema of its DDL.
//!
//! Each query plans in a fresh DataFusion session over the files present when it starts, so
//! rows appended after [`LocalWarehouse::open`] are seen by later queries, and concurrent queries
//! never share state.
//!
//! All those sessions share one memory pool of [`LocalWarehouse::memory_limit`] bytes that spills
//! to the data directory ([`memory`]): a query too large for it spills, or fails with
//! [`WarehouseError::MemoryLimit`].
//!
//! Every view of `views/` ([`crate::views`]) a query names is registered too, with the views it
//! reads, planned from the same SQL text BigQuery runs.
//!
//! SQL is BigQuery's: `${dataset}` resolves to nothing (tables are in the default schema),
//! `@name` parameters are bound as literals ([`params`]), BigQuery's functions and syntax are
//! provided by [`bigquery_functions`]. Names qualified with a project and dataset
//! (`` `my-project.gma.events` ``) are accepted and read the local table of that name: the local
//! store has one dataset, and analysts paste queries written for BigQuery into `gma query`.

pub mod compact;
pub mod days;
pub mod events;
pub mod events_table;
pub mod memory;
pub mod params;
pub mod tables;

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::{MemTable, ViewTable};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{
    ObjectName, ObjectNamePart, Statement as SqlStatement, visit_relations, visit_relations_mut,
};
use datafusion::sql::sqlparser::dialect::BigQueryDialect;
use futures::{StreamExt, TryStreamExt};

use super::ddl::TableLayout;
use super::{
    BatchStream, Params, QueryResult, ReadyTables, TableDef, Warehouse, WarehouseError,
    bigquery_functions,
};
use crate::views::{self, EventViews, ViewDef, ViewSettings};
use gma_store::layout::{EVENTS_TABLE, Layout};
use gma_store::{EventStore, StoreError};

/// DataFusion over one data directory, implementing [`Warehouse`].
pub struct LocalWarehouse {
    layout: Layout,
    store: Option<Arc<EventStore>>,
    tables: Mutex<Vec<TableDef>>,
    ready: ReadyTables,
    views: ViewSettings,
    memory: memory::QueryMemory,
}

impl LocalWarehouse {
    /// Opens the data directory `dir` for reading and for appending to its Parquet tables. It
    /// takes no lock, so it runs beside a `gma serve` writing the same directory; it cannot
    /// append to `events` (see [`LocalWarehouse::with_event_store`]).
    ///
    /// Its queries share a memory pool of [`memory::default_memory_limit`] bytes (see
    /// [`LocalWarehouse::with_memory_limit`]) and spill to `tmp/spill` in `dir`; spill folders
    /// left there by killed processes are removed.
    ///
    /// # Errors
    /// [`WarehouseError::Ddl`] if a table file of `sql/` cannot be read (a bug caught by tests);
    /// [`WarehouseError::Query`] if DataFusion cannot build its runtime.
    pub async fn open(dir: &Path) -> Result<Self, WarehouseError> {
        let tables: Vec<TableDef> = crate::sql::TABLES
            .iter()
            .chain(crate::sql::TYPED_TABLES)
            .copied()
            .collect();
        for table in &tables {
            TableLayout::of(table)?;
        }
        let layout = Layout::new(dir);
        let memory = {
            let layout = layout.clone();
            tokio::task::spawn_blocking(move || {
                memory::QueryMemory::new(&layout, memory::default_memory_limit())
            })
            .await
            .map_err(|e| StoreError::Unavailable {
                reason: format!("preparing the spill directory: {e}"),
            })??
        };
        Ok(Self {
            layout,
            store: None,
            tables: Mutex::new(tables),
            ready: ReadyTables::default(),
            views: ViewSettings::default(),
            memory,
        })
    }

    /// The same warehouse with its queries' memory pool limited to `bytes` (together, not each)
    /// instead of [`memory::default_memory_limit`].
    ///
    /// # Errors
    /// [`WarehouseError::Query`] if DataFusion cannot build its runtime.
    pub fn with_memory_limit(mut self, bytes: usize) -> Result<Self, WarehouseError> {
        self.memory = self.memory.with_limit(bytes)?;
        Ok(self)
    }

    /// The bytes its queries may hold in memory together before they spill or fail.
    pub fn memory_limit(&self) -> usize {
        self.memory.limit()
    }

    /// The same warehouse with `settings` for the views (incident labels, production
    /// environments, whether event views are typed tables). The events table is always the
    /// store's, whatever the settings name.
    pub fn with_view_settings(mut self, settings: ViewSettings) -> Self {
        if settings.event_views == EventViews::FromPayloads
            && let Ok(mut tables) = self.tables.lock()
        {
            tables.retain(|table| crate::sql::typed_table(table.name).is_none());
        }
        self.views = ViewSettings {
            events_table: EVENTS_TABLE.to_owned(),
            ..settings
        };
        self
    }

    /// Compacts the folders of `tables` holding at least `min_files` small files (see
    /// [`compact`]); run it with the data directory's refresh lock held, one at a time.
    ///
    /// # Errors
    /// As [`compact::compact_table`], for the first table that failed (those before it stay
    /// compacted).
    pub async fn compact(
        &self,
        tables: &[TableDef],
        min_files: usize,
    ) -> Result<compact::Compacted, WarehouseError> {
        let mut work = Vec::with_capacity(tables.len());
        for table in tables {
            work.push((self.layout.table_dir(table.name), TableLayout::of(table)?));
        }
        tokio::task::spawn_blocking(move || {
            let now = std::time::SystemTime::now();
            let mut done = compact::Compacted::default();
            for (dir, layout) in work {
                let table = compact::compact_table(&dir, &layout, min_files, now)?;
                done.folders += table.folders;
                done.files_replaced += table.files_replaced;
                done.files_deleted += table.files_deleted;
            }
            Ok(done)
        })
        .await
        .map_err(|e| {
            WarehouseError::Store(StoreError::Unavailable {
                reason: format!("compacting the tables: {e}"),
            })
        })?
    }

    /// Opens the data directory of the open event `store`, so that appends to `events` go
    /// through it (its log and its dedupe on `delivery_id`), as `gma import` does.
    ///
    /// # Errors
    /// As [`LocalWarehouse::open`].
    pub async fn with_event_store(store: Arc<EventStore>) -> Result<Self, WarehouseError> {
        let mut warehouse = Self::open(store.layout().root()).await?;
        warehouse.store = Some(store);
        Ok(warehouse)
    }

    fn known_tables(&self) -> Vec<TableDef> {
        self.tables
            .lock()
            .map(|tables| tables.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// A fresh session on the warehouse's shared runtime (its memory pool and spill folder).
    fn session(&self) -> SessionContext {
        let config = SessionConfig::new()
            .set_str("datafusion.sql_parser.dialect", "BigQuery")
            .set_bool(
                "datafusion.execution.parquet.schema_force_view_types",
                false,
            );
        let ctx = SessionContext::new_with_config_rt(
            self.memory.configure(config),
            self.memory.runtime(),
        );
        bigquery_functions::register_all(&ctx);
        ctx
    }

    /// The columns of `sql`'s result and its rows as they are computed: for a caller that writes
    /// them out as they come (and must name the columns of an empty result).
    ///
    /// # Errors
    /// As [`Warehouse::query`].
    pub async fn stream(
        &self,
        sql: &str,
        params: &Params,
    ) -> Result<(SchemaRef, BatchStream), WarehouseError> {
        let run = async {
            let frame = self.plan(sql, params).await?;
            let schema = Arc::new(frame.schema().as_arrow().clone());
            Ok((schema, frame.execute_stream().await?))
        };
        let (schema, stream) = run.await.map_err(|e| self.memory.explain(e))?;
        let memory = self.memory.explainer();
        let stream = stream
            .map_err(move |e| memory.explain(WarehouseError::from(e)))
            .boxed();
        Ok((schema, stream))
    }

    /// Parses, binds, rewrites and plans `sql` in a fresh session over the files present now,
    /// with the tables and views it names registered.
    async fn plan(&self, sql: &str, params: &Params) -> Result<DataFrame, WarehouseError> {
        let known = self.known_tables();
        let (statement, mut used) = prepare(sql, params, &known)?;
        let is_table = |name: &str| known.iter().any(|t| t.name == name);
        let views = match &used {
            Some(used) => views::with_dependencies_until(
                used.iter().filter_map(|name| views::find(name)),
                is_table,
            ),
            None => Vec::new(),
        };
        // Parse the views first, so the tables they read are registered with the query's.
        let mut parsed = Vec::with_capacity(views.len());
        for view in views {
            let view_error = |reason: String| WarehouseError::View {
                view: view.name,
                reason,
            };
            let sql = self
                .views
                .render(view)
                .map_err(|e| view_error(e.to_string()))?;
            let (statement, reads) = prepare(&sql, &Params::new(), &known)?;
            if let (Some(used), Some(reads)) = (&mut used, reads) {
                used.extend(reads);
            }
            parsed.push((view, sql, statement));
        }
        let ctx = self.session();
        for table in known
            .iter()
            .filter(|t| used.as_ref().is_none_or(|used| used.contains(t.name)))
        {
            self.register(&ctx, table).await?;
        }
        for (view, sql, statement) in parsed {
            let plan = ctx
                .state()
                .statement_to_plan(statement)
                .await
                .map_err(|e| view_error(view, e))?;
            ctx.register_table(view.name, Arc::new(ViewTable::new(plan, Some(sql))))?;
        }
        let plan = ctx.state().statement_to_plan(statement).await?;
        Ok(ctx.execute_logical_plan(plan).await?)
    }

    /// Registers `table` in `ctx` as it is on disk now.
    async fn register(&self, ctx: &SessionContext, table: &TableDef) -> Result<(), WarehouseError> {
        if table.name == EVENTS_TABLE {
            let events = events_table::EventsTable::new(self.layout.clone());
            ctx.register_table(EVENTS_TABLE, Arc::new(events))?;
            return Ok(());
        }
        let layout = TableLayout::of(table)?;
        let schema = layout.arrow_schema();
        let dir = self.layout.table_dir(table.name);
        if let Some(column) = &layout.partition_by_day {
            let days = days::DayPartitionedTable::new(dir, schema, column.clone());
            ctx.register_table(table.name, Arc::new(days))?;
            return Ok(());
        }
        let files = tokio::task::spawn_blocking(move || tables::list_files(&dir))
            .await
            .map_err(|e| StoreError::Unavailable {
                reason: format!("listing the table {}: {e}", table.name),
            })?
            .map_err(|e| StoreError::io(format!("listing the table {}", table.name), e))?;
        match parquet_table(&files, &schema)? {
            Some(parquet) => ctx.register_table(table.name, parquet)?,
            None => ctx.register_table(
                table.name,
                Arc::new(MemTable::try_new(schema, vec![vec![]])?),
            )?,
        };
        Ok(())
    }

    async fn append_events(&self, batch: RecordBatch) -> Result<(), WarehouseError> {
        let Some(store) = &self.store else {
            return Err(WarehouseError::Unsupported(
                "the local events table is written by `gma serve` and `gma import`, which hold the data directory's lock; open the warehouse with LocalWarehouse::with_event_store to append to it".into(),
            ));
        };
        let batch = tables::conform(EVENTS_TABLE, &events::input_schema(), &batch)?;
        let events = events::to_events(EVENTS_TABLE, &batch)?;
        // Concurrent appends share the store's group commit.
        futures::stream::iter(events)
            .map(|event| {
                let store = Arc::clone(store);
                async move { store.append(&event).await }
            })
            .buffer_unordered(256)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }
}

/// The error of a view of `views/` that failed to render or plan.
fn view_error(view: &ViewDef, error: impl std::fmt::Display) -> WarehouseError {
    WarehouseError::View {
        view: view.name,
        reason: error.to_string(),
    }
}

/// Parses one statement of `sql`, binds `params` and rewrites BigQuery's syntax. Returns it with
/// the names of the relations it reads (lowercased unless backticked), or `None` for those when
/// it is not a plain SQL statement (then every table is registered).
fn prepare(
    sql: &str,
    params: &Params,
    known: &[TableDef],
) -> Result<(DFStatement, Option<BTreeSet<String>>), WarehouseError> {
    let sql = crate::sql::resolve(sql, "");
    let mut statements = DFParser::parse_sql_with_dialect(&sql, &BigQueryDialect {})?;
    if statements.len() != 1 {
        return Err(WarehouseError::StatementCount(statements.len()));
    }
    let Some(mut statement) = statements.pop_front() else {
        return Err(WarehouseError::StatementCount(0));
    };
    let Some(inner) = sql_statement(&mut statement) else {
        return Ok((statement, None));
    };
    params::bind(inner, params)?;
    bigquery_functions::rewrite(inner);
    let _ = visit_relations_mut(&mut *inner, |name| {
        unqualify(name, known);
        ControlFlow::<()>::Continue(())
    });
    let mut used = BTreeSet::new();
    let _ = visit_relations(&*inner, |name| {
        if let [part] = name.0.as_slice()
            && let Some(ident) = part.as_ident()
        {
            // DataFusion folds unquoted names to lowercase; backticked ones keep case.
            used.insert(match ident.quote_style {
                None => ident.value.to_ascii_lowercase(),
                Some(_) => ident.value.clone(),
            });
        }
        ControlFlow::<()>::Continue(())
    });
    Ok((statement, Some(used)))
}

/// The SQL statement of `statement`, also inside `EXPLAIN`.
fn sql_statement(statement: &mut DFStatement) -> Option<&mut SqlStatement> {
    match statement {
        DFStatement::Statement(inner) => Some(inner),
        DFStatement::Explain(explain) => sql_statement(&mut explain.statement),
        _ => None,
    }
}

/// A listing table over `files` with `schema`, or `None` when there are no files.
fn parquet_table(
    files: &[PathBuf],
    schema: &SchemaRef,
) -> Result<Option<Arc<ListingTable>>, WarehouseError> {
    if files.is_empty() {
        return Ok(None);
    }
    let urls = files
        .iter()
        .map(|path| ListingTableUrl::parse(path.to_string_lossy()))
        .collect::<Result<Vec<_>, _>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(Arc::clone(schema));
    Ok(Some(Arc::new(ListingTable::try_new(config)?)))
}

/// Turns `project.dataset.table` and `dataset.table` into `table` when `table` is one of
/// `known` or a view.
fn unqualify(name: &mut ObjectName, known: &[TableDef]) {
    if name.0.len() < 2 {
        return;
    }
    let last = name.0.last().and_then(ObjectNamePart::as_ident).cloned();
    if let Some(last) = last
        && (known.iter().any(|t| t.name == last.value) || views::find(&last.value).is_some())
    {
        name.0 = vec![ObjectNamePart::Identifier(last)];
    }
}

#[async_trait]
impl Warehouse for LocalWarehouse {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn query(&self, sql: &str, params: &Params) -> Result<QueryResult, WarehouseError> {
        let (schema, rows) = self.stream(sql, params).await?;
        let batches = rows.try_collect().await?;
        Ok(QueryResult { schema, batches })
    }

    async fn query_stream(
        &self,
        sql: &str,
        params: &Params,
    ) -> Result<BatchStream, WarehouseError> {
        Ok(self.stream(sql, params).await?.1)
    }

    async fn ensure_table(&self, table: &TableDef) -> Result<(), WarehouseError> {
        TableLayout::of(table)?;
        if let Ok(mut tables) = self.tables.lock()
            && !tables.iter().any(|t| t.name == table.name)
        {
            tables.push(*table);
        }
        // The events table is the store's, there from the start.
        if table.name != EVENTS_TABLE {
            let dir = self.layout.table_dir(table.name);
            tokio::task::spawn_blocking(move || std::fs::create_dir_all(&dir))
                .await
                .map_err(|e| StoreError::Unavailable {
                    reason: format!("creating the table {}: {e}", table.name),
                })?
                .map_err(|e| StoreError::io(format!("creating the table {}", table.name), e))?;
        }
        self.ready.insert(table);
        Ok(())
    }

    async fn append(&self, table: &TableDef, batch: RecordBatch) -> Result<(), WarehouseError> {
        if !self.ready.contains(table) {
            self.ensure_table(table).await?;
        }
        if table.name == EVENTS_TABLE {
            return self.append_events(batch).await;
        }
        let layout = TableLayout::of(table)?;
        let batch = tables::conform(table.name, &layout.arrow_schema(), &batch)?;
        let dir = self.layout.table_dir(table.name);
        let name = table.name;
        tokio::task::spawn_blocking(move || tables::append(&dir, &layout, &batch))
            .await
            .map_err(|e| StoreError::Unavailable {
                reason: format!("appending to {name}: {e}"),
            })??;
        Ok(())
    }
}

#[cfg(test)]
mod compact_tests;
#[cfg(test)]
mod memory_tests;
#[cfg(test)]
mod tests;
