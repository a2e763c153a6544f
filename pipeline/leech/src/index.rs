//! Index a workflow run's logs archive: one [`LogFile`] row per text file in the zip, read in
//! one streaming pass.
//!
//! GitHub's run-log zip holds one file per step, `{job}/{n}_{step}.txt`, and one file per job
//! with the job's whole log, `{n}_{job}.txt`. Each line starts with a timestamp
//! (`2026-11-28T10:00:00.1234567Z `); a failure is a line whose text starts with `##[error]`.
//!
//! The archive is read front to back from its local headers
//! ([`zip::read::read_zipfile_from_stream`]), never seeking and never holding more than one 64 KiB buffer of an entry, so a 1 GiB archive
//! is indexed with flat memory straight from the blob store ([`index_stream`]). Every entry is
//! read to its end, so its CRC-32 is checked, and the end-of-central-directory record must be
//! there and agree with the entries read (count, offset, size): a truncated or corrupt archive is
//! an [`IndexError`], never a partial index.
//!
//! # Limitation
//!
//! An entry whose sizes follow its data (a "data descriptor", written by zip tools that stream
//! their output) cannot be read without seeking; such an archive fails with
//! [`IndexError::Unsupported`].

use gma_pipeline::error::{Transient, error_chain};
use std::fmt;
use std::io::{self, Read};

use futures::TryStreamExt;
use gma_pipeline::blob::BlobReadStream;
use zip::read::{ZipFile, read_zipfile_from_stream};
use zip::result::{ZipError, ZipResult};

/// Size of the buffer each entry is read through.
const READ_BUFFER_BYTES: usize = 64 << 10;

/// The longest error text kept, in characters.
pub const MAX_ERROR_CHARS: usize = 1_000;

/// The marker GitHub puts at the start of a failure line.
const ERROR_MARKER: &[u8] = b"##[error]";

/// Bytes of a line kept while looking for the error marker: a timestamp, the marker and
/// [`MAX_ERROR_CHARS`] characters of up to 4 bytes each.
const LINE_HEAD_BYTES: usize = 64 + ERROR_MARKER.len() + 4 * MAX_ERROR_CHARS;

/// One file of a logs archive: a row of the `workflow_logs` table, without the run's ids.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogFile {
    /// The entry's name in the zip (invalid UTF-8 replaced by U+FFFD).
    pub path: String,
    /// The job the file belongs to: `build` for `build/3_Run tests.txt` and for `2_build.txt`.
    pub job_name: String,
    /// The step's number (`3` for `build/3_Run tests.txt`); `None` for a job's whole log or a
    /// step file without an `n_` prefix.
    pub step_number: Option<i64>,
    /// The step's name (`Run tests`); `None` for a job's whole log.
    pub step_name: Option<String>,
    /// Size of the file's text in bytes.
    pub uncompressed_bytes: i64,
    /// Number of lines (a last line without a newline counts).
    pub lines: i64,
    /// The first `##[error]` line, timestamp and line ending stripped, at most
    /// [`MAX_ERROR_CHARS`] characters.
    pub first_error: Option<String>,
}

/// Where in the archive something went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePosition {
    /// The entry being read, if the problem is inside an entry.
    pub entry: Option<String>,
    /// The last entry read completely before the problem.
    pub previous_entry: Option<String>,
    /// Entries read completely before the problem.
    pub entries_read: usize,
    /// Whether the problem is in the central directory (the listing at the end of the zip).
    pub in_central_directory: bool,
}

impl fmt::Display for ArchivePosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(entry) = &self.entry {
            return write!(f, "in entry {entry:?}");
        }
        let place = if self.in_central_directory {
            "in the central directory"
        } else {
            "in a local file header"
        };
        match &self.previous_entry {
            Some(previous) => write!(
                f,
                "{place}, after entry {previous:?} ({} entries read)",
                self.entries_read
            ),
            None => write!(f, "{place}, before the first entry"),
        }
    }
}

