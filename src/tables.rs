//! Table names given on the command line.

use anyhow::Result;
use gma_pipeline::warehouse::TableDef;

/// `table` under a configured name (BigQuery), checked to be a plain table name.
pub fn named(name: &str, table: TableDef) -> Result<TableDef> {
    let name = name.trim();
    anyhow::ensure!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "the {table} table's name {name:?} must be letters, digits and underscores"
    );
    // Configuration, set once per process; TableDef holds names as 'static.
    Ok(TableDef {
        name: Box::leak(name.to_owned().into_boxed_str()),
        ddl: table.ddl,
    })
}
