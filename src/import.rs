//! `gma import`: backfill the data directory from NDJSON files, with a progress bar on a
//! terminal and a summary at the end.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, Result};
use gma_pipeline::import::{ImportError, ImportOptions, ImportSummary, discover, import_files};
use gma_pipeline::store::{EventStore, StoreError, StoreOptions};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ImportArgs;

/// Runs the import and prints its summary.
pub async fn run(args: ImportArgs) -> Result<()> {
    tokio::task::spawn_blocking(move || run_blocking(args))
        .await
        .context("the import thread failed")?
}

fn run_blocking(args: ImportArgs) -> Result<()> {
    let files = discover(&args.paths)?;
    if files.is_empty() {
        let named: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        return Err(ImportError::NothingToImport(named.join(", ")).into());
    }
    let store = match EventStore::open(&args.data_dir, StoreOptions::default()) {
        Ok(store) => store,
        Err(StoreError::Locked(dir)) => anyhow::bail!(
            "cannot import into {}: a running gma (serve) holds its LOCK. Stop it first, or import into another --data-dir",
            dir.display()
        ),
        Err(error) => return Err(error).context("opening the data directory"),
    };
    let total: u64 = files.iter().map(|f| f.bytes).sum();
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} importing [{bar:40}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    } else {
        ProgressBar::hidden()
    };
    let options = ImportOptions {
        workers: args.workers.unwrap_or(ImportOptions::default().workers),
        ..ImportOptions::default()
    };
    let result = import_files(&store, files, &options, &|bytes| bar.inc(bytes));
    bar.finish_and_clear();
    // Close the store on the way out either way: it seals and compacts what the log holds.
    let runtime = tokio::runtime::Handle::current();
    runtime.block_on(store.close());
    let summary = result.context("the import stopped; what was written before is kept, and running it again skips it")?;
    print_summary(&summary, &args.data_dir);
    Ok(())
}

fn print_summary(summary: &ImportSummary, data_dir: &std::path::Path) {
    let c = &summary.counts;
    println!(
        "Imported {} events from {} file{} ({} lines, {:.1} MiB) in {:.1} s.",
        c.imported,
        summary.files,
        if summary.files == 1 { "" } else { "s" },
        c.lines,
        summary.input_bytes as f64 / (1024.0 * 1024.0),
        summary.elapsed.as_secs_f64()
    );
    println!(
        "  duplicates: {} (delivery ids already stored, or repeated in the input; skipped)",
        c.duplicates
    );
    println!(
        "  written:    {} Parquet file{} ({:.1} MiB) under {}",
        summary.written.files,
        if summary.written.files == 1 { "" } else { "s" },
        summary.written.bytes as f64 / (1024.0 * 1024.0),
        data_dir.join("tables").join("events").display()
    );
    println!("  bad lines:  {}", c.bad);
    if c.bad > 0 {
        for bad in &summary.bad_lines {
            println!("    {bad}");
        }
        if c.bad > summary.bad_lines.len() as u64 {
            println!("    ... and {} more", c.bad - summary.bad_lines.len() as u64);
        }
        println!(
            "All good lines were imported; the bad ones were not. Fix them and run the import again: lines already imported are skipped."
        );
    }
}
