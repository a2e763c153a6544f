//! `gma import`: backfill the data directory from NDJSON files, with the pipeline's progress
//! bar on a terminal and a summary at the end.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::{Context, Result};
use gma_import::{ImportError, ImportOptions, ImportSummary, InputFile, discover, import_files};
use gma_pipeline::flow::Shard;
use gma_store::{EventStore, StoreError, StoreOptions};

use crate::backend::{self, EventTarget};
use crate::cli::ImportArgs;

/// Runs the import and prints its summary.
pub async fn run(args: ImportArgs) -> Result<()> {
    let mut files = discover(&args.paths)?;
    let shard = match args.shard {
        Some(shard) => shard,
        None => Shard::from_env()?,
    };
    if !shard.is_all() {
        let found = files.len();
        files.retain(|file| shard.takes(&file.path.to_string_lossy()));
        eprintln!(
            "Shard {shard}: importing {} of the {found} files found.",
            files.len()
        );
        if files.is_empty() {
            return Ok(());
        }
    }
    if files.is_empty() {
        let named: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        return Err(ImportError::NothingToImport(named.join(", ")).into());
    }
    let defaults = ImportOptions::default();
    let options = ImportOptions {
        workers: args.workers.unwrap_or(defaults.workers),
        progress_bar: std::io::stderr().is_terminal(),
        memory_limit: args.memory.memory_limit,
        ..defaults
    };
    let target = backend::event_target(
        args.sink,
        &args.bigquery,
        &args.data_dir,
        StoreOptions::default(),
    )
    .await
    .map_err(explain_open_error)?;
    let (summary, destination) = match target {
        EventTarget::Store(store) => (
            import_locally(store, files, &options).await?,
            Destination::Local(args.data_dir.join("tables").join("events")),
        ),
        #[cfg(feature = "bigquery")]
        EventTarget::BigQuery(sink) => {
            let table = format!("{:?} table {}", sink.warehouse(), sink.table());
            let summary = gma_import::import_files_to_bigquery(sink, files, &options)
                .await
                .context(
                    "the import stopped; the rows BigQuery acknowledged are kept, and running it again skips them",
                )?;
            (summary, Destination::BigQuery(table))
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    print_summary(&mut out, &summary, &destination)?;
    out.flush()?;
    Ok(())
}

/// The error of opening where events land, saying what to do when a running gma holds the data
/// directory.
fn explain_open_error(error: anyhow::Error) -> anyhow::Error {
    match error.downcast_ref::<StoreError>() {
        Some(StoreError::Locked(dir)) => anyhow::anyhow!(
            "cannot import into {}: a running gma (serve) holds its LOCK. Stop it first, or import into another --data-dir",
            dir.display()
        ),
        Some(_) => error.context("opening the data directory"),
        None => error,
    }
}

/// Imports into the local store of --data-dir, which the import holds (its LOCK) while it runs.
async fn import_locally(
    store: Arc<EventStore>,
    files: Vec<InputFile>,
    options: &ImportOptions,
) -> Result<ImportSummary> {
    let result = import_files(Arc::clone(&store), files, options).await;
    // Close the store on the way out either way: it seals and compacts what the log holds.
    store.close().await;
    result.context(
        "the import stopped; the files it finished are kept, and running it again skips what they hold",
    )
}

/// Where the imported events went, for the summary.
enum Destination {
    /// The local events table's folder.
    Local(std::path::PathBuf),
    /// A BigQuery table, described.
    #[cfg(feature = "bigquery")]
    BigQuery(String),
}

fn print_summary(
    out: &mut impl Write,
    summary: &ImportSummary,
    destination: &Destination,
) -> std::io::Result<()> {
    let c = &summary.counts;
    writeln!(
        out,
        "Imported {} events from {} file{} ({} lines, {:.1} MiB) in {:.1} s.",
        c.imported,
        summary.files,
        if summary.files == 1 { "" } else { "s" },
        c.lines,
        summary.input_bytes as f64 / (1024.0 * 1024.0),
        summary.elapsed.as_secs_f64()
    )?;
    writeln!(
        out,
        "  duplicates: {} (delivery ids already stored, or repeated in the input; skipped)",
        c.duplicates
    )?;
    match destination {
        Destination::Local(dir) => writeln!(
            out,
            "  written:    {} Parquet file{} ({:.1} MiB) under {}",
            summary.written.files,
            if summary.written.files == 1 { "" } else { "s" },
            summary.written.bytes as f64 / (1024.0 * 1024.0),
            dir.display()
        )?,
        #[cfg(feature = "bigquery")]
        Destination::BigQuery(table) => {
            writeln!(
                out,
                "  written:    {} rows to {table}",
                summary.written.rows
            )?;
        }
    }
    writeln!(out, "  bad lines:  {}", c.bad)?;
    if c.bad > 0 {
        for bad in &summary.bad_lines {
            writeln!(out, "    {bad}")?;
        }
        if c.bad > summary.bad_lines.len() as u64 {
            writeln!(
                out,
                "    ... and {} more",
                c.bad - summary.bad_lines.len() as u64
            )?;
        }
        writeln!(
            out,
            "All good lines were imported; the bad ones were not. Fix them and run the import again: lines already imported are skipped."
        )?;
    }
    Ok(())
}