/// Why a logs archive could not be indexed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The bytes are not a zip archive at all.
    #[error(
        "the logs archive is not a zip file ({found}); the stored object is not what GitHub \
         serves for run logs: delete it and download the logs again"
    )]
    NotZip {
        /// What was found instead (size or first bytes).
        found: String,
    },
    /// The archive ends early.
    #[error(
        "the logs archive is broken: it is truncated, ending after {bytes} bytes {at}; \
         download it again"
    )]
    Truncated {
        /// Bytes read before the end.
        bytes: u64,
        /// Where the archive ends.
        at: ArchivePosition,
    },
    /// An entry's data or the archive's structure is damaged (CRC mismatch, bad compressed
    /// data, headers that disagree).
    #[error("the logs archive is broken: {reason} {at}; download it again")]
    Corrupt {
        /// What is wrong.
        reason: String,
        /// Where.
        at: ArchivePosition,
    },
    /// The archive uses a zip feature this streaming reader cannot handle.
    #[error(
        "the logs archive cannot be indexed while streaming: {reason} {at}; the archive itself \
         may be fine (open it with a zip tool to check)"
    )]
    Unsupported {
        /// The feature.
        reason: String,
        /// Where.
        at: ArchivePosition,
    },
    /// Reading the archive's bytes failed (the blob store or the disk), not the archive.
    #[error("reading the logs archive failed after {bytes} bytes; try again")]
    Read {
        /// Bytes read before the failure.
        bytes: u64,
        /// The reader's error.
        #[source]
        source: io::Error,
    },
    /// The indexing task died; a bug in gma.
    #[error("indexing the logs archive stopped unexpectedly: {message}; please report this bug")]
    Internal {
        /// What happened.
        message: String,
    },
}

impl Transient for IndexError {
    /// Indexing the same stored archive again may succeed when the read failed, not the archive.
    fn is_transient(&self) -> bool {
        matches!(self, Self::Read { .. })
    }
}

/// Indexes a zip read front to back from `reader` (no seeking; memory flat in archive size).
///
/// Directory entries are skipped. An empty zip gives no rows.
///
/// # Errors
///
/// [`IndexError::NotZip`], [`IndexError::Truncated`], [`IndexError::Corrupt`] (naming the entry)
/// for a broken archive, [`IndexError::Unsupported`] for entries with data descriptors,
/// [`IndexError::Read`] when `reader` fails.
pub fn index_zip(reader: impl Read) -> Result<Vec<LogFile>, IndexError> {
    let mut source = SourceReader::new(reader);
    let mut head = [0u8; 4];
    let mut filled = 0;
    while filled < head.len() {
        match source.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(IndexError::Read {
                    bytes: source.bytes,
                    source: source.failure.take().unwrap_or(e),
                });
            }
        }
    }
    let head = &head[..filled];
    // Local file header, or end of central directory (an empty zip).
    if head != b"PK\x03\x04" && head != b"PK\x05\x06" {
        let found = if head.is_empty() {
            "it is empty".to_owned()
        } else {
            format!(
                "it is {} bytes or more and starts with {:?}",
                filled,
                String::from_utf8_lossy(head)
            )
        };
        return Err(IndexError::NotZip { found });
    }

    let mut indexer = Indexer::default();
    let walked = {
        let mut reader = head.chain(&mut source);
        walk_entries(&mut reader, &mut indexer)
    };
    if let Err(error) = walked {
        return Err(classify(error, &mut source, indexer));
    }
    // The signature that ended the entries was consumed: the central directory starts 4 bytes
    // back (or, with no entries, the end record does).
    let central_start = source.bytes.saturating_sub(4);
    indexer.in_central_directory = true;
    let signature: &[u8] = if indexer.entries_read == 0 {
        b"PK\x05\x06"
    } else {
        b"PK\x01\x02"
    };
    match check_end_record(&mut source, signature, central_start, indexer.entries_read) {
        Ok(()) => Ok(indexer.rows),
        Err(EndProblem::Read(error)) => Err(classify(ZipError::Io(error), &mut source, indexer)),
        Err(EndProblem::Missing) => Err(IndexError::Truncated {
            bytes: source.bytes,
            at: indexer.position(),
        }),
        Err(EndProblem::Mismatch(reason)) => Err(IndexError::Corrupt {
            reason,
            at: indexer.position(),
        }),
    }
}

/// Reads every entry up to the central directory.
fn walk_entries<R: Read>(reader: &mut R, indexer: &mut Indexer) -> ZipResult<()> {
    while let Some(mut file) = read_zipfile_from_stream(reader)? {
        indexer.visit_file(&mut file)?;
    }
    Ok(())
}

/// What is wrong with the end of the archive.
enum EndProblem {
    Read(io::Error),
    Missing,
    Mismatch(String),
}

