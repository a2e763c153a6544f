//! `gma import` as a pipeline on the [`flow`](gma_pipeline::flow) framework:
//!
//! ```text
//! read (ChunkSource) ──chunks──▶ parse (ParseChunks ×workers, unordered) ──row groups──▶ store (StoreSink)
//! ```
//!
//! The CPU work (parsing, lifting, hashing, Parquet encoding and zstd) runs in the parse stage
//! on blocking threads, one chunk per worker; reading and writing files run on blocking threads
//! too, so the async stages only pass chunks along. Channels hold a chunk or two per stage, so
//! memory is bounded by `workers × chunk_bytes` whatever the input's size.

#[cfg(feature = "bigquery")]
use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gma_pipeline::warehouse::Warehouse;
use gma_pipeline::warehouse::local::LocalWarehouse;

use super::ImportError;
use super::chunks::{Chunk, ChunkReader};
use super::files::InputFile;
#[cfg(feature = "bigquery")]
use super::process::parse_lines;
use super::process::{BadLine, LineCounts, ProcessContext, ProcessedChunk, process_chunk};
use gma_pipeline::flow::{
    BoxError, DoFn, ParDo, Pipeline, PipelineOptions, RunSummary, Sink, Source, Sourced,
};
#[cfg(feature = "bigquery")]
use gma_pipeline::warehouse::bigquery::event_sink::BigQueryEventSink;
#[cfg(feature = "bigquery")]
use gma_store::event::Event;
use gma_store::{BulkStats, BulkWriter, EventStore, RowGroupEncoder};

/// How an import runs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Input bytes per chunk: the unit of parallel work and, per day, of a Parquet row group.
    pub chunk_bytes: usize,
    /// Chunks parsed and encoded at once (one blocking thread each).
    pub workers: usize,
    /// Bad lines kept for the report (all are counted).
    pub bad_line_samples: usize,
    /// Show the pipeline's progress bar (set it when stderr is a terminal).
    pub progress_bar: bool,
    /// The memory limit of the data directory's queries, in bytes; `None` for the machine's
    /// default ([`gma_pipeline::warehouse::local::memory::default_memory_limit`]).
    pub memory_limit: Option<usize>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            // Small enough for the allocator to reuse the buffers (larger ones are mapped and
            // unmapped each time, and the page faults cost ~10% of the CPU); large enough that
            // a day's rows of a chunk make a sizeable row group.
            chunk_bytes: 8 * 1024 * 1024,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            bad_line_samples: 10,
            progress_bar: false,
            memory_limit: None,
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
    /// From the start of the first to the end of the last UTC day of the events imported; the
    /// range the typed tables' refresh is asked to take (`refresh_requests`).
    pub received: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The first bad lines, in file and line order.
    pub bad_lines: Vec<BadLine>,
    /// The Parquet files written.
    pub written: BulkStats,
    /// How long it took.
    pub elapsed: Duration,
}

/// Imports `files` into `store` and returns what it did.
///
/// # Errors
/// An [`ImportError`] when an input cannot be read, a chunk cannot be processed or the store
/// cannot write. The files still open are then removed and their ids given back, so running
/// the import again completes it.
pub async fn import_files(
    store: Arc<EventStore>,
    files: Vec<InputFile>,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let (started, inputs, workers, tally) = begin(&files, options);
    let ctx = ProcessContext {
        store: Arc::clone(&store),
        encoder: Arc::new(RowGroupEncoder::new()?),
        now_micros: chrono::Utc::now().timestamp_micros(),
        bad_line_samples: options.bad_line_samples,
    };
    let run = Pipeline::new(pipeline_options(workers, options.progress_bar))
        .read("read", ChunkSource::new(files, options.chunk_bytes))
        .apply(
            ParDo::new("parse", ParseChunks { ctx })
                .concurrency(workers)
                .ordered(false),
        )
        .write(
            "store",
            StoreSink {
                writer: Some(BulkWriter::new(Arc::clone(&store))),
                tally: Arc::clone(&tally),
            },
        )
        .run()
        .await?;
    let summary = summarize(&run, &tally, inputs, started)?;
    let mut warehouse = LocalWarehouse::open(store.layout().root())
        .await
        .map_err(ImportError::RequestRefresh)?;
    if let Some(bytes) = options.memory_limit {
        warehouse = warehouse
            .with_memory_limit(bytes)
            .map_err(ImportError::RequestRefresh)?;
    }
    request_refresh(&warehouse, &summary).await?;
    Ok(summary)
}

