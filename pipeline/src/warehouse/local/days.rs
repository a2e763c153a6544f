//! Day pruning: the tables partitioned by day (`day=YYYY-MM-DD/` folders) read only the folders
//! a query's filters on the partition column can match, so `WHERE received >= ...` on a typed
//! table or on `events` opens the files of those days and no others.

use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate};
use datafusion::catalog::Session;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::{parquet_table, tables};

/// The inclusive range of days a query's filters leave of a day-partitioned table; `None` ends
/// are open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayRange {
    /// The first day that can match.
    pub from: Option<NaiveDate>,
    /// The last day that can match.
    pub to: Option<NaiveDate>,
}

impl DayRange {
    /// The days `filters` (ANDed, as DataFusion hands them to a scan) leave for `column`, a
    /// TIMESTAMP column: each `column <op> timestamp literal` narrows the range; other filters
    /// leave it as it is (DataFusion still applies every filter to the rows).
    pub fn of(filters: &[Expr], column: &str) -> Self {
        let mut range = Self::default();
        for filter in filters {
            range.narrow(filter, column);
        }
        range
    }

    fn narrow(&mut self, filter: &Expr, column: &str) {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = filter else {
            return;
        };
        if *op == Operator::And {
            self.narrow(left, column);
            self.narrow(right, column);
            return;
        }
        let (op, value) = match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(value, _)) if c.name == column => (*op, value),
            (Expr::Literal(value, _), Expr::Column(c)) if c.name == column => match op.swap() {
                Some(op) => (op, value),
                None => return,
            },
            _ => return,
        };
        let Some(day) = day_of(value) else {
            return;
        };
        match op {
            Operator::Gt | Operator::GtEq => self.from = self.from.max(Some(day)),
            Operator::Lt | Operator::LtEq => self.to = Some(self.to.map_or(day, |to| to.min(day))),
            Operator::Eq => {
                self.from = self.from.max(Some(day));
                self.to = Some(self.to.map_or(day, |to| to.min(day)));
            }
            _ => {}
        }
    }

    /// Whether the `day=YYYY-MM-DD` folder `dir` can hold matching rows (a folder whose name is
    /// not a day always can).
    pub fn keeps(&self, dir: &Path) -> bool {
        let day = dir
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_prefix("day="))
            .and_then(|day| NaiveDate::parse_from_str(day, "%Y-%m-%d").ok());
        match day {
            Some(day) => {
                self.from.is_none_or(|from| day >= from) && self.to.is_none_or(|to| day <= to)
            }
            None => true,
        }
    }
}

/// The UTC day of a timestamp literal.
fn day_of(value: &ScalarValue) -> Option<NaiveDate> {
    let micros = match value {
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000)?,
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000)?,
        ScalarValue::TimestampMicrosecond(Some(v), _) => *v,
        ScalarValue::TimestampNanosecond(Some(v), _) => v.div_euclid(1_000),
        _ => return None,
    };
    DateTime::from_timestamp_micros(micros).map(|t| t.date_naive())
}

/// A table of Parquet files in `day=` folders (or flat), listed at every scan so appends made
/// after a query planned are seen by the next one, with the folders outside the filters' days
/// left unread.
#[derive(Debug)]
pub struct DayPartitionedTable {
    dir: std::path::PathBuf,
    schema: SchemaRef,
    column: String,
}

impl DayPartitionedTable {
    /// The table whose files are under `dir`, partitioned on the TIMESTAMP `column`.
    pub fn new(dir: std::path::PathBuf, schema: SchemaRef, column: String) -> Self {
        Self {
            dir,
            schema,
            column,
        }
    }
}

#[async_trait]
impl TableProvider for DayPartitionedTable {
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
        // The folders and Parquet's statistics prune with them; DataFusion still applies them.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let range = DayRange::of(filters, &self.column);
        let dir = self.dir.clone();
        let files = tokio::task::spawn_blocking(move || tables::list_files(&dir))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let files: Vec<_> = files
            .into_iter()
            .filter(|file| file.parent().is_none_or(|dir| range.keeps(dir)))
            .collect();
        match parquet_table(&files, &self.schema)
            .map_err(|e| DataFusionError::External(Box::new(e)))?
        {
            Some(table) => table.scan(state, projection, filters, limit).await,
            None => {
                MemTable::try_new(Arc::clone(&self.schema), vec![vec![]])?
                    .scan(state, projection, filters, limit)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};

    use super::*;

    fn at(text: &str) -> Expr {
        let micros = DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_micros();
        lit(ScalarValue::TimestampMicrosecond(
            Some(micros),
            Some("UTC".into()),
        ))
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn bounds_on_the_column_narrow_the_days() {
        let filters = [
            col("received").gt(at("2026-11-02T10:00:00Z")),
            at("2026-11-05T00:00:00Z").gt_eq(col("received")),
            col("event").eq(lit("push")),
        ];
        let range = DayRange::of(&filters, "received");
        assert_eq!(range.from, Some(day("2026-11-02")));
        assert_eq!(range.to, Some(day("2026-11-05")));
        assert!(range.keeps(Path::new("/t/day=2026-11-02")));
        assert!(range.keeps(Path::new("/t/day=2026-11-05")));
        assert!(!range.keeps(Path::new("/t/day=2026-11-01")));
        assert!(!range.keeps(Path::new("/t/day=2026-11-06")));
        assert!(range.keeps(Path::new("/t/flat")));
    }

    #[test]
    fn other_filters_keep_every_day() {
        let filters = [
            col("other").gt(at("2026-11-02T10:00:00Z")),
            col("received")
                .gt(at("2026-11-02T10:00:00Z"))
                .or(col("event").eq(lit("push"))),
        ];
        assert_eq!(DayRange::of(&filters, "received"), DayRange::default());
    }
}
