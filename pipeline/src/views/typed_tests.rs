//! The typed tables' DDL is the event views' columns: `sql/typed/<view>.sql` is generated from
//! the view's output schema on DataFusion, and this test fails when the two drift apart.
//!
//! ```sh
//! GMA_BLESS=1 cargo test -p gma-pipeline --lib views::typed_tests
//! ```

use std::path::PathBuf;

use arrow::datatypes::{DataType, Schema};

use super::*;
use crate::warehouse::local::LocalWarehouse;
use crate::warehouse::{Params, Warehouse};

/// Columns every typed table requires: a row is a delivery.
const REQUIRED: [&str; 2] = ["received", "delivery_id"];

fn bigquery_type(view: &str, column: &str, data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => "STRING",
        DataType::Int64 | DataType::Int32 | DataType::UInt64 => "INT64",
        DataType::Float64 => "FLOAT64",
        DataType::Boolean => "BOOL",
        DataType::Timestamp(_, _) => "TIMESTAMP",
        DataType::Date32 => "DATE",
        other => panic!("{view}.{column}: no BigQuery type for {other}"),
    }
}

/// The DDL of `view`'s typed table for the view's output `schema`.
fn ddl(view: &ViewDef, schema: &Schema) -> String {
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|field| {
            let name = field.name();
            let kind = bigquery_type(view.name, name, field.data_type());
            let required = if REQUIRED.contains(&name.as_str()) {
                " NOT NULL"
            } else {
                ""
            };
            format!("  {name} {kind}{required}")
        })
        .collect();
    format!(
        "-- {name} as a table: the columns of views/{name}.sql for every delivery, kept up to date\n\
         -- by the refresh (gma views refresh). Generated from the view by\n\
         -- GMA_BLESS=1 cargo test -p gma-pipeline --lib views::typed_tests, so do not edit it by hand.\n\
         CREATE TABLE IF NOT EXISTS `${{dataset}}{name}` (\n{columns}\n)\n\
         PARTITION BY DATE(received)\n\
         CLUSTER BY organization, repository_full_name;\n",
        name = view.name,
        columns = columns.join(",\n"),
    )
}

#[tokio::test]
async fn typed_tables_have_the_columns_of_their_views() {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = LocalWarehouse::open(dir.path())
        .await
        .unwrap()
        .with_view_settings(ViewSettings {
            event_views: EventViews::FromPayloads,
            ..ViewSettings::default()
        });
    let bless = std::env::var_os("GMA_BLESS").is_some();
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sql/typed");
    let mut stale = Vec::new();
    for (view, table) in typed_views() {
        let result = warehouse
            .query(
                &format!("SELECT * FROM `${{dataset}}{}` LIMIT 0", view.name),
                &Params::new(),
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", view.name));
        let expected = ddl(view, &result.schema);
        if table.ddl != expected {
            if bless {
                std::fs::write(folder.join(format!("{}.sql", view.name)), &expected).unwrap();
            }
            stale.push(view.name);
        }
    }
    assert!(
        bless || stale.is_empty(),
        "sql/typed/ differs from the views for {stale:?}; run GMA_BLESS=1 cargo test -p gma-pipeline --lib views::typed_tests and review the diff"
    );
}

#[test]
fn every_event_view_has_a_typed_table_and_an_event_type() {
    let event_views: Vec<&str> = VIEWS
        .iter()
        .filter(|view| view.layer == Layer::Events)
        .map(|view| view.name)
        .collect();
    let typed: Vec<&str> = typed_views().map(|(view, _)| view.name).collect();
    assert_eq!(typed, event_views);
    let tables: Vec<&str> = crate::sql::TYPED_TABLES.iter().map(|t| t.name).collect();
    assert_eq!(tables, event_views);
    for (view, _) in typed_views() {
        let event = view.event_type().unwrap_or_else(|| panic!("{}", view.name));
        assert!(
            view.name.starts_with(event) || view.name == "issue_events",
            "{} reads {event}",
            view.name
        );
    }
    assert_eq!(find("pull_requests").unwrap().typed_table(), None);
}

#[test]
fn refresh_rows_narrow_unique_events_to_the_window() {
    let settings = ViewSettings::default();
    for (view, _) in typed_views() {
        let sql = settings.refresh_rows(view).unwrap();
        assert!(!sql.contains("--"), "{}: a comment is left", view.name);
        assert!(
            !sql.contains("`${dataset}unique_events`"),
            "{} still reads the view",
            view.name
        );
        assert_eq!(
            sql.matches("`${dataset}events`").count(),
            1,
            "{}",
            view.name
        );
        for param in ["@after", "@until", "@held_after"] {
            assert!(sql.contains(param), "{}: no {param}", view.name);
        }
    }
}
