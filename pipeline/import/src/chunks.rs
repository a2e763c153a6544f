//! Reads input files as chunks of whole lines, so that chunks can be parsed in parallel and
//! every line keeps its number in its file.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;

use super::ImportError;
use super::files::InputFile;

/// A line longer than this is refused (GitHub caps payloads at 25 MiB; escaped in a JSON
/// string they stay well under it).
const MAX_LINE_BYTES: usize = 512 * 1024 * 1024;

/// Whole lines of one file.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Which input file (its position in the import's file list).
    pub file_index: usize,
    /// The file's path.
    pub path: Arc<PathBuf>,
    /// Line number (1-based) of the chunk's first line in its file.
    pub first_line: u64,
    /// The lines, each ended by `\n` except perhaps the file's last (shared, so a chunk can be
    /// handed to a blocking thread without a copy).
    pub data: bytes::Bytes,
    /// Bytes of the file (compressed, for gzip) consumed to read this chunk, for progress.
    pub input_bytes: u64,
}

/// Counts the bytes read from a file, before any decompression.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

struct OpenInput {
    index: usize,
    path: Arc<PathBuf>,
    reader: Box<dyn Read + Send>,
    consumed: Arc<AtomicU64>,
    reported: u64,
    carry: Vec<u8>,
    next_line: u64,
    eof: bool,
}

/// An iterator over the chunks of a list of files, in file order.
pub struct ChunkReader {
    files: Vec<InputFile>,
    next_file: usize,
    current: Option<OpenInput>,
    chunk_bytes: usize,
}

impl ChunkReader {
    /// Reads `files` in order, in chunks of about `chunk_bytes` (more when one line is longer).
    pub fn new(files: Vec<InputFile>, chunk_bytes: usize) -> Self {
        Self {
            files,
            next_file: 0,
            current: None,
            chunk_bytes: chunk_bytes.max(1),
        }
    }

    fn open(&mut self) -> Result<Option<OpenInput>, ImportError> {
        let Some(file) = self.files.get(self.next_file) else {
            return Ok(None);
        };
        let index = self.next_file;
        self.next_file += 1;
        let handle = File::open(&file.path).map_err(|e| ImportError::input(&file.path, e))?;
        let consumed = Arc::new(AtomicU64::new(0));
        let counting = Counting {
            inner: handle,
            count: Arc::clone(&consumed),
        };
        let reader: Box<dyn Read + Send> = if file.gzip {
            Box::new(MultiGzDecoder::new(BufReader::with_capacity(
                1024 * 1024,
                counting,
            )))
        } else {
            Box::new(counting)
        };
        Ok(Some(OpenInput {
            index,
            path: Arc::new(file.path.clone()),
            reader,
            consumed,
            reported: 0,
            carry: Vec::new(),
            next_line: 1,
            eof: false,
        }))
    }

    /// The next chunk of the current file, or `None` at its end.
    fn next_chunk(input: &mut OpenInput, chunk_bytes: usize) -> Result<Option<Chunk>, ImportError> {
        let read_error = |e| ImportError::Read {
            path: input.path.as_ref().clone(),
            source: e,
        };
        let mut data = Vec::with_capacity(chunk_bytes.max(input.carry.len()) + 64 * 1024);
        data.append(&mut input.carry);
        let mut want = chunk_bytes;
        loop {
            if !input.eof && data.len() < want {
                let asked = (want - data.len()) as u64;
                let got = (&mut input.reader)
                    .take(asked)
                    .read_to_end(&mut data)
                    .map_err(read_error)?;
                if (got as u64) < asked {
                    input.eof = true;
                }
                continue;
            }
            if input.eof {
                break;
            }
            match memchr::memrchr(b'\n', &data) {
                Some(end) => {
                    input.carry = data.split_off(end + 1);
                    break;
                }
                None if want >= MAX_LINE_BYTES => {
                    return Err(ImportError::LineTooLong {
                        path: input.path.as_ref().clone(),
                        line: input.next_line,
                        max_bytes: MAX_LINE_BYTES,
                    });
                }
                None => want = (want * 2).min(MAX_LINE_BYTES),
            }
        }
        if data.is_empty() {
            return Ok(None);
        }
        let first_line = input.next_line;
        input.next_line += memchr::memchr_iter(b'\n', &data).count() as u64;
        let consumed = input.consumed.load(Ordering::Relaxed);
        let input_bytes = consumed - input.reported;
        input.reported = consumed;
        Ok(Some(Chunk {
            file_index: input.index,
            path: Arc::clone(&input.path),
            first_line,
            data: bytes::Bytes::from(data),
            input_bytes,
        }))
    }
}

impl Iterator for ChunkReader {
    type Item = Result<Chunk, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.current.is_none() {
                match self.open() {
                    Ok(Some(input)) => self.current = Some(input),
                    Ok(None) => return None,
                    Err(error) => return Some(Err(error)),
                }
            }
            let input = self.current.as_mut()?;
            match Self::next_chunk(input, self.chunk_bytes) {
                Ok(Some(chunk)) => return Some(Ok(chunk)),
                Ok(None) => self.current = None,
                Err(error) => {
                    self.current = None;
                    return Some(Err(error));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::files::discover;

    fn chunks(files: &[PathBuf], size: usize) -> Vec<Chunk> {
        ChunkReader::new(discover(files).unwrap(), size)
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn splits_on_line_ends_and_numbers_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ndjson");
        std::fs::write(&path, b"one\ntwo\nthree-long-line\nfour").unwrap();
        let got = chunks(&[path], 5);
        let lines: Vec<(u64, String)> = got
            .iter()
            .map(|c| (c.first_line, String::from_utf8(c.data.to_vec()).unwrap()))
            .collect();
        assert_eq!(
            lines,
            [
                (1, "one\n".to_string()),
                (2, "two\n".to_string()),
                (3, "three-long-line\n".to_string()),
                (4, "four".to_string())
            ]
        );
        assert_eq!(got.iter().map(|c| c.input_bytes).sum::<u64>(), 28);
    }

    #[test]
    fn reads_gzip_including_concatenated_members() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json.gz");
        let mut bytes = Vec::new();
        for part in [&b"a\nb\n"[..], b"c\n"] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(part).unwrap();
            bytes.extend(gz.finish().unwrap());
        }
        std::fs::write(&path, &bytes).unwrap();
        let got = chunks(&[path], 1 << 20);
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].data[..], b"a\nb\nc\n");
        assert_eq!(got[0].input_bytes, bytes.len() as u64);
    }

    #[test]
    fn a_corrupt_gzip_file_is_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json.gz");
        std::fs::write(&path, b"\x1f\x8b\x08\x00garbage").unwrap();
        let result: Result<Vec<_>, _> =
            ChunkReader::new(discover(&[path]).unwrap(), 1024).collect();
        let error = result.unwrap_err();
        assert!(matches!(error, ImportError::Read { .. }), "{error}");
    }
}
