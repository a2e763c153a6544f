//! DataFusion over the embedded store: `events` is the compacted Parquet files plus the records
//! still in the log, so an event is queryable as soon as its delivery was acknowledged.

use std::path::Path;
use std::sync::Arc;

use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{SessionConfig, SessionContext};

use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::dialect::BigQueryDialect;

use super::{QueryResult, WarehouseError, bigquery_functions};
use crate::schema::events_schema;
use crate::store::layout::{EVENTS_TABLE, Layout};
use crate::store::read_snapshot;

/// A DataFusion session with the data directory's tables registered.
pub struct LocalWarehouse {
    ctx: SessionContext,
}

impl LocalWarehouse {
    /// Opens the data directory `dir` for reading. It takes no lock, so it runs beside a
    /// `gma serve` writing the same directory.
    ///
    /// # Errors
    /// A store error reading the log or listing the Parquet files, or a DataFusion error
    /// registering them.
    pub async fn open(dir: &Path) -> Result<Self, WarehouseError> {
        let config = SessionConfig::new()
            .set_str("datafusion.sql_parser.dialect", "BigQuery")
            .set_bool(
                "datafusion.execution.parquet.schema_force_view_types",
                false,
            );
        let ctx = SessionContext::new_with_config(config);
        bigquery_functions::register_all(&ctx);
        let snapshot = read_snapshot(&Layout::new(dir))?;
        let schema = events_schema();
        let mut table = ctx.read_table(Arc::new(MemTable::try_new(
            Arc::clone(&schema),
            vec![snapshot.tail],
        )?))?;
        if !snapshot.parquet_files.is_empty() {
            let urls = snapshot
                .parquet_files
                .iter()
                .map(|path| ListingTableUrl::parse(path.to_string_lossy()))
                .collect::<Result<Vec<_>, _>>()?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let config = ListingTableConfig::new_with_multi_paths(urls)
                .with_listing_options(options)
                .with_schema(Arc::clone(&schema));
            let parquet = ctx.read_table(Arc::new(ListingTable::try_new(config)?))?;
            table = parquet.union(table)?;
        }
        ctx.register_table(EVENTS_TABLE, table.into_view())?;
        Ok(Self { ctx })
    }

    /// Runs one SQL statement in BigQuery's dialect and collects its rows.
    ///
    /// # Errors
    /// [`WarehouseError::StatementCount`] unless `sql` is one statement; the DataFusion error of
    /// planning or running it, which names the bad column or function.
    pub async fn query(&self, sql: &str) -> Result<QueryResult, WarehouseError> {
        let mut statements = DFParser::parse_sql_with_dialect(sql, &BigQueryDialect {})?;
        if statements.len() != 1 {
            return Err(WarehouseError::StatementCount(statements.len()));
        }
        let Some(mut statement) = statements.pop_front() else {
            return Err(WarehouseError::StatementCount(0));
        };
        if let DFStatement::Statement(inner) = &mut statement {
            bigquery_functions::rewrite_date_parts(inner);
        }
        let plan = self.ctx.state().statement_to_plan(statement).await?;
        let frame = self.ctx.execute_logical_plan(plan).await?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await?;
        Ok(QueryResult { schema, batches })
    }
}
