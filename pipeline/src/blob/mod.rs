//! Blobs: named byte objects in a local directory, in memory, or in Google Cloud Storage.
//!
//! [`BlobStore`] is the one interface gma writes and reads blobs through:
//!
//! - the retry job's lock is an object made with [`BlobStore::create_if_absent`] (exactly one of
//!   many racing creators wins), taken over with [`BlobStore::replace_if_generation`] and released
//!   with [`BlobStore::delete_if_generation`];
//! - the leech job streams Actions log archives of any size with [`BlobStore::put_stream`]: memory
//!   stays bounded by a chunk size, and the object appears under its key only once complete;
//! - the BigQuery ingest sink keeps payloads too large for a row as blobs and stores
//!   [`BlobStore::uri`] in the row.
//!
//! Three implementations, chosen by a location string with [`open_blob_store`]:
//!
//! | location | store |
//! |---|---|
//! | `/abs/dir`, `./rel/dir`, `file:///abs/dir` | [`fs::LocalBlobStore`] |
//! | `memory://` (or `memory://name`) | [`memory::MemoryBlobStore`] |
//! | `gs://bucket` or `gs://bucket/prefix` | `gcs::GcsBlobStore` |
//!
//! Every key is checked by [`BlobKey::new`] before it reaches a store: `/`-separated segments,
//! none empty, `.` or `..`, no leading `/`. Keys are relative to the store's root (the directory,
//! or the bucket plus prefix).
//!
//! # Generations
//!
//! Each object carries a generation ([`BlobMeta::generation`]) that changes on every write.
//! Conditional operations compare it, so a lock holder that lost its lock cannot overwrite or
//! delete its successor's lock. GCS generations come from GCS; the local store derives them from
//! the file's modification time in nanoseconds, which it sets itself, strictly increasing per key
//! (see [`fs`]); the memory store counts.
//!
//! # Why not `object_store` for the local and memory stores
//!
//! The plan suggested `object_store`'s `LocalFileSystem` and `InMemory`
//! (`docs/architecture.md#own-local-and-memory-blob-stores`). The lock needs a
//! conditional replace, and `LocalFileSystem` (0.13) answers `PutMode::Update` with
//! `NotImplemented`; its objects also carry no generation. The stores here are small, share one
//! meaning of generation across local, memory and GCS, and pass one conformance suite. The local
//! store keeps plain files, so DataFusion still reads them through its own `LocalFileSystem`.
//! The GCS store's choice is explained in `gcs`.
//!
//! # Adding a store
//!
//! Implement [`BlobStore`] in a new file of this module, make [`open_blob_store`] recognise its
//! location scheme, and run the conformance suite of `tests.rs` against it (add one
//! `conformance!` line).

pub mod fs;
#[cfg(feature = "gcs")]
pub mod gcs;
pub mod memory;

#[cfg(all(test, feature = "gcs"))]
mod gcs_fault_tests;
#[cfg(all(test, feature = "gcs"))]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The bytes of an upload, pulled one chunk at a time. A source error aborts the upload.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// The bytes of a blob being read, one chunk at a time.
pub type BlobReadStream = BoxStream<'static, Result<Bytes, BlobError>>;

/// An object's generation: changes on every write of the object, never repeats for one key while
/// the store lives (see the module docs for how each store makes it).
pub type Generation = u64;

/// The content type stored when the caller has none to give.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// The longest key GCS accepts (in bytes of UTF-8); applied to every store so keys stay portable.
pub const MAX_KEY_BYTES: usize = 1024;

/// The first key segment the local store reserves for its temporary files and lock.
pub(crate) const RESERVED_SEGMENT: &str = ".gma-tmp";

/// A checked blob key: relative, `/`-separated, no empty, `.` or `..` segments.
///
/// ```
/// use gma_pipeline::blob::BlobKey;
/// assert!(BlobKey::new("leech/octo/repo/42/1/logs.zip").is_ok());
/// assert!(BlobKey::new("../etc/passwd").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

