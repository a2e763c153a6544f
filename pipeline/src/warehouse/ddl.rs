//! A table's definition read from its DDL file in `sql/`, so the schema is written once.
//!
//! Both backends take their table layout from here: the local one builds Arrow schemas and
//! day partitions, the BigQuery one builds its `TableSchema`, time partitioning and clustering.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::sql::sqlparser::ast::{
    ColumnOption, CreateTable, DataType as SqlType, Expr, Statement, Value,
};
use datafusion::sql::sqlparser::dialect::BigQueryDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::{TableDef, WarehouseError};
use gma_store::schema::UTC;

/// The type of one column, in BigQuery's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// STRING.
    String,
    /// INT64.
    Int64,
    /// FLOAT64.
    Float64,
    /// BOOL.
    Bool,
    /// TIMESTAMP (microseconds, UTC).
    Timestamp,
    /// DATE.
    Date,
    /// JSON, held as its text.
    Json,
}

impl ColumnType {
    /// The Arrow type rows of this column have on both backends.
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::String | ColumnType::Json => DataType::Utf8,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            ColumnType::Date => DataType::Date32,
        }
    }

    /// BigQuery's name of the type, as its REST schema spells it.
    pub fn bigquery_name(self) -> &'static str {
        match self {
            ColumnType::String => "STRING",
            ColumnType::Int64 => "INTEGER",
            ColumnType::Float64 => "FLOAT",
            ColumnType::Bool => "BOOLEAN",
            ColumnType::Timestamp => "TIMESTAMP",
            ColumnType::Date => "DATE",
            ColumnType::Json => "JSON",
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub column_type: ColumnType,
    /// Whether it may be NULL.
    pub nullable: bool,
    /// `OPTIONS(description = ...)`, if any.
    pub description: Option<String>,
}

/// A table's layout: columns, the column it is partitioned by day on, its clustering columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLayout {
    /// The table's name.
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<Column>,
    /// `PARTITION BY DATE(col)`: the TIMESTAMP column whose day partitions the table.
    pub partition_by_day: Option<String>,
    /// `CLUSTER BY a, b`.
    pub cluster_by: Vec<String>,
}

impl TableLayout {
    /// Reads `table`'s DDL.
    ///
    /// # Errors
    /// [`WarehouseError::Ddl`] when the file is not one `CREATE TABLE` or uses a type or a
    /// partitioning gma does not map.
    pub fn parse(table: &TableDef) -> Result<Self, WarehouseError> {
        let error = |reason: String| WarehouseError::Ddl {
            table: table.name.to_owned(),
            reason,
        };
        let ddl = crate::sql::resolve(table.ddl, "");
        let statements = Parser::parse_sql(&BigQueryDialect {}, &ddl)
            .map_err(|e| error(format!("the DDL does not parse: {e}")))?;
        let [Statement::CreateTable(create)] = statements.as_slice() else {
            return Err(error(format!(
                "expected one CREATE TABLE statement, found {} statements",
                statements.len()
            )));
        };
        let columns = create
            .columns
            .iter()
            .map(|column| {
                let column_type = column_type(&column.data_type).ok_or_else(|| {
                    error(format!(
                        "column {} has type {}, which gma does not map",
                        column.name, column.data_type
                    ))
                })?;
                let nullable = !column
                    .options
                    .iter()
                    .any(|option| matches!(option.option, ColumnOption::NotNull));
                Ok(Column {
                    name: column.name.value.clone(),
                    column_type,
                    nullable,
                    description: description(&column.options),
                })
            })
            .collect::<Result<Vec<_>, WarehouseError>>()?;
        Ok(Self {
            name: table.name.to_owned(),
            partition_by_day: partition_column(create).map_err(error)?,
            cluster_by: cluster_columns(create),
            columns,
        })
    }

    /// `table`'s layout, its DDL parsed once per process: a table's DDL is a constant of the
    /// program, so the appends and queries after the first take the layout parsed then.
    ///
    /// # Errors
    /// As [`TableLayout::parse`] (a DDL that fails is parsed again, and fails again, each time).
    pub fn of(table: &TableDef) -> Result<Arc<Self>, WarehouseError> {
        if let Some(layout) = parsed_layouts().get(table) {
            return Ok(Arc::clone(layout));
        }
        let layout = Arc::new(Self::parse(table)?);
        parsed_layouts().insert(*table, Arc::clone(&layout));
        Ok(layout)
    }

    /// The Arrow schema of the table's rows.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.column_type.arrow(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }
}

