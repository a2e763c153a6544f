//! `gma import`: backfill the data directory from NDJSON files, with the pipeline's progress
//! bar on a terminal and a summary at the end.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::{Context, Result};
use gma_import::{
    ImportError, ImportOptions, ImportSummary, InputFile, discover, import_files,
    import_files_to_bigquery,
};
use gma_pipeline::flow::Shard;
use gma_pipeline::warehouse::bigquery::event_sink::BigQueryEventSink;
use gma_store::{EventStore, StoreError, StoreOptions};

use crate::cli::{ImportArgs, Sink};

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
        ..defaults
    };
    let (summary, destination) = match args.sink {
        Sink::Local => (
            import_locally(&args, files, &options).await?,
            Destination::Local(args.data_dir.join("tables").join("events")),
        ),
        Sink::Bigquery => {
            let config = args.bigquery.sink_config(args.data_dir.join("spool"))?;
            let sink = BigQueryEventSink::connect(config)
                .await
                .context("connecting to BigQuery (--sink bigquery)")?;
            let table = format!("{:?} table {}", sink.warehouse(), sink.table());
            let summary = import_files_to_bigquery(Arc::new(sink), files, &options)
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

/// The local store of --data-dir: the import holds its LOCK while it runs.
async fn import_locally(
    args: &ImportArgs,
    files: Vec<InputFile>,
    options: &ImportOptions,
) -> Result<ImportSummary> {
    let data_dir = args.data_dir.clone();
    let opened =
        tokio::task::spawn_blocking(move || EventStore::open(&data_dir, StoreOptions::default()))
            .await
            .context("opening the event store")?;
    let store = match opened {
        Ok(store) => Arc::new(store),
        Err(StoreError::Locked(dir)) => anyhow::bail!(
            "cannot import into {}: a running gma (serve) holds its LOCK. Stop it first, or import into another --data-dir",
            dir.display()
        ),
        Err(error) => return Err(error).context("opening the data directory"),
    };
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