/// Imports `files` into the BigQuery events table of `sink` and returns what it did: the same
/// reading and parsing as [`import_files`], then one query per batch for the delivery ids the
/// table holds already and streaming inserts of the rest (insertId = delivery id).
///
/// # Errors
/// As [`import_files`]; a failed insert can be retried by running the import again.
#[cfg(feature = "bigquery")]
pub async fn import_files_to_bigquery(
    sink: Arc<BigQueryEventSink>,
    files: Vec<InputFile>,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let (started, inputs, workers, tally) = begin(&files, options);
    let parse = ParseEvents {
        now_micros: chrono::Utc::now().timestamp_micros(),
        bad_line_samples: options.bad_line_samples,
        seen: Arc::new(Mutex::new(HashSet::new())),
    };
    let run = Pipeline::new(pipeline_options(workers, options.progress_bar))
        .read("read", ChunkSource::new(files, options.chunk_bytes))
        .apply(
            ParDo::new("parse", parse)
                .concurrency(workers)
                .ordered(false),
        )
        .write(
            "bigquery",
            BigQuerySink {
                sink: Arc::clone(&sink),
                tally: Arc::clone(&tally),
            },
        )
        .run()
        .await?;
    let summary = summarize(&run, &tally, inputs, started)?;
    request_refresh(sink.warehouse(), &summary).await?;
    Ok(summary)
}

/// Asks the typed tables' refresh to take the days an import landed events into: they carry
/// old `received` times, which the refresh's window of recent arrivals would miss.
async fn request_refresh(
    warehouse: &dyn Warehouse,
    summary: &ImportSummary,
) -> Result<(), ImportError> {
    let Some((from, until)) = summary.received else {
        return Ok(());
    };
    gma_pipeline::warehouse::request_refresh(
        warehouse,
        from,
        until,
        summary.counts.imported,
        "import",
    )
    .await
    .map_err(ImportError::RequestRefresh)
}

/// From the start of `first` to the last microsecond of `last` (`YYYY-MM-DD` days).
fn day_span(first: &str, last: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let day = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
    let from = day(first)?.and_hms_opt(0, 0, 0)?.and_utc();
    let until =
        day(last)?.succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc() - chrono::TimeDelta::microseconds(1);
    Some((from, until))
}

/// What an import starts with: its start time, its input (files and bytes), its workers and an
/// empty tally.
fn begin(
    files: &[InputFile],
    options: &ImportOptions,
) -> (Instant, (usize, u64), usize, Arc<Mutex<Tally>>) {
    let inputs = (files.len(), files.iter().map(|f| f.bytes).sum());
    let tally = Arc::new(Mutex::new(Tally {
        keep: options.bad_line_samples,
        ..Tally::default()
    }));
    (Instant::now(), inputs, options.workers.max(1), tally)
}

/// The options of an import's pipeline. A chunk is large: only a few are in flight between
/// stages, and the sink writes each as it comes.
fn pipeline_options(workers: usize, progress_bar: bool) -> PipelineOptions {
    let mut options = PipelineOptions::new("import");
    options.channel_capacity = workers;
    options.sink_batch = 1;
    options.sink_delay = Duration::ZERO;
    options.progress_bar = progress_bar;
    options
}

/// The import's summary from its run and tally; failed chunks fail the import.
fn summarize(
    run: &RunSummary,
    tally: &Mutex<Tally>,
    (files, input_bytes): (usize, u64),
    started: Instant,
) -> Result<ImportSummary, ImportError> {
    if run.failed > 0 {
        let first: Vec<String> = run.failures.iter().map(ToString::to_string).collect();
        return Err(ImportError::ChunksFailed {
            failed: run.failed,
            first: first.join("; "),
        });
    }
    let mut tally = tally
        .lock()
        .map(|mut t| std::mem::take(&mut *t))
        .map_err(|_| ImportError::ChunksFailed {
            failed: 0,
            first: "the store stage panicked".into(),
        })?;
    tally.trim();
    Ok(ImportSummary {
        files,
        input_bytes,
        received: tally
            .days
            .as_ref()
            .and_then(|(first, last)| day_span(first, last)),
        counts: tally.counts,
        bad_lines: tally.bad_lines,
        written: tally.written,
        elapsed: started.elapsed(),
    })
}