impl BlobKey {
    /// Checks `key` and wraps it.
    ///
    /// # Errors
    ///
    /// [`BlobError::InvalidKey`] naming the rule the key breaks.
    pub fn new(key: impl Into<String>) -> Result<Self, BlobError> {
        let key = key.into();
        match key_problem(&key, false) {
            None => Ok(Self(key)),
            Some(reason) => Err(BlobError::InvalidKey { key, reason }),
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for BlobKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Checks a listing prefix: empty, or a key-like string that may end with `/`.
///
/// # Errors
///
/// [`BlobError::InvalidKey`] naming the rule the prefix breaks.
pub fn check_prefix(prefix: &str) -> Result<(), BlobError> {
    match key_problem(prefix, true) {
        None => Ok(()),
        Some(reason) => Err(BlobError::InvalidKey {
            key: prefix.to_owned(),
            reason,
        }),
    }
}

/// Why `key` is not a valid key (or prefix, when `prefix` is true), or `None` when it is.
fn key_problem(key: &str, prefix: bool) -> Option<&'static str> {
    if key.is_empty() {
        return if prefix {
            None
        } else {
            Some("a key must not be empty")
        };
    }
    if key.len() > MAX_KEY_BYTES {
        return Some("a key must be at most 1024 bytes of UTF-8");
    }
    if key.starts_with('/') {
        return Some("a key must be relative: remove the leading '/'");
    }
    if key.chars().any(char::is_control) {
        return Some("a key must not contain control characters (newline, NUL, ...)");
    }
    let body = if prefix {
        key.strip_suffix('/').unwrap_or(key)
    } else {
        key
    };
    let mut segments = body.split('/');
    let first = segments.clone().next();
    if first == Some(RESERVED_SEGMENT) {
        return Some(
            "the first segment '.gma-tmp' is reserved for the local store's temporary files",
        );
    }
    if segments.any(|s| s.is_empty()) {
        return Some("a key must not have empty segments ('//' or a trailing '/')");
    }
    if body.split('/').any(|s| s == "." || s == "..") {
        return Some("a key must not have '.' or '..' segments");
    }
    None
}

/// What a store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// The object's key, relative to the store's root.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The generation of this version of the object.
    pub generation: Generation,
    /// The content type given when it was written (the local store derives it from the file
    /// name's extension, see [`fs`]).
    pub content_type: String,
    /// When this version was written.
    pub updated: DateTime<Utc>,
}

/// The result of [`BlobStore::create_if_absent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// This call created the object.
    Created(BlobMeta),
    /// The object existed already; nothing was written.
    AlreadyExists,
}

impl CreateOutcome {
    /// The outcome of a write made on the condition that the object is absent: a failed
    /// precondition means it exists.
    ///
    /// # Errors
    /// The write's other errors.
    pub(crate) fn of_write(written: Result<BlobMeta, BlobError>) -> Result<Self, BlobError> {
        match written {
            Ok(meta) => Ok(Self::Created(meta)),
            Err(BlobError::PreconditionFailed { .. }) => Ok(Self::AlreadyExists),
            Err(e) => Err(e),
        }
    }

    /// Whether this call created the object.
    pub fn created(&self) -> bool {
        matches!(self, Self::Created(_))
    }
}

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The key (or listing prefix) breaks a key rule; fix the caller.
    #[error("blob key {key:?} is invalid: {reason}")]
    InvalidKey {
        /// The rejected key.
        key: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The location string given to [`open_blob_store`] is not understood.
    #[error(
        "blob store location {location:?} is invalid: {reason}; use gs://bucket[/prefix], \
         an absolute directory, file:///dir or memory://"
    )]
    InvalidLocation {
        /// The rejected location.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No object under the key.
    #[error("blob {uri} does not exist")]
    NotFound {
        /// The object's URI.
        uri: String,
    },
    /// A conditional write or delete found another generation (or an object where none was
    /// expected): someone else wrote it first. Re-read it and decide again.
    #[error(
        "blob {uri} was changed by someone else (expected generation {expected}); \
         read it again before retrying"
    )]
    PreconditionFailed {
        /// The object's URI.
        uri: String,
        /// The generation the caller expected (0: expected no object).
        expected: Generation,
    },
    /// A local file operation failed.
    #[error("blob store I/O on {path} failed")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The upload's source stream failed; nothing was written under the key.
    #[error("the data for blob {uri} could not be read; nothing was written")]
    Source {
        /// The object's URI.
        uri: String,
        /// The source's error.
        #[source]
        source: std::io::Error,
    },
    /// The storage service answered with an error.
    #[error("{operation} {uri} failed with HTTP {status}: {message}. {hint}")]
    Remote {
        /// What was being done (`upload`, `list`, ...).
        operation: &'static str,
        /// The object's (or prefix's) URI.
        uri: String,
        /// The HTTP status.
        status: u16,
        /// The service's error message.
        message: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// The storage service could not be reached (after retries).
    #[error("{operation} {uri} failed: cannot reach the storage service")]
    Transport {
        /// What was being done.
        operation: &'static str,
        /// The object's (or prefix's) URI.
        uri: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// Credentials for the storage service could not be obtained.
    #[error(
        "cannot get Google Cloud credentials: {message}; set GOOGLE_APPLICATION_CREDENTIALS to a \
         service-account key file, run `gcloud auth application-default login`, or run on \
         Google Cloud with a service account"
    )]
    Credentials {
        /// The credential library's message.
        message: String,
    },
}

