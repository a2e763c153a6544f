//! `gma query`: SQL over the data directory, printed as a table, CSV, JSON or NDJSON.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::RecordBatch;
use gma_pipeline::warehouse::local::LocalWarehouse;
use gma_pipeline::warehouse::{Params, Warehouse};

use crate::cli::{OutputFormat, QueryArgs};

/// Runs the query and prints its rows to stdout.
pub async fn run(args: QueryArgs) -> Result<()> {
    if !args.data_dir.exists() {
        anyhow::bail!(
            "the data directory {} does not exist: point --data-dir (GMA_DATA_DIR) at the one gma serve writes",
            args.data_dir.display()
        );
    }
    let warehouse = LocalWarehouse::open(&args.data_dir)
        .await
        .with_context(|| format!("opening {}", args.data_dir.display()))?
        .with_view_settings(args.views.settings("events"));
    let warehouse = Arc::new(crate::backend::limited(warehouse, args.memory)?);
    if !args.no_refresh && reads_a_view(&args.sql) {
        crate::views_refresh::before_query(&args.data_dir, Arc::clone(&warehouse)).await;
    }
    let result = warehouse
        .query(&args.sql, &Params::new())
        .await
        .context("running the query")?;
    let format = match args.format {
        OutputFormat::Auto if std::io::stdout().is_terminal() => OutputFormat::Table,
        OutputFormat::Auto => OutputFormat::Csv,
        other => other,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    write(&mut out, format, &result.batches, &result.schema)?;
    out.flush()?;
    Ok(())
}

/// Whether `sql` may read a view of `views/` (so the typed tables it reads through must be
/// current): it names one, as a word.
fn reads_a_view(sql: &str) -> bool {
    let sql = sql.to_ascii_lowercase();
    let words: std::collections::HashSet<&str> = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    gma_pipeline::views::VIEWS
        .iter()
        .any(|view| words.contains(view.name))
}

fn write(
    out: &mut impl Write,
    format: OutputFormat,
    batches: &[RecordBatch],
    schema: &arrow::datatypes::SchemaRef,
) -> Result<()> {
    match format {
        OutputFormat::Table | OutputFormat::Auto => {
            let table = if batches.is_empty() {
                arrow::util::pretty::pretty_format_batches(&[RecordBatch::new_empty(
                    schema.clone(),
                )])?
            } else {
                arrow::util::pretty::pretty_format_batches(batches)?
            };
            writeln!(out, "{table}")?;
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for batch in batches {
                writer.write(batch)?;
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
        OutputFormat::Ndjson => {
            let mut writer = arrow::json::LineDelimitedWriter::new(out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
    }
    Ok(())
}

/// Whether `error` is a write to a closed pipe.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<arrow::error::ArrowError>()
                .is_some_and(|e| matches!(e, arrow::error::ArrowError::IoError(_, io) if io.kind() == std::io::ErrorKind::BrokenPipe))
    })
}
