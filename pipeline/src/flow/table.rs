//! Typed rows appended to a warehouse table: rows → Arrow batch → append, written once for the
//! sinks, the watermarks and the jobs.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use serde::Serialize;

use super::rows::{self, RowError};
use crate::warehouse::ddl::TableLayout;
use crate::warehouse::{TableDef, Warehouse, WarehouseError};

/// Why rows could not be appended.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// A row did not convert to the table's columns.
    #[error(transparent)]
    Rows(#[from] RowError),
    /// The warehouse refused or failed the append.
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
}

/// Appends structs to one table of a warehouse: each struct's fields are the table's columns by
/// name. The table's schema is read from its DDL once, when the writer is made.
#[derive(Clone)]
pub struct TableWriter {
    warehouse: Arc<dyn Warehouse>,
    table: TableDef,
    schema: SchemaRef,
}

impl TableWriter {
    /// A writer to `table` in `warehouse`, which creates nothing (the warehouse's append
    /// creates a missing table).
    ///
    /// # Errors
    /// [`WarehouseError::Ddl`] when the table's DDL cannot be understood.
    pub fn new(warehouse: Arc<dyn Warehouse>, table: TableDef) -> Result<Self, WarehouseError> {
        let schema = TableLayout::of(&table)?.arrow_schema();
        Ok(Self {
            warehouse,
            table,
            schema,
        })
    }

    /// A writer to `table` in `warehouse`, creating the table from its DDL unless it exists.
    ///
    /// # Errors
    /// As [`TableWriter::new`], and the warehouse's error creating the table.
    pub async fn open(
        warehouse: Arc<dyn Warehouse>,
        table: TableDef,
    ) -> Result<Self, WarehouseError> {
        let writer = Self::new(warehouse, table)?;
        writer.warehouse.ensure_table(&writer.table).await?;
        Ok(writer)
    }

    /// The table written to.
    pub fn table(&self) -> &TableDef {
        &self.table
    }

    /// The warehouse written to.
    pub fn warehouse(&self) -> &Arc<dyn Warehouse> {
        &self.warehouse
    }

    /// Appends `rows` as one batch, durably ([`Warehouse::append`]).
    ///
    /// # Errors
    /// [`AppendError::Rows`] when a row lacks a NOT NULL column or has a value of the wrong
    /// type, [`AppendError::Warehouse`] when the append fails.
    pub fn append<'a, T: Serialize>(
        &'a self,
        rows: &[T],
    ) -> impl Future<Output = Result<(), AppendError>> + Send + use<'a, T> {
        // The rows are converted before the future is made, so it holds no reference to them
        // (rows that are `Send` but not `Sync` can be appended from a task).
        let batch = rows::to_batch(Arc::clone(&self.schema), rows);
        async move {
            self.warehouse.append(&self.table, batch?).await?;
            Ok(())
        }
    }
}