impl crate::error::Transient for BlobError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Remote { status, .. } => *status == 429 || *status == 408 || *status >= 500,
            Self::Transport { .. } => true,
            _ => false,
        }
    }
}

impl BlobError {
    /// Whether the error says the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// A blob store: local directory, memory or GCS. Use it as `Arc<dyn BlobStore>`.
///
/// Every method is required except [`BlobStore::get`], which collects
/// [`BlobStore::get_stream`] (override it when a store can read a whole object more cheaply).
/// Every implementation must pass the conformance suite in `tests.rs`. Writes are atomic: a reader sees the old object, the new object, or none, never a
/// part.
#[async_trait]
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// The URI of the object under `key`: `gs://bucket/prefix/key`, `file:///abs/path/key` or
    /// `memory://name/key`. What a table row stores to point at a blob.
    fn uri(&self, key: &BlobKey) -> String;

    /// Writes `data` under `key`, replacing any object there.
    async fn put(
        &self,
        key: &BlobKey,
        data: Bytes,
        content_type: &str,
    ) -> Result<BlobMeta, BlobError>;

    /// Streams `data` to `key`, replacing any object there. Memory use is bounded by the store's
    /// chunk size plus one source chunk, not by the object's size. The object appears under `key`
    /// only once the stream ended and every byte is stored; if the source fails or the process
    /// dies midway, no object (or the previous one) is visible under `key`.
    async fn put_stream(
        &self,
        key: &BlobKey,
        data: ByteStream,
        content_type: &str,
    ) -> Result<BlobMeta, BlobError>;

    /// Writes `data` under `key` only if no object is there. Atomic: of many racing creators,
    /// exactly one gets [`CreateOutcome::Created`].
    async fn create_if_absent(
        &self,
        key: &BlobKey,
        data: Bytes,
        content_type: &str,
    ) -> Result<CreateOutcome, BlobError>;

    /// Replaces the object under `key` only if its generation is still `generation`.
    ///
    /// # Errors
    ///
    /// [`BlobError::PreconditionFailed`] when the object has another generation or is gone.
    async fn replace_if_generation(
        &self,
        key: &BlobKey,
        data: Bytes,
        content_type: &str,
        generation: Generation,
    ) -> Result<BlobMeta, BlobError>;

    /// Reads the whole object.
    async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        let mut stream = self.get_stream(key).await?;
        let mut out = bytes::BytesMut::new();
        while let Some(chunk) = stream.try_next().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }

    /// Reads the object as a stream of chunks.
    ///
    /// # Errors
    ///
    /// [`BlobError::NotFound`] (from this call, not from the stream) when there is no object.
    async fn get_stream(&self, key: &BlobKey) -> Result<BlobReadStream, BlobError>;

    /// The object's metadata.
    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError>;

    /// Every object whose key starts with `prefix` (plain string prefix; `""` lists all), sorted
    /// by key. Pages through the service internally.
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError>;

    /// Deletes the object under `key`. Returns whether there was one.
    async fn delete(&self, key: &BlobKey) -> Result<bool, BlobError>;

    /// Deletes the object under `key` only if its generation is still `generation`.
    ///
    /// # Errors
    ///
    /// [`BlobError::PreconditionFailed`] when the object has another generation, or
    /// [`BlobError::NotFound`] when it is gone.
    async fn delete_if_generation(
        &self,
        key: &BlobKey,
        generation: Generation,
    ) -> Result<(), BlobError>;
}

