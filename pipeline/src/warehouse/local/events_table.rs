//! The `events` table of the embedded store as DataFusion sees it: every scan takes a fresh
//! snapshot (the Parquet files plus the log's records), so a long-lived session, such as a
//! follow-mode pipeline's, sees events that landed after it opened. Filters on `received` leave
//! the day folders outside their days unread.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::union::UnionExec;

use super::days::DayRange;
use super::parquet_table;
use gma_store::schema::events_schema;
use gma_store::{Layout, read_snapshot};

/// The embedded store's events, read afresh at every scan.
#[derive(Debug)]
pub struct EventsTable {
    layout: Layout,
    schema: SchemaRef,
}

impl EventsTable {
    /// The events of the data directory `layout` describes.
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            schema: events_schema(),
        }
    }
}

#[async_trait]
impl TableProvider for EventsTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Parquet prunes row groups with them; DataFusion still applies every filter.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let layout = self.layout.clone();
        let snapshot = tokio::task::spawn_blocking(move || read_snapshot(&layout))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let tail = MemTable::try_new(Arc::clone(&self.schema), vec![snapshot.tail])?;
        let mut plans = vec![tail.scan(state, projection, filters, limit).await?];
        let days = DayRange::of(filters, "received");
        let files: Vec<_> = snapshot
            .parquet_files
            .into_iter()
            .filter(|file| file.parent().is_none_or(|dir| days.keeps(dir)))
            .collect();
        let parquet = parquet_table(&files, &self.schema)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        if let Some(parquet) = parquet {
            plans.push(parquet.scan(state, projection, filters, limit).await?);
        }
        UnionExec::try_new(plans)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
    use datafusion::prelude::SessionContext;

    use super::*;
    use gma_store::testing::EventBuilder;
    use gma_store::{EventStore, StoreOptions};

    async fn count(ctx: &SessionContext) -> i64 {
        let batches = ctx
            .sql("SELECT COUNT(*) AS n, COUNT(DISTINCT delivery_id) AS d FROM events")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let n = batches[0].column(0).as_primitive::<Int64Type>().value(0);
        let distinct = batches[0].column(1).as_primitive::<Int64Type>().value(0);
        assert_eq!(n, distinct, "an event was read twice");
        n
    }

    #[tokio::test]
    async fn a_scan_sees_events_that_landed_after_registration() {
        let dir = tempfile::tempdir().unwrap();
        let store = EventStore::open(dir.path(), StoreOptions::default()).unwrap();
        let ctx = SessionContext::new();
        ctx.register_table(
            "events",
            Arc::new(EventsTable::new(Layout::new(dir.path()))),
        )
        .unwrap();
        assert_eq!(count(&ctx).await, 0);
        store
            .append(&EventBuilder::new("a", "{}").received_micros(1).build())
            .await
            .unwrap();
        assert_eq!(count(&ctx).await, 1);
        store.compact_now().await.unwrap();
        store
            .append(&EventBuilder::new("b", "{}").received_micros(2).build())
            .await
            .unwrap();
        assert_eq!(count(&ctx).await, 2);
        store.close().await;
    }
}
