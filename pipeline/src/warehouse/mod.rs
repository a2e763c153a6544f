//! SQL over gma's tables, in BigQuery's dialect.
//!
//! [`local::LocalWarehouse`] runs DataFusion over the embedded store of a data directory. The
//! BigQuery backend and the trait both implement come with the pipeline framework.

pub mod bigquery_functions;
pub mod local;

/// Errors of running SQL.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The query failed to plan or run.
    #[error("{0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// The SQL text holds no statement or more than one.
    #[error("expected exactly one SQL statement, found {0}")]
    StatementCount(usize),
}