/// What the store stage adds up as chunks are written.
#[derive(Debug, Default)]
struct Tally {
    counts: LineCounts,
    /// The first and last UTC day (`YYYY-MM-DD`) of the events imported.
    days: Option<(String, String)>,
    bad_lines: Vec<BadLine>,
    written: BulkStats,
    /// Bad lines to keep for the report.
    keep: usize,
}

impl Tally {
    /// Counts `day` among the days of the events imported.
    fn saw_day(&mut self, day: &str) {
        self.days = Some(match self.days.take() {
            None => (day.to_owned(), day.to_owned()),
            Some((first, last)) => (first.min(day.to_owned()), last.max(day.to_owned())),
        });
    }

    /// Keeps only the first bad lines (in file and line order).
    fn trim(&mut self) {
        self.bad_lines.sort_by_key(|bad| (bad.file_index, bad.line));
        self.bad_lines.truncate(self.keep);
    }
}

/// The source: input files as chunks of whole lines, read on a blocking thread.
struct ChunkSource {
    reader: Option<ChunkReader>,
    estimate: u64,
}

impl ChunkSource {
    fn new(files: Vec<InputFile>, chunk_bytes: usize) -> Self {
        let chunk = chunk_bytes.max(1) as u64;
        // For the progress bar: exact for plain files, a guess (from compressed sizes) for gzip.
        let estimate = files.iter().map(|f| f.bytes.div_ceil(chunk).max(1)).sum();
        Self {
            reader: Some(ChunkReader::new(files, chunk_bytes)),
            estimate,
        }
    }
}

#[async_trait]
impl Source for ChunkSource {
    type Item = Chunk;