/// Opens `gs://{rest}` (bucket, then an optional prefix).
#[cfg(feature = "gcs")]
fn open_gcs(
    rest: &str,
    _invalid: impl Fn(&str) -> BlobError,
) -> Result<Arc<dyn BlobStore>, BlobError> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let config = gcs::GcsConfig::from_env(bucket, prefix)?;
    Ok(Arc::new(gcs::GcsBlobStore::new(config)?))
}

/// Refuses `gs://` locations in a build without Google Cloud Storage.
#[cfg(not(feature = "gcs"))]
fn open_gcs(
    _rest: &str,
    invalid: impl Fn(&str) -> BlobError,
) -> Result<Arc<dyn BlobStore>, BlobError> {
    Err(invalid(
        "this gma was built without Google Cloud Storage (cargo feature `gcs`); rebuild with it, or use a local directory",
    ))
}

/// Opens the blob store a location string names (see the table in the module docs).
///
/// For `gs://` locations the endpoint and credentials come from `gcs::GcsConfig::from_env`:
/// `STORAGE_EMULATOR_HOST` selects an emulator with anonymous access, otherwise Google's
/// application default credentials are used.
///
/// # Errors
///
/// [`BlobError::InvalidLocation`] for a location that names no store,
/// [`BlobError::Io`] when a local directory cannot be created, [`BlobError::Credentials`] when
/// GCS credentials cannot be found.
pub fn open_blob_store(location: &str) -> Result<Arc<dyn BlobStore>, BlobError> {
    let invalid = |reason: &str| BlobError::InvalidLocation {
        location: location.to_owned(),
        reason: reason.to_owned(),
    };
    if let Some(rest) = location.strip_prefix("gs://") {
        return open_gcs(rest, invalid);
    }
    if let Some(name) = location.strip_prefix("memory://") {
        return Ok(Arc::new(memory::MemoryBlobStore::named(name)));
    }
    let path = if location.starts_with("file://") {
        let url = url::Url::parse(location).map_err(|e| invalid(&e.to_string()))?;
        url.to_file_path()
            .map_err(|()| invalid("a file:// URL must name an absolute local path"))?
    } else if location.contains("://") {
        return Err(invalid("unknown scheme"));
    } else if location.is_empty() {
        return Err(invalid("the location is empty"));
    } else {
        PathBuf::from(location)
    };
    Ok(Arc::new(fs::LocalBlobStore::open(path)?))
}

/// Turns an [`AsyncRead`] into a [`ByteStream`] of chunks of at most `chunk_bytes`.
pub fn stream_from_reader<R>(reader: R, chunk_bytes: usize) -> ByteStream
where
    R: AsyncRead + Send + Unpin + 'static,
{
    let chunk_bytes = chunk_bytes.max(1);
    futures::stream::try_unfold(reader, move |mut reader| async move {
        let mut buf = bytes::BytesMut::with_capacity(chunk_bytes);
        while buf.len() < chunk_bytes {
            if reader.read_buf(&mut buf).await? == 0 {
                break;
            }
        }
        if buf.is_empty() {
            Ok(None)
        } else {
            Ok(Some((buf.freeze(), reader)))
        }
    })
    .boxed()
}

/// Guesses a content type from a key's extension (the local store keeps no metadata files).
pub fn content_type_for_key(key: &str) -> &'static str {
    let ext = Path::new(key)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("zip") => "application/zip",
        Some("json") => "application/json",
        Some("ndjson" | "jsonl") => "application/x-ndjson",
        Some("gz") => "application/gzip",
        Some("txt" | "log") => "text/plain",
        Some("parquet") => "application/vnd.apache.parquet",
        _ => DEFAULT_CONTENT_TYPE,
    }
}

/// What a write requires of the object already under its key (the local and memory stores; GCS
/// checks it server-side).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Condition {
    /// Nothing: overwrite or create.
    None,
    /// No object may exist.
    Absent,
    /// The object must have this generation.
    Generation(Generation),
}

impl Condition {
    /// Whether a write may replace an object of generation `current` (`None`: no object); the
    /// error names the object by `uri`.
    pub(crate) fn check(
        self,
        current: Option<Generation>,
        uri: impl FnOnce() -> String,
    ) -> Result<(), BlobError> {
        let expected = match (self, current) {
            (Condition::Absent, Some(_)) => 0,
            (Condition::Generation(expected), current) if current != Some(expected) => expected,
            _ => return Ok(()),
        };
        Err(BlobError::PreconditionFailed {
            uri: uri(),
            expected,
        })
    }
}
