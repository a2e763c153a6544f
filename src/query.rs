//! `gma query`: SQL over the data directory, printed as a table, CSV, JSON or NDJSON.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::TryStreamExt;
use gma_pipeline::warehouse::{BatchStream, Params};

use crate::cli::{OutputFormat, QueryArgs};

/// Runs the query and prints its rows to stdout.
pub async fn run(args: QueryArgs) -> Result<()> {
    if !args.data_dir.exists() {
        anyhow::bail!(
            "the data directory {} does not exist: point --data-dir (GMA_DATA_DIR) at the one gma serve writes",
            args.data_dir.display()
        );
    }
    let warehouse = Arc::new(
        crate::backend::open_local(&args.data_dir, args.memory)
            .await?
            .with_view_settings(args.views.settings("events")),
    );
    if !args.no_refresh && reads_a_view(&args.sql) {
        crate::views_refresh::before_query(&args.data_dir, Arc::clone(&warehouse)).await;
    }
    let format = match args.format {
        OutputFormat::Auto if std::io::stdout().is_terminal() => OutputFormat::Table,
        OutputFormat::Auto => OutputFormat::Csv,
        other => other,
    };
    let (schema, rows) = warehouse
        .stream(&args.sql, &Params::new())
        .await
        .context("running the query")?;
    let stdout = std::io::stdout();
    let out = std::io::BufWriter::new(stdout.lock());
    write(out, format, rows, &schema).await
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

/// Writes the rows of `rows` to `out` in `format`. Every format but the table (whose columns are
/// as wide as their widest value) writes each batch as it comes, so a large result is neither
/// held in memory nor waited for whole.
async fn write(
    mut out: impl Write,
    format: OutputFormat,
    mut rows: BatchStream,
    schema: &SchemaRef,
) -> Result<()> {
    let mut next = async || rows.try_next().await.context("running the query");
    match format {
        OutputFormat::Table | OutputFormat::Auto => {
            let mut batches = vec![RecordBatch::new_empty(schema.clone())];
            while let Some(batch) = next().await? {
                batches.push(batch);
            }
            let table = arrow::util::pretty::pretty_format_batches(&batches)?;
            writeln!(out, "{table}")?;
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            let mut wrote = false;
            while let Some(batch) = next().await? {
                writer.write(&batch)?;
                wrote = true;
            }
            if !wrote {
                writer.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            out = writer.into_inner();
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(out);
            while let Some(batch) = next().await? {
                writer.write(&batch)?;
            }
            writer.finish()?;
            out = writer.into_inner();
        }
        OutputFormat::Ndjson => {
            let mut writer = arrow::json::LineDelimitedWriter::new(out);
            while let Some(batch) = next().await? {
                writer.write(&batch)?;
            }
            writer.finish()?;
            out = writer.into_inner();
        }
    }
    out.flush()?;
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
