//! What the refresh's tests assert, on either backend.

#![allow(dead_code)]

use std::collections::BTreeMap;

use gma_pipeline::views::{VIEWS, typed_views};
use gma_pipeline::warehouse::{Params, Warehouse};
use serde_json::Value;

/// The rows of `sql` as JSON values, sorted by their text.
pub async fn sorted_rows(warehouse: &dyn Warehouse, sql: &str) -> Result<Vec<Value>, String> {
    let result = warehouse
        .query(sql, &Params::new())
        .await
        .map_err(|e| gma_pipeline::error::error_chain(&e))?;
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    for batch in &result.batches {
        writer.write(batch).map_err(|e| e.to_string())?;
    }
    writer.finish().map_err(|e| e.to_string())?;
    let bytes = writer.into_inner();
    let mut rows: Vec<Value> = if bytes.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())?
    };
    rows.sort_by_cached_key(|row| row.to_string());
    Ok(rows)
}

/// Asserts that every view gives the same rows from `typed` (typed tables) as from `reference`
/// (payloads), and that the event views are not all empty.
pub async fn assert_views_agree(typed: &dyn Warehouse, reference: &dyn Warehouse) {
    let mut differ = Vec::new();
    let mut typed_rows = 0;
    for view in VIEWS {
        let sql = format!("SELECT * FROM `${{dataset}}{}`", view.name);
        let from_tables = sorted_rows(typed, &sql).await;
        let from_payloads = sorted_rows(reference, &sql).await;
        if view.typed_table().is_some() {
            typed_rows += from_tables.as_ref().map_or(0, Vec::len);
        }
        if from_tables != from_payloads {
            differ.push(format!(
                "{}:\n  typed tables: {}\n  payloads:     {}",
                view.name,
                abbreviated(&from_tables),
                abbreviated(&from_payloads)
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert!(typed_rows > 0, "the typed tables hold rows");
}

fn abbreviated(rows: &Result<Vec<Value>, String>) -> String {
    let text = match rows {
        Ok(rows) => format!("{} rows {}", rows.len(), Value::from(rows.clone())),
        Err(error) => format!("error: {error}"),
    };
    text.chars().take(3000).collect()
}

/// The rows of every typed table, by name.
pub async fn table_rows(warehouse: &dyn Warehouse) -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::new();
    for (_, table) in typed_views() {
        let sql = format!("SELECT COUNT(*) AS n FROM `${{dataset}}{}`", table.name);
        let rows = sorted_rows(warehouse, &sql).await.unwrap();
        counts.insert(table.name, rows[0]["n"].as_u64().unwrap_or(0));
    }
    counts
}

/// Asserts that no typed table holds a delivery twice.
pub async fn assert_each_delivery_once(warehouse: &dyn Warehouse) {
    for (_, table) in typed_views() {
        let sql = format!(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT delivery_id) AS ids FROM `${{dataset}}{}`",
            table.name
        );
        let rows = sorted_rows(warehouse, &sql).await.unwrap();
        assert_eq!(rows[0]["n"], rows[0]["ids"], "{}: {}", table.name, rows[0]);
    }
}