/// The longest end-of-central-directory record: 22 bytes and a comment of up to 65,535.
const MAX_END_RECORD_BYTES: usize = 22 + 0xFFFF;

/// Reads the rest of the archive (central directory and end record) keeping only its last
/// [`MAX_END_RECORD_BYTES`], then checks the end record against what the entries said.
fn check_end_record<R: Read>(
    source: &mut SourceReader<R>,
    signature: &[u8],
    central_start: u64,
    entries: usize,
) -> Result<(), EndProblem> {
    let mut tail: Vec<u8> = signature.to_vec();
    let mut buf = vec![0u8; READ_BUFFER_BYTES];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(EndProblem::Read(e)),
        };
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 2 * MAX_END_RECORD_BYTES {
            tail.drain(..tail.len() - MAX_END_RECORD_BYTES);
        }
    }
    let archive_len = source.bytes;
    if tail.len() < 22 {
        return Err(EndProblem::Missing);
    }
    let Some(at) = (0..=tail.len() - 22).rev().find(|&i| {
        tail[i..].starts_with(b"PK\x05\x06")
            && i + 22 + usize::from(u16_at(&tail, i + 20)) == tail.len()
    }) else {
        return Err(EndProblem::Missing);
    };
    let record_offset = archive_len - (tail.len() - at) as u64;
    let total = u16_at(&tail, at + 10);
    let size = u32_at(&tail, at + 12);
    let offset = u32_at(&tail, at + 16);
    if total == u16::MAX || size == u32::MAX || offset == u32::MAX {
        // Zip64: the real values are in the zip64 end record; the entries were checked one by one.
        return Ok(());
    }
    if usize::from(total) != entries {
        return Err(EndProblem::Mismatch(format!(
            "the central directory lists {total} entries but {entries} were found"
        )));
    }
    if u64::from(offset) != central_start || u64::from(offset) + u64::from(size) != record_offset {
        return Err(EndProblem::Mismatch(format!(
            "the end record places the central directory at {offset}..{} but it spans \
             {central_start}..{record_offset}",
            u64::from(offset) + u64::from(size)
        )));
    }
    Ok(())
}

fn u16_at(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([data[at], data[at + 1]])
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// Indexes an archive streamed from a blob store (see [`index_zip`]); the reading runs on a
/// blocking thread.
///
/// # Errors
///
/// As [`index_zip`]; a failing stream gives [`IndexError::Read`] carrying the
/// [`gma_pipeline::blob::BlobError`].
pub async fn index_stream(stream: BlobReadStream) -> Result<Vec<LogFile>, IndexError> {
    let reader = tokio_util::io::StreamReader::new(stream.map_err(io::Error::other));
    let bridge = tokio_util::io::SyncIoBridge::new(reader);
    tokio::task::spawn_blocking(move || {
        index_zip(io::BufReader::with_capacity(READ_BUFFER_BYTES, bridge))
    })
    .await
    .map_err(|e| IndexError::Internal {
        message: e.to_string(),
    })?
}

/// Turns the zip reader's error into an [`IndexError`] with its position in the archive.
fn classify<R: Read>(
    error: ZipError,
    source: &mut SourceReader<R>,
    indexer: Indexer,
) -> IndexError {
    if let Some(failure) = source.failure.take() {
        return IndexError::Read {
            bytes: source.bytes,
            source: failure,
        };
    }
    let at = indexer.position();
    let reason = match &error {
        ZipError::Io(e)
            if e.kind() == io::ErrorKind::InvalidData && e.to_string().contains("checksum") =>
        {
            "CRC-32 mismatch (the data differs from what was written)".to_owned()
        }
        ZipError::Io(e) => error_chain(e),
        ZipError::InvalidArchive(message) => message.to_string(),
        ZipError::UnsupportedArchive(message) => {
            return IndexError::Unsupported {
                reason: message.to_string(),
                at,
            };
        }
        other => other.to_string(),
    };
    if source.eof {
        return IndexError::Truncated {
            bytes: source.bytes,
            at,
        };
    }
    IndexError::Corrupt { reason, at }
}

/// The archive's bytes, counted; remembers whether they ended and keeps the reader's own error
/// (the zip reader only sees a stand-in) so it reaches the caller intact.
struct SourceReader<R> {
    inner: R,
    bytes: u64,
    eof: bool,
    failure: Option<io::Error>,
}

impl<R> SourceReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            bytes: 0,
            eof: false,
            failure: None,
        }
    }
}