    async fn next(&mut self) -> Result<Option<Vec<Sourced<Chunk>>>, BoxError> {
        let Some(mut reader) = self.reader.take() else {
            return Ok(None);
        };
        let (reader, next) = tokio::task::spawn_blocking(move || {
            let next = reader.next();
            (reader, next)
        })
        .await?;
        match next {
            Some(Ok(chunk)) => {
                self.reader = Some(reader);
                Ok(Some(vec![Sourced::new(chunk)]))
            }
            Some(Err(error)) => Err(error.into()),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<u64> {
        Some(self.estimate)
    }
}

/// The transform: parse, lift, dedupe and encode a chunk ([`process_chunk`]) on a blocking
/// thread.
struct ParseChunks {
    ctx: ProcessContext,
}

#[async_trait]
impl DoFn for ParseChunks {
    type In = Chunk;
    type Out = ProcessedChunk;

    async fn process(&self, chunk: Chunk) -> Result<Vec<ProcessedChunk>, BoxError> {
        let ctx = self.ctx.clone();
        let processed = tokio::task::spawn_blocking(move || process_chunk(&chunk, &ctx)).await??;
        Ok(vec![processed])
    }

    fn describe(&self, chunk: &Chunk) -> String {
        format!("{}:{}", chunk.path.display(), chunk.first_line)
    }
}

/// The sink: row groups into the store's day files ([`BulkWriter`]), on a blocking thread.
/// The rows are durable when the sink closes (a file is fsynced and renamed when it is full or
/// at the end); a run that fails before leaves no partial file, and running it again completes
/// it.
struct StoreSink {
    writer: Option<BulkWriter>,
    tally: Arc<Mutex<Tally>>,
}

fn closed() -> BoxError {
    "the import's store writer is gone after an earlier failure".into()
}

#[async_trait]
impl Sink<ProcessedChunk> for StoreSink {
    async fn write(&mut self, items: Vec<ProcessedChunk>) -> Result<(), BoxError> {
        let mut writer = self.writer.take().ok_or_else(closed)?;
        let tally = Arc::clone(&self.tally);
        let (writer, result) = tokio::task::spawn_blocking(move || {
            let result = write_chunks(&mut writer, items, &tally);
            (writer, result)
        })
        .await?;
        result?;
        self.writer = Some(writer);
        Ok(())
    }

    async fn close(&mut self) -> Result<(), BoxError> {
        let writer = self.writer.take().ok_or_else(closed)?;
        let written = tokio::task::spawn_blocking(move || writer.finish()).await??;
        if let Ok(mut tally) = self.tally.lock() {
            tally.written = written;
        }
        Ok(())
    }
}

fn write_chunks(
    writer: &mut BulkWriter,
    items: Vec<ProcessedChunk>,
    tally: &Mutex<Tally>,
) -> Result<(), ImportError> {
    for processed in items {
        for group in processed.groups {
            if group.rows() > 0
                && let Ok(mut tally) = tally.lock()
            {
                tally.saw_day(group.day());
            }
            writer.write(group)?;
        }
        if let Ok(mut tally) = tally.lock() {
            tally.counts += processed.counts;
            tally.bad_lines.extend(processed.bad_lines);
            if tally.bad_lines.len() > 4 * tally.keep.max(1) {
                tally.trim();
            }
        }
    }
    Ok(())
}

/// The events of a chunk with their payload texts, for the BigQuery sink.
#[cfg(feature = "bigquery")]
struct ParsedEvents {
    events: Vec<(Event, String)>,
    counts: LineCounts,
    bad_lines: Vec<BadLine>,
}

/// The transform of a BigQuery import: parse and lift a chunk ([`parse_lines`]) on a blocking
/// thread, dropping delivery ids that came earlier in the import.
#[cfg(feature = "bigquery")]
struct ParseEvents {
    now_micros: i64,
    bad_line_samples: usize,
    seen: Arc<Mutex<HashSet<String>>>,
}

#[cfg(feature = "bigquery")]
#[async_trait]
impl DoFn for ParseEvents {
    type In = Chunk;
    type Out = ParsedEvents;

    async fn process(&self, chunk: Chunk) -> Result<Vec<ParsedEvents>, BoxError> {
        let (now, samples, seen) = (
            self.now_micros,
            self.bad_line_samples,
            Arc::clone(&self.seen),
        );
        let parsed = tokio::task::spawn_blocking(move || {
            let (good, mut counts, bad_lines) = parse_lines(&chunk, now, samples);
            let mut seen = seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let events: Vec<(Event, String)> = good
                .into_iter()
                .filter(|g| seen.insert(g.event.headers.delivery_id.clone()))
                .map(|g| (g.event, g.payload.into_owned()))
                .collect();
            counts.duplicates = counts.lines - counts.bad - events.len() as u64;
            ParsedEvents {
                events,
                counts,
                bad_lines,
            }
        })
        .await?;
        Ok(vec![parsed])
    }

    fn describe(&self, chunk: &Chunk) -> String {
        format!("{}:{}", chunk.path.display(), chunk.first_line)
    }
}

/// The sink of a BigQuery import: each chunk's events through
/// [`BigQueryEventSink::land_many`]; durable when it returns.
#[cfg(feature = "bigquery")]
struct BigQuerySink {
    sink: Arc<BigQueryEventSink>,
    tally: Arc<Mutex<Tally>>,
}

#[cfg(feature = "bigquery")]
#[async_trait]
impl Sink<ParsedEvents> for BigQuerySink {
    async fn write(&mut self, items: Vec<ParsedEvents>) -> Result<(), BoxError> {
        for mut parsed in items {
            let offered = parsed.events.len() as u64;
            let days: BTreeSet<String> = parsed
                .events
                .iter()
                .map(|(event, _)| gma_store::day_of(event.received_micros))
                .collect();
            let landed = self.sink.land_many(parsed.events).await?;
            parsed.counts.imported = landed;
            parsed.counts.duplicates += offered - landed;
            if let Ok(mut tally) = self.tally.lock() {
                if landed > 0 {
                    days.iter().for_each(|day| tally.saw_day(day));
                }
                tally.counts += parsed.counts;
                tally.written.rows += landed;
                tally.bad_lines.extend(parsed.bad_lines);
                if tally.bad_lines.len() > 4 * tally.keep.max(1) {
                    tally.trim();
                }
            }
        }
        Ok(())
    }
}