/// The layouts [`TableLayout::of`] parsed, by table. A layout is only ever inserted whole, so a
/// poisoned map is still consistent.
fn parsed_layouts() -> MutexGuard<'static, HashMap<TableDef, Arc<TableLayout>>> {
    static PARSED: OnceLock<Mutex<HashMap<TableDef, Arc<TableLayout>>>> = OnceLock::new();
    PARSED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

fn column_type(sql: &SqlType) -> Option<ColumnType> {
    Some(match sql {
        SqlType::String(_) => ColumnType::String,
        SqlType::Int64 => ColumnType::Int64,
        SqlType::Float64 => ColumnType::Float64,
        SqlType::Bool | SqlType::Boolean => ColumnType::Bool,
        SqlType::Timestamp(_, _) => ColumnType::Timestamp,
        SqlType::Date => ColumnType::Date,
        SqlType::JSON => ColumnType::Json,
        _ => return None,
    })
}

fn description(options: &[datafusion::sql::sqlparser::ast::ColumnOptionDef]) -> Option<String> {
    options.iter().find_map(|option| match &option.option {
        ColumnOption::Options(items) => items.iter().find_map(|item| {
            let text = item.to_string();
            let (key, _) = text.split_once('=')?;
            if !key.trim().eq_ignore_ascii_case("description") {
                return None;
            }
            match item {
                datafusion::sql::sqlparser::ast::SqlOption::KeyValue { value, .. } => {
                    string_literal(value)
                }
                _ => None,
            }
        }),
        _ => None,
    })
}

fn string_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn partition_column(create: &CreateTable) -> Result<Option<String>, String> {
    let Some(expr) = create.partition_by.as_deref() else {
        return Ok(None);
    };
    if let Expr::Function(function) = expr
        && function.name.to_string().eq_ignore_ascii_case("date")
    {
        let args = function.args.to_string();
        let column = args.trim_matches(|c| c == '(' || c == ')').trim();
        if !column.is_empty() && column.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Ok(Some(column.to_owned()));
        }
    }
    Err(format!(
        "PARTITION BY {expr} is not supported; use PARTITION BY DATE(timestamp_column)"
    ))
}

fn cluster_columns(create: &CreateTable) -> Vec<String> {
    use datafusion::sql::sqlparser::ast::WrappedCollection;
    match &create.cluster_by {
        Some(WrappedCollection::NoWrapping(columns) | WrappedCollection::Parentheses(columns)) => {
            columns
                .iter()
                .map(|expr| expr.to_string().trim_matches('`').to_owned())
                .collect()
        }
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gma_store::schema::events_schema;

    #[test]
    fn the_events_ddl_is_the_events_schema() {
        let layout = TableLayout::parse(&crate::sql::EVENTS).unwrap();
        assert_eq!(layout.arrow_schema(), events_schema());
        assert_eq!(layout.partition_by_day.as_deref(), Some("received"));
        assert_eq!(layout.cluster_by, ["event", "organization", "repository"]);
        let delivery = &layout.columns[0];
        assert_eq!(delivery.name, "delivery_id");
        assert!(!delivery.nullable);
        assert!(
            delivery
                .description
                .as_deref()
                .unwrap()
                .starts_with("X-GitHub-Delivery")
        );
    }

    #[test]
    fn every_table_file_parses() {
        for table in crate::sql::TABLES {
            let layout = TableLayout::parse(table).unwrap();
            assert_eq!(layout.name, table.name);
            assert!(!layout.columns.is_empty(), "{table} has no columns");
        }
    }

    #[test]
    fn a_layout_is_parsed_once() {
        let first = TableLayout::of(&crate::sql::CHECKPOINT).unwrap();
        let again = TableLayout::of(&crate::sql::CHECKPOINT).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(*first, TableLayout::parse(&crate::sql::CHECKPOINT).unwrap());
    }

    #[test]
    fn refuses_what_it_cannot_map() {
        let table = TableDef {
            name: "odd",
            ddl: "CREATE TABLE `${dataset}odd` (a GEOGRAPHY)",
        };
        let err = TableLayout::parse(&table).unwrap_err().to_string();
        assert!(err.contains("column a has type GEOGRAPHY"), "{err}");
        let table = TableDef {
            name: "odd",
            ddl: "CREATE TABLE `${dataset}odd` (a INT64) PARTITION BY a",
        };
        let err = TableLayout::parse(&table).unwrap_err().to_string();
        assert!(err.contains("PARTITION BY DATE(timestamp_column)"), "{err}");
        let table = TableDef {
            name: "odd",
            ddl: "SELECT 1",
        };
        assert!(TableLayout::parse(&table).is_err());
    }
}