impl<R: Read> Read for SourceReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failure.is_some() {
            return Err(io::Error::other("the archive's reader failed earlier"));
        }
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failure = Some(e);
                Err(io::Error::other("the archive's reader failed"))
            }
        }
    }
}

/// The zip visitor: reads each entry through the line scanner and keeps one row per file.
struct Indexer {
    rows: Vec<LogFile>,
    buf: Vec<u8>,
    /// The entry being read.
    current: Option<String>,
    /// The last entry read completely.
    previous: Option<String>,
    entries_read: usize,
    in_central_directory: bool,
}

impl Default for Indexer {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            buf: vec![0; READ_BUFFER_BYTES],
            current: None,
            previous: None,
            entries_read: 0,
            in_central_directory: false,
        }
    }
}

impl Indexer {
    fn position(&self) -> ArchivePosition {
        ArchivePosition {
            entry: self.current.clone(),
            previous_entry: self.previous.clone(),
            entries_read: self.entries_read,
            in_central_directory: self.in_central_directory,
        }
    }

    fn visit_file<R: Read>(&mut self, file: &mut ZipFile<'_, R>) -> ZipResult<()> {
        let path = String::from_utf8_lossy(file.name_raw()).into_owned();
        self.current = Some(path.clone());
        let declared = file.size();
        let is_dir = file.is_dir() || path.ends_with('\\');
        let mut scanner = LineScanner::default();
        loop {
            let n = match file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            scanner.feed(&self.buf[..n]);
        }
        if scanner.bytes != declared {
            return Err(ZipError::InvalidArchive(
                format!(
                    "the entry holds {} bytes but its header says {declared}",
                    scanner.bytes
                )
                .into(),
            ));
        }
        if !is_dir && let Some((job_name, step_number, step_name)) = parse_name(&path) {
            let (lines, first_error) = scanner.finish();
            self.rows.push(LogFile {
                path: path.clone(),
                job_name,
                step_number,
                step_name,
                uncompressed_bytes: i64::try_from(declared).unwrap_or(i64::MAX),
                lines,
                first_error,
            });
        }
        self.current = None;
        self.previous = Some(path);
        self.entries_read += 1;
        Ok(())
    }
}

/// Splits an entry name into job, step number and step name; `None` for a name with no file
/// part (a directory).
///
/// `build/3_Run tests.txt` → (`build`, 3, `Run tests`); `2_build.txt` → (`build`, none, none);
/// `build/Set up.txt` → (`build`, none, `Set up`); `a/b/1_x.txt` → (`a`, 1, `x`); backslashes
/// count as `/`.
fn parse_name(path: &str) -> Option<(String, Option<i64>, Option<String>)> {
    let normalized = path.replace('\\', "/");
    let segments: Vec<&str> = normalized.split('/').filter(|s| !s.is_empty()).collect();
    let (&file, dirs) = segments.split_last()?;
    if normalized.ends_with('/') {
        return None;
    }
    let stem = file.strip_suffix(".txt").unwrap_or(file);
    let (number, rest) = split_number(stem);
    match dirs.first() {
        Some(job) => Some(((*job).to_owned(), number, Some(rest.to_owned()))),
        None => Some((rest.to_owned(), None, None)),
    }
}

/// `3_Run tests` → (Some(3), `Run tests`); anything else → (None, whole).
fn split_number(stem: &str) -> (Option<i64>, &str) {
    if let Some((digits, rest)) = stem.split_once('_')
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = digits.parse::<i64>()
    {
        return (Some(n), rest);
    }
    (None, stem)
}

/// Counts lines and finds the first error line of one entry, fed in pieces.
#[derive(Default)]
struct LineScanner {
    bytes: u64,
    newlines: i64,
    /// Whether the last byte fed was a newline (or nothing was fed).
    at_line_start: bool,
    /// The first bytes of the current line, while no error is found.
    head: Vec<u8>,
    first_error: Option<String>,
    /// Whether the first line has begun (to strip a byte-order mark once).
    started: bool,
}

