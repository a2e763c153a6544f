//! `gma import`: backfill the data directory from NDJSON files, with the pipeline's progress
//! bar on a terminal and a summary at the end.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::{Context, Result};
use gma_pipeline::import::{ImportError, ImportOptions, ImportSummary, discover, import_files};
use gma_pipeline::store::{EventStore, StoreError, StoreOptions};

use crate::cli::ImportArgs;

/// Runs the import and prints its summary.
pub async fn run(args: ImportArgs) -> Result<()> {
    let files = discover(&args.paths)?;
    if files.is_empty() {
        let named: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        return Err(ImportError::NothingToImport(named.join(", ")).into());
    }
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
    let defaults = ImportOptions::default();
    let options = ImportOptions {
        workers: args.workers.unwrap_or(defaults.workers),
        progress_bar: std::io::stderr().is_terminal(),
        ..defaults
    };
    let result = import_files(Arc::clone(&store), files, &options).await;
    // Close the store on the way out either way: it seals and compacts what the log holds.
    store.close().await;
    let summary = result.context(
        "the import stopped; the files it finished are kept, and running it again skips what they hold",
    )?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    print_summary(&mut out, &summary, &args.data_dir)?;
    out.flush()?;
    Ok(())
}

fn print_summary(
    out: &mut impl Write,
    summary: &ImportSummary,
    data_dir: &std::path::Path,
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
    writeln!(
        out,
        "  written:    {} Parquet file{} ({:.1} MiB) under {}",
        summary.written.files,
        if summary.written.files == 1 { "" } else { "s" },
        summary.written.bytes as f64 / (1024.0 * 1024.0),
        data_dir.join("tables").join("events").display()
    )?;
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
