//! Runs an import into the local store: a reader thread, parser workers, and the calling thread
//! writing files, joined by bounded channels so memory stays flat in the input's size.

use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::chunks::{Chunk, ChunkReader};
use super::files::InputFile;
use super::process::{BadLine, LineCounts, ProcessContext, ProcessedChunk, process_chunk};
use super::ImportError;
use crate::store::{BulkStats, EventStore, RowGroupEncoder};

/// How an import runs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Input bytes per chunk: the unit of parallel work and, per day, of a Parquet row group.
    pub chunk_bytes: usize,
    /// Threads parsing and encoding chunks.
    pub workers: usize,
    /// Bad lines kept for the report (all are counted).
    pub bad_line_samples: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            chunk_bytes: 32 * 1024 * 1024,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            bad_line_samples: 10,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    /// Input files read.
    pub files: usize,
    /// Their bytes on disk.
    pub input_bytes: u64,
    /// Lines read, imported, duplicate and bad.
    pub counts: LineCounts,
    /// The first bad lines, in file and line order.
    pub bad_lines: Vec<BadLine>,
    /// The Parquet files written.
    pub written: BulkStats,
    /// How long it took.
    pub elapsed: Duration,
}

/// Imports `files` into `store`, calling `progress` with the input bytes of each chunk written.
/// Must run on a thread that may block (not an async task).
///
/// # Errors
/// An [`ImportError`] when an input cannot be read or the store cannot write; nothing of the
/// files still open is stored then, and running the import again completes it.
pub fn import_files(
    store: &EventStore,
    files: Vec<InputFile>,
    options: &ImportOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let mut summary = ImportSummary {
        files: files.len(),
        input_bytes: files.iter().map(|f| f.bytes).sum(),
        ..ImportSummary::default()
    };
    let encoder = RowGroupEncoder::new()?;
    let ctx = ProcessContext {
        store,
        encoder: &encoder,
        now_micros: chrono::Utc::now().timestamp_micros(),
        bad_line_samples: options.bad_line_samples,
    };
    let workers = options.workers.max(1);
    let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(workers);
    let chunk_rx = Arc::new(Mutex::new(chunk_rx));
    let (out_tx, out_rx) = sync_channel::<Result<ProcessedChunk, ImportError>>(workers);
    let reader = ChunkReader::new(files, options.chunk_bytes);

    let mut writer = store.bulk_writer();
    let mut failure = None;
    std::thread::scope(|scope| {
        let source_out = out_tx.clone();
        scope.spawn(move || {
            for chunk in reader {
                let sent = match chunk {
                    Ok(chunk) => chunk_tx.send(chunk).is_ok(),
                    Err(error) => {
                        let _ = source_out.send(Err(error));
                        false
                    }
                };
                if !sent {
                    break;
                }
            }
        });
        for _ in 0..workers {
            let chunk_rx = Arc::clone(&chunk_rx);
            let out_tx = out_tx.clone();
            let ctx = &ctx;
            scope.spawn(move || {
                while let Some(chunk) = next(&chunk_rx) {
                    if out_tx.send(process_chunk(&chunk, ctx)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(chunk_rx);
        drop(out_tx);
        for result in &out_rx {
            let written = result.and_then(|processed| {
                for group in processed.groups {
                    writer.write(group)?;
                }
                summary.counts += processed.counts;
                summary.bad_lines.extend(processed.bad_lines);
                progress(processed.input_bytes);
                Ok(())
            });
            if let Err(error) = written {
                failure = Some(error);
                break;
            }
        }
        // Unblocks the workers and the reader, so the scope can join them.
        drop(out_rx);
    });
    if let Some(error) = failure {
        return Err(error);
    }
    summary.written = writer.finish()?;
    summary
        .bad_lines
        .sort_by(|a, b| (a.file_index, a.line).cmp(&(b.file_index, b.line)));
    summary.bad_lines.truncate(options.bad_line_samples);
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn next(rx: &Mutex<Receiver<Chunk>>) -> Option<Chunk> {
    rx.lock().ok()?.recv().ok()
}