impl LineScanner {
    fn feed(&mut self, mut data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.bytes += data.len() as u64;
        self.at_line_start = data.last() == Some(&b'\n');
        if self.first_error.is_some() {
            self.newlines += count_newlines(data);
            return;
        }
        while !data.is_empty() {
            let end = data.iter().position(|&b| b == b'\n');
            let piece = &data[..end.unwrap_or(data.len())];
            let room = LINE_HEAD_BYTES.saturating_sub(self.head.len());
            self.head.extend_from_slice(&piece[..piece.len().min(room)]);
            let Some(end) = end else { break };
            self.newlines += 1;
            self.end_line();
            data = &data[end + 1..];
            if self.first_error.is_some() {
                self.newlines += count_newlines(data);
                return;
            }
        }
    }

    fn end_line(&mut self) {
        let mut line = self.head.as_slice();
        if !self.started {
            self.started = true;
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = strip_timestamp(line);
        if text.starts_with(ERROR_MARKER) {
            let text = String::from_utf8_lossy(text);
            self.first_error = Some(text.chars().take(MAX_ERROR_CHARS).collect());
            self.head = Vec::new();
        } else {
            self.head.clear();
        }
    }

    /// Line count and first error, once every byte is fed.
    fn finish(mut self) -> (i64, Option<String>) {
        let mut lines = self.newlines;
        if self.bytes > 0 && !self.at_line_start {
            lines += 1;
            if self.first_error.is_none() {
                self.end_line();
            }
        }
        (lines, self.first_error)
    }
}

fn count_newlines(data: &[u8]) -> i64 {
    data.iter().filter(|&&b| b == b'\n').count() as i64
}

/// The line without its leading `YYYY-MM-DDTHH:MM:SS[.fraction]Z ` timestamp, if it has one.
fn strip_timestamp(line: &[u8]) -> &[u8] {
    const PATTERN: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    if line.len() < PATTERN.len() + 2 {
        return line;
    }
    let matches = PATTERN.iter().zip(line).all(|(&p, &b)| match p {
        b'd' => b.is_ascii_digit(),
        _ => b == p,
    });
    if !matches {
        return line;
    }
    let mut i = PATTERN.len();
    if line[i] == b'.' {
        i += 1;
        while i < line.len() && line[i].is_ascii_digit() {
            i += 1;
        }
    }
    if line.get(i) != Some(&b'Z') {
        return line;
    }
    i += 1;
    match line.get(i) {
        Some(b' ') => &line[i + 1..],
        None => &line[i..],
        Some(_) => line,
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use bytes::Bytes;
    use futures::StreamExt;
    use gma_pipeline::blob::{BlobError, BlobKey, open_blob_store};
    use gma_testkit::github::logs_zip;
    use zip::CompressionMethod;
    use zip::write::SimpleFileOptions;

    use super::*;

    const TS: &str = "2026-11-28T10:00:00.1234567Z ";

    /// A zip of `(name, bytes)` entries written with the `zip` crate.
    fn zip_of(entries: &[(&str, &[u8])], method: CompressionMethod) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(method);
        for (name, data) in entries {
            if name.ends_with('/') {
                writer.add_directory(*name, options).unwrap();
            } else {
                writer.start_file(*name, options).unwrap();
                writer.write_all(data).unwrap();
            }
        }
        writer.finish().unwrap().into_inner()
    }

    fn row<'a>(rows: &'a [LogFile], path: &str) -> &'a LogFile {
        rows.iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("no row for {path:?} in {rows:#?}"))
    }

    #[test]
    fn github_layout_gives_one_row_per_file() {
        let setup = format!("\u{feff}{TS}Current runner version: '2.330.0'\n{TS}Starting\n");
        let tests = format!(
            "{TS}cargo test\n{TS}test a ... ok\n{TS}##[error]Process completed with exit code 101.\n{TS}##[error]second\n{TS}Cleaning up"
        );
        let lint = format!("{TS}cargo clippy\r\n{TS}##[error]unused variable: `x`\r\n");
        let archive = logs_zip(&[
            ("build", &[("Set up job", &setup), ("Run tests", &tests)]),
            ("lint", &[("Run clippy", &lint)]),
        ]);
        let rows = index_zip(archive.as_slice()).unwrap();
        assert_eq!(rows.len(), 5, "{rows:#?}");

        assert_eq!(
            row(&rows, "build/1_Set up job.txt"),
            &LogFile {
                path: "build/1_Set up job.txt".into(),
                job_name: "build".into(),
                step_number: Some(1),
                step_name: Some("Set up job".into()),
                uncompressed_bytes: setup.len() as i64,
                lines: 2,
                first_error: None,
            }
        );
        let run_tests = row(&rows, "build/2_Run tests.txt");
        assert_eq!(run_tests.step_number, Some(2));
        assert_eq!(run_tests.step_name.as_deref(), Some("Run tests"));
        assert_eq!(run_tests.uncompressed_bytes, tests.len() as i64);
        assert_eq!(run_tests.lines, 5, "a last line without a newline counts");
        assert_eq!(
            run_tests.first_error.as_deref(),
            Some("##[error]Process completed with exit code 101.")
        );

        let whole = row(&rows, "1_build.txt");
        assert_eq!(whole.job_name, "build");
        assert_eq!(whole.step_number, None);
        assert_eq!(whole.step_name, None);
        assert_eq!(whole.uncompressed_bytes, (setup.len() + tests.len()) as i64);
        assert_eq!(whole.lines, 7);
        assert_eq!(
            whole.first_error.as_deref(),
            Some("##[error]Process completed with exit code 101.")
        );

        let clippy = row(&rows, "lint/1_Run clippy.txt");
        assert_eq!(clippy.lines, 2, "CRLF line endings");
        assert_eq!(
            clippy.first_error.as_deref(),
            Some("##[error]unused variable: `x`"),
            "timestamp and \\r stripped"
        );
        assert_eq!(row(&rows, "2_lint.txt").job_name, "lint");
    }

    #[test]
    fn lines_and_errors_spanning_reads_and_edge_cases() {
        let long_error = format!("{TS}##[error]{}\n", "é".repeat(3000));
        // A line longer than the read buffer, with the error after it.
        let long_line = format!("{}\n{TS}##[error]after a long line", "x".repeat(200_000));
        let entries: Vec<(&str, Vec<u8>)> = vec![
            ("j/1_empty.txt", Vec::new()),
            ("j/2_one.txt", b"no newline".to_vec()),
            ("j/3_newline.txt", b"\n".to_vec()),
            ("j/4_blank lines.txt", b"\n\n\r\n".to_vec()),
            (
                "j/5_mid.txt",
                format!("{TS}echo '##[error]' is not an error\n").into_bytes(),
            ),
            ("j/6_no ts.txt", b"##[error]bare\n".to_vec()),
            ("j/7_long.txt", long_error.into_bytes()),
            ("j/8_long line.txt", long_line.into_bytes()),
            ("j/9_invalid utf8.txt", b"##[error]bad \xff byte\n".to_vec()),
        ];
        let borrowed: Vec<(&str, &[u8])> =
            entries.iter().map(|(n, d)| (*n, d.as_slice())).collect();
        for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
            let rows = index_zip(zip_of(&borrowed, method).as_slice()).unwrap();
            let get = |p: &str| row(&rows, p).clone();
            assert_eq!(
                (
                    get("j/1_empty.txt").lines,
                    get("j/1_empty.txt").uncompressed_bytes
                ),
                (0, 0)
            );
            assert_eq!(get("j/2_one.txt").lines, 1);
            assert_eq!(get("j/3_newline.txt").lines, 1);
            assert_eq!(get("j/4_blank lines.txt").lines, 3);
            assert_eq!(
                get("j/5_mid.txt").first_error,
                None,
                "the marker must start the line"
            );
            assert_eq!(
                get("j/6_no ts.txt").first_error.as_deref(),
                Some("##[error]bare")
            );
            let long = get("j/7_long.txt").first_error.unwrap();
            assert_eq!(long.chars().count(), MAX_ERROR_CHARS);
            assert!(long.starts_with("##[error]éé"));
            assert_eq!(get("j/8_long line.txt").lines, 2);
            assert_eq!(
                get("j/8_long line.txt").first_error.as_deref(),
                Some("##[error]after a long line")
            );
            assert_eq!(
                get("j/9_invalid utf8.txt").first_error.as_deref(),
                Some("##[error]bad \u{fffd} byte")
            );
        }
    }

    #[test]
    fn names_are_parsed_robustly() {
        /// Job, step number, step name.
        type Expected = Option<(&'static str, Option<i64>, Option<&'static str>)>;
        let cases: &[(&str, Expected)] = &[
            (
                "build/3_Run tests.txt",
                Some(("build", Some(3), Some("Run tests"))),
            ),
            ("2_build.txt", Some(("build", None, None))),
            (
                "build\\3_Run tests.txt",
                Some(("build", Some(3), Some("Run tests"))),
            ),
            ("build/Set up.txt", Some(("build", None, Some("Set up")))),
            ("build/system.txt", Some(("build", None, Some("system")))),
            ("a/b/1_x.txt", Some(("a", Some(1), Some("x")))),
            (
                "build (ubuntu, 3.12)/12_Post Run actions_checkout@v4.txt",
                Some((
                    "build (ubuntu, 3.12)",
                    Some(12),
                    Some("Post Run actions_checkout@v4"),
                )),
            ),
            ("build/_x.txt", Some(("build", None, Some("_x")))),
            (
                "build/99999999999999999999_x.txt",
                Some(("build", None, Some("99999999999999999999_x"))),
            ),
            ("notes", Some(("notes", None, None))),
            ("build/", None),
            ("build\\", None),
            ("", None),
        ];
        for (path, expected) in cases {
            let got = parse_name(path);
            let expected = expected.map(|(j, n, s)| (j.to_owned(), n, s.map(str::to_owned)));
            assert_eq!(got, expected, "{path:?}");
        }
    }

    #[test]
    fn directories_skipped_and_non_utf8_names_kept_lossy() {
        let mut archive = zip_of(
            &[
                ("build/", b""),
                ("build/1_X.txt", b"hello\n"),
                ("1_build.txt", b"hello\n"),
            ],
            CompressionMethod::Deflated,
        );
        // Make the name invalid UTF-8 in both headers (names are not covered by the CRC).
        let needle = b"1_X.txt";
        let mut i = 0;
        while let Some(at) = archive[i..].windows(needle.len()).position(|w| w == needle) {
            archive[i + at + 2] = 0xFF;
            i += at + needle.len();
        }
        let rows = index_zip(archive.as_slice()).unwrap();
        assert_eq!(rows.len(), 2, "{rows:#?}");
        assert_eq!(rows[0].path, "build/1_\u{fffd}.txt");
        assert_eq!(rows[0].step_name.as_deref(), Some("\u{fffd}"));
        assert_eq!(rows[0].lines, 1);
    }

    #[test]
    fn empty_zip_has_no_rows() {
        let archive = zip_of(&[], CompressionMethod::Deflated);
        assert_eq!(archive.len(), 22);
        assert_eq!(index_zip(archive.as_slice()).unwrap(), vec![]);
    }

    #[test]
    fn non_zip_input_is_refused() {
        for input in [
            &b""[..],
            b"<html>Not Found</html>",
            b"PK",
            b"{\"message\":\"Not Found\"}",
        ] {
            let error = index_zip(input).unwrap_err();
            assert!(
                matches!(error, IndexError::NotZip { .. }),
                "{input:?}: {error:?}"
            );
            assert!(error.to_string().contains("not a zip file"), "{error}");
        }
    }

    fn sample_archive() -> Vec<u8> {
        let step = format!("{TS}line\n").repeat(2000);
        logs_zip(&[("build", &[("Set up job", &step), ("Run tests", &step)])])
    }

    #[test]
    fn truncated_archive_is_an_error_at_every_cut() {
        let archive = sample_archive();
        assert!(index_zip(archive.as_slice()).is_ok());
        // Every cut point from the first header to one byte short of the end.
        for cut in (4..archive.len())
            .step_by(7)
            .chain([archive.len() - 1, archive.len() - 22])
        {
            let error = index_zip(&archive[..cut]).unwrap_err();
            assert!(
                matches!(error, IndexError::Truncated { .. }),
                "cut at {cut} of {}: {error:?}",
                archive.len()
            );
            let text = error.to_string();
            assert!(
                text.contains("broken") && text.contains("truncated"),
                "{text}"
            );
        }
        let half = index_zip(&archive[..archive.len() / 2]).unwrap_err();
        assert!(
            half.to_string().contains("in entry \""),
            "names the entry: {half}"
        );
    }

    #[test]
    fn corrupted_byte_is_an_error_naming_the_entry() {
        let data = format!("{TS}line\n").repeat(100);
        let stored = zip_of(
            &[
                ("build/1_a.txt", data.as_bytes()),
                ("build/2_b.txt", data.as_bytes()),
            ],
            CompressionMethod::Stored,
        );
        // Flip a byte inside the second entry's data.
        let second = stored
            .windows(13)
            .position(|w| w == b"build/2_b.txt")
            .unwrap();
        let mut broken = stored.clone();
        broken[second + 13 + 100] ^= 0x20;
        let error = index_zip(broken.as_slice()).unwrap_err();
        assert!(matches!(error, IndexError::Corrupt { .. }), "{error:?}");
        let text = error.to_string();
        assert!(text.contains("CRC-32 mismatch"), "{text}");
        assert!(text.contains("in entry \"build/2_b.txt\""), "{text}");
        assert!(text.contains("broken"), "{text}");
        assert!(!error.is_transient());

        // In deflated data every flipped byte is caught (bad stream, CRC or size).
        let deflated = sample_archive();
        let first_data = 30 + "build/1_Set up job.txt".len();
        for at in (first_data..first_data + 200).step_by(3) {
            let mut broken = deflated.clone();
            broken[at] ^= 0x55;
            let error = index_zip(broken.as_slice()).unwrap_err();
            assert!(
                matches!(
                    error,
                    IndexError::Corrupt { .. } | IndexError::Truncated { .. }
                ),
                "byte {at}: {error:?}"
            );
        }

        // A central directory that disagrees with the entries.
        let mut wrong_count = stored.clone();
        let end = wrong_count.len() - 22;
        wrong_count[end + 10] = 3;
        wrong_count[end + 8] = 3;
        let error = index_zip(wrong_count.as_slice()).unwrap_err();
        assert!(matches!(error, IndexError::Corrupt { .. }), "{error:?}");
        assert!(
            error.to_string().contains("in the central directory"),
            "{error}"
        );
    }

    #[test]
    fn data_descriptor_entries_are_reported_unsupported() {
        let mut writer = zip::ZipWriter::new_stream(Vec::new());
        writer
            .start_file("build/1_a.txt", SimpleFileOptions::default())
            .unwrap();
        writer.write_all(b"hello\n").unwrap();
        let archive = writer.finish().unwrap().into_inner();
        let error = index_zip(archive.as_slice()).unwrap_err();
        assert!(matches!(error, IndexError::Unsupported { .. }), "{error:?}");
    }

    fn stream_of(chunks: Vec<Result<Bytes, BlobError>>) -> BlobReadStream {
        futures::stream::iter(chunks).boxed()
    }

    #[tokio::test]
    async fn index_stream_handles_tiny_chunks_and_reader_errors() {
        let archive = sample_archive();
        let expected = index_zip(archive.as_slice()).unwrap();
        let chunks = archive
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        assert_eq!(index_stream(stream_of(chunks)).await.unwrap(), expected);

        let mut chunks: Vec<_> = archive[..archive.len() / 2]
            .chunks(1000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        chunks.push(Err(BlobError::NotFound {
            uri: "memory://x/gone".into(),
        }));
        let error = index_stream(stream_of(chunks)).await.unwrap_err();
        assert!(matches!(error, IndexError::Read { .. }), "{error:?}");
        assert!(error.is_transient());
        assert!(error_chain(&error).contains("memory://x/gone"), "{error:?}");
    }

    #[tokio::test]
    async fn index_stream_from_blob_stores_with_a_50_mib_entry() {
        const BIG: usize = 50 << 20;
        let line = format!("{TS}generated log line padded to sixty-four bytes..\n");
        assert_eq!(line.len(), 77);
        let mut text = line.repeat(BIG / line.len() + 1);
        text.truncate(BIG - 40);
        text.push_str(&format!("\n{TS}##[error]the end"));
        let lines = text.bytes().filter(|&b| b == b'\n').count() as i64 + 1;
        let archive = zip_of(
            &[
                ("big/1_Big step.txt", text.as_bytes()),
                ("1_big.txt", b"x\n"),
            ],
            CompressionMethod::Stored,
        );
        let dir = tempfile::tempdir().unwrap();
        let key = BlobKey::new("o/r/1/1/logs.zip").unwrap();
        for store in [
            open_blob_store("memory://x").unwrap(),
            open_blob_store(dir.path().to_str().unwrap()).unwrap(),
        ] {
            store
                .put(&key, Bytes::from(archive.clone()), "application/zip")
                .await
                .unwrap();
            let rows = index_stream(store.get_stream(&key).await.unwrap())
                .await
                .unwrap();
            let big = row(&rows, "big/1_Big step.txt");
            assert_eq!(big.uncompressed_bytes, text.len() as i64);
            assert_eq!(big.lines, lines);
            assert_eq!(big.first_error.as_deref(), Some("##[error]the end"));
            assert_eq!(row(&rows, "1_big.txt").lines, 1);
        }
    }
}
