//! One chunk from lines to compressed row groups: parse each line, lift its columns, reserve
//! the new delivery ids with the store, and encode the new rows per day.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use super::ImportError;
use super::chunks::Chunk;
use super::line::{BadLineReason, parse_line};
use gma_store::event::{DeliveryHeaders, Event, Payload, PayloadError, lift};
use gma_store::schema::EventBatchBuilder;
use gma_store::{EncodedRowGroup, EventStore, RowGroupEncoder, error_chain};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A line that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The file.
    pub path: Arc<PathBuf>,
    /// Position of the file in the import's file list (to order reports).
    pub file_index: usize,
    /// 1-based line number in the file.
    pub line: u64,
    /// What is wrong with it.
    pub reason: BadLineReason,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.reason)
    }
}

/// Line counts of a chunk or a whole import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCounts {
    /// Non-blank lines read.
    pub lines: u64,
    /// Events new to the store, now written.
    pub imported: u64,
    /// Good lines whose delivery id was stored already or came earlier in the import.
    pub duplicates: u64,
    /// Lines refused.
    pub bad: u64,
}

impl std::ops::AddAssign for LineCounts {
    fn add_assign(&mut self, other: Self) {
        self.lines += other.lines;
        self.imported += other.imported;
        self.duplicates += other.duplicates;
        self.bad += other.bad;
    }
}

/// What processing one chunk produced.
#[derive(Debug)]
pub struct ProcessedChunk {
    /// The new rows, one row group per day, holding their reserved ids.
    pub groups: Vec<EncodedRowGroup>,
    /// Its counts.
    pub counts: LineCounts,
    /// Its first bad lines (at most the configured number).
    pub bad_lines: Vec<BadLine>,
    /// Input bytes the chunk stands for, for progress.
    pub input_bytes: u64,
}

/// What processing needs besides the chunk.
#[derive(Clone)]
pub struct ProcessContext {
    /// The store whose index says which ids are new.
    pub store: Arc<EventStore>,
    /// Encodes row groups.
    pub encoder: Arc<RowGroupEncoder>,
    /// `received` of a line that has none (the import's start).
    pub now_micros: i64,
    /// Bad lines kept per chunk for the report.
    pub bad_line_samples: usize,
}

/// A good line: its event (payload text beside it, not copied into the event).
pub struct Good<'a> {
    /// The event, with an empty inline payload.
    pub event: Event,
    /// The payload's text, borrowed from the chunk when it was stored as a JSON string.
    pub payload: Cow<'a, str>,
}

/// The lines of a chunk: good ones parsed and lifted, bad ones counted (the first
/// `bad_line_samples` kept). Blocks only on CPU.
pub fn parse_lines<'a>(
    chunk: &'a Chunk,
    now_micros: i64,
    bad_line_samples: usize,
) -> (Vec<Good<'a>>, LineCounts, Vec<BadLine>) {
    let mut counts = LineCounts::default();
    let mut bad_lines = Vec::new();
    let mut good: Vec<Good<'_>> = Vec::new();
    let mut start = 0;
    let data = &chunk.data;
    let ends = memchr::memchr_iter(b'\n', data).chain(std::iter::once(data.len()));
    for (this, end) in (chunk.first_line..).zip(ends) {
        if start > data.len() {
            break;
        }
        let mut line = &data[start..end];
        start = end + 1;
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        counts.lines += 1;
        match parse_good(line, now_micros) {
            Ok(g) => good.push(g),
            Err(reason) => {
                counts.bad += 1;
                if bad_lines.len() < bad_line_samples {
                    bad_lines.push(BadLine {
                        path: Arc::clone(&chunk.path),
                        file_index: chunk.file_index,
                        line: this,
                        reason,
                    });
                }
            }
        }
    }
    (good, counts, bad_lines)
}

/// Parses, lifts, deduplicates and encodes one chunk. Must run on a thread that may block
/// (not an async task): it waits for the store's writer thread.
///
/// # Errors
/// [`ImportError::Store`] if the store is closed or a row group cannot be encoded.
pub fn process_chunk(chunk: &Chunk, ctx: &ProcessContext) -> Result<ProcessedChunk, ImportError> {
    let (good, mut counts, bad_lines) = parse_lines(chunk, ctx.now_micros, ctx.bad_line_samples);

    let ids: Vec<&str> = good
        .iter()
        .map(|g| g.event.headers.delivery_id.as_str())
        .collect();
    let mut reservation = ctx.store.reserve_blocking(&ids)?;
    counts.imported = reservation.new_count() as u64;
    counts.duplicates = good.len() as u64 - counts.imported;

    let mut days: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, g) in good.iter().enumerate() {
        if reservation.is_new(i) {
            days.entry(g.event.received_micros.div_euclid(MICROS_PER_DAY))
                .or_default()
                .push(i);
        }
    }
    let mut groups = Vec::with_capacity(days.len());
    for (day, rows) in days {
        let payload_bytes = rows.iter().map(|&i| good[i].payload.len()).sum();
        let mut builder = EventBatchBuilder::with_capacity(rows.len(), payload_bytes);
        for &i in &rows {
            builder.append(&good[i].event, &good[i].payload);
        }
        let batch = builder
            .finish()
            .map_err(|e| gma_store::StoreError::arrow("building a batch of imported events", e))?;
        let part = reservation.split_off(rows);
        let day = gma_store::day_of(day * MICROS_PER_DAY);
        groups.push(ctx.encoder.encode(day, &batch, part)?);
    }
    Ok(ProcessedChunk {
        groups,
        counts,
        bad_lines,
        input_bytes: chunk.input_bytes,
    })
}

fn parse_good(line: &[u8], now_micros: i64) -> Result<Good<'_>, BadLineReason> {
    let parsed = parse_line(line, now_micros)?;
    let lifted = lift(parsed.payload.as_bytes())
        .map_err(|e| BadLineReason::BadPayload(payload_problem(&e)))?;
    let payload_size = parsed.payload.len() as u64;
    Ok(Good {
        event: Event {
            headers: DeliveryHeaders {
                delivery_id: parsed.delivery_id.into_owned(),
                event: parsed.event.into_owned(),
                signature: parsed.signature.into_owned(),
                hook_id: parsed.hook_id,
                target_type: parsed.target_type.map(Cow::into_owned),
                target_id: parsed.target_id,
            },
            received_micros: parsed.received_micros,
            lifted,
            // The batch builder takes the text from `payload` beside it, without a copy here.
            payload: Payload::Inline(Bytes::new()),
            payload_size,
        },
        payload: parsed.payload,
    })
}

fn payload_problem(error: &PayloadError) -> String {
    match error {
        PayloadError::NotObject => "is JSON but not an object".into(),
        PayloadError::NotJson(cause) => format!("is not valid JSON: {cause}"),
        PayloadError::Io { .. } => format!("is unreadable: {}", error_chain(error)),
    }
}
