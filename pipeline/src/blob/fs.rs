//! [`LocalBlobStore`]: blobs as plain files under a directory.
//!
//! The object under key `a/b/c.zip` is the file `ROOT/a/b/c.zip`, so other tools (DataFusion,
//! `unzip`, a shell) read blobs directly, and [`BlobStore::uri`] gives its `file://` URL.
//!
//! # How writes stay atomic and durable
//!
//! Every write goes to a temporary file under `ROOT/.gma-tmp/`, is fsynced, then moved into place
//! with `rename` (or `link` for create-if-absent, which fails atomically when the key exists),
//! and the key's directory is fsynced. A crash leaves at most a temporary file, never a partial
//! object under a key; temporary files older than a day are removed when the store is opened.
//!
//! Moves into place happen while holding an exclusive `flock` on `ROOT/.gma-tmp/lock`, so the
//! check of a generation and the move that depends on it are one step for every process that
//! uses this store on the same directory. The lock is held only for a rename and an fsync.
//!
//! # Generations
//!
//! An object's generation is its file's modification time in nanoseconds since the epoch. Under
//! the lock, each write sets the new file's modification time to the current time, or to one
//! more than the replaced object's generation if that is not earlier, so generations strictly
//! increase per key. A file changed behind the store's back gets a new modification time and
//! therefore a new generation, which makes conditional operations fail, as they should.
//!
//! # Limits
//!
//! - The content type is not stored: [`BlobMeta::content_type`] is derived from the key's
//!   extension ([`super::content_type_for_key`]).
//! - A key cannot be both an object and a directory (`a` and `a/b`); GCS allows that.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    BlobError, BlobKey, BlobMeta, BlobReadStream, BlobStore, ByteStream, Condition, CreateOutcome,
    Generation, RESERVED_SEGMENT, check_prefix, content_type_for_key,
};

/// Temporary files older than this are leftovers of a crash and are removed on open.
const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 3600);

/// Chunk size of streamed reads.
const READ_CHUNK_BYTES: usize = 256 * 1024;

/// Blobs as files under a directory. See the module docs for the guarantees.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
    tmp: PathBuf,
}

/// Numbers temporary files, together with the process id and the time.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_owned(),
        source,
    }
}

fn generation_of(meta: &std::fs::Metadata) -> Generation {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn now_nanos() -> Generation {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// fsyncs a directory so a rename, link or unlink in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(_) => Err(BlobError::Io {
            path: PathBuf::new(),
            source: std::io::Error::other("the runtime shut down during a blob store operation"),
        }),
    }
}

/// An exclusive `flock` on the store's lock file, released on drop (when the file closes).
struct DirLock {
    _file: File,
}

impl DirLock {
    fn acquire(path: &Path) -> Result<Self, BlobError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err(path))?;
        loop {
            // SAFETY: flock on a file descriptor we own and keep open for the call.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(Self { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(io_err(path)(err));
            }
        }
    }
}

impl LocalBlobStore {
    /// Opens (creating if needed) the store at `root`, and removes day-old temporary files.
    ///
    /// # Errors
    ///
    /// [`BlobError::Io`] when the directory cannot be created or read.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, BlobError> {
        let root = std::path::absolute(root.as_ref()).map_err(io_err(root.as_ref()))?;
        let tmp = root.join(RESERVED_SEGMENT);
        std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        let store = Self { root, tmp };
        store.remove_stale_temps();
        Ok(store)
    }

    /// The directory the store keeps its objects in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of temporary files (uploads in progress).
    pub fn temp_dir(&self) -> &Path {
        &self.tmp
    }

    /// The file of the object under `key`.
    pub fn path(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    fn remove_stale_temps(&self) {
        let Ok(entries) = std::fs::read_dir(&self.tmp) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "part") {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_TEMP_AGE);
            if old {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    fn temp_path(&self) -> PathBuf {
        let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
        self.tmp
            .join(format!("{}-{}-{}.part", std::process::id(), now_nanos(), n))
    }

    fn meta(&self, key: &BlobKey, path: &Path) -> Result<BlobMeta, BlobError> {
        let meta = std::fs::metadata(path).map_err(|e| self.not_found_or_io(key, path, e))?;
        if !meta.is_file() {
            return Err(BlobError::NotFound { uri: self.uri(key) });
        }
        Ok(BlobMeta {
            key: key.as_str().to_owned(),
            size: meta.len(),
            generation: generation_of(&meta),
            content_type: content_type_for_key(key.as_str()).to_owned(),
            updated: meta
                .modified()
                .map(DateTime::<Utc>::from)
                .unwrap_or_default(),
        })
    }

    fn not_found_or_io(&self, key: &BlobKey, path: &Path, e: std::io::Error) -> BlobError {
        // `a/b` where `a` is a file: no object either.
        if matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
        ) {
            BlobError::NotFound { uri: self.uri(key) }
        } else {
            io_err(path)(e)
        }
    }

    /// Creates the key's parent directories, fsyncing the directory above each one created.
    fn ensure_parent(&self, path: &Path) -> Result<(), BlobError> {
        let Some(parent) = path.parent() else {
            return Ok(());
        };
        let mut missing = Vec::new();
        let mut dir = parent;
        while dir != self.root && !dir.is_dir() {
            missing.push(dir);
            match dir.parent() {
                Some(up) => dir = up,
                None => break,
            }
        }
        for dir in missing.into_iter().rev() {
            match std::fs::create_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(dir)(e)),
            }
            if let Some(up) = dir.parent() {
                sync_dir(up)?;
            }
        }
        Ok(())
    }

    /// Moves the fsynced temporary file into place under `key` if `condition` holds. Takes the
    /// store lock; removes the temporary file whatever happens.
    fn commit(
        &self,
        temp: &Path,
        key: &BlobKey,
        condition: Condition,
    ) -> Result<BlobMeta, BlobError> {
        let result = self.commit_locked(temp, key, condition);
        if result.is_err() || matches!(condition, Condition::Absent) {
            let _ = std::fs::remove_file(temp);
        }
        result
    }

    fn commit_locked(
        &self,
        temp: &Path,
        key: &BlobKey,
        condition: Condition,
    ) -> Result<BlobMeta, BlobError> {
        let final_path = self.path(key);
        let _lock = DirLock::acquire(&self.tmp.join("lock"))?;
        let current = match std::fs::metadata(&final_path) {
            Ok(m) => Some(generation_of(&m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&final_path)(e)),
        };
        condition.check(current, || self.uri(key))?;
        // The temporary file's modification time is when it was written; it must be later than
        // the generation it replaces (a clock step back, or a coarse file system, could break that).
        if let Some(current) = current {
            let temp_gen = std::fs::metadata(temp)
                .map(|m| generation_of(&m))
                .map_err(io_err(temp))?;
            if temp_gen <= current {
                bump_mtime(temp, current)?;
            }
        }
        self.ensure_parent(&final_path)?;
        match condition {
            // link() fails if the name exists, even against writers that ignore our lock.
            Condition::Absent => match std::fs::hard_link(temp, &final_path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(BlobError::PreconditionFailed {
                        uri: self.uri(key),
                        expected: 0,
                    });
                }
                Err(e) => return Err(io_err(&final_path)(e)),
            },
            _ => std::fs::rename(temp, &final_path).map_err(io_err(&final_path))?,
        }
        if let Some(parent) = final_path.parent() {
            sync_dir(parent)?;
        }
        self.meta(key, &final_path)
    }

    /// Writes `data` to a new fsynced temporary file.
    fn write_temp(&self, data: &[u8]) -> Result<PathBuf, BlobError> {
        let temp = self.temp_path();
        let written = File::create_new(&temp)
            .and_then(|mut f| {
                f.write_all(data)?;
                f.sync_all()
            })
            .map_err(io_err(&temp));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written.map(|()| temp)
    }

    async fn put_bytes(
        &self,
        key: &BlobKey,
        data: Bytes,
        condition: Condition,
    ) -> Result<BlobMeta, BlobError> {
        let store = self.clone();
        let key = key.clone();
        blocking(move || {
            let temp = store.write_temp(&data)?;
            store.commit(&temp, &key, condition)
        })
        .await
    }

    /// Removes now-empty directories between `path`'s parent and the root.
    fn prune_empty_dirs(&self, path: &Path) {
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.root || !d.starts_with(&self.root) {
                break;
            }
            if std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }

    fn delete_locked(
        &self,
        key: &BlobKey,
        expected: Option<Generation>,
    ) -> Result<bool, BlobError> {
        let path = self.path(key);
        let _lock = DirLock::acquire(&self.tmp.join("lock"))?;
        let current = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => generation_of(&m),
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err(&path)(e)),
        };
        if let Some(expected) = expected
            && expected != current
        {
            return Err(BlobError::PreconditionFailed {
                uri: self.uri(key),
                expected,
            });
        }
        std::fs::remove_file(&path).map_err(io_err(&path))?;
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
        self.prune_empty_dirs(&path);
        Ok(true)
    }

    fn list_blocking(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        // Start at the deepest directory the prefix names in full.
        let start_rel = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let start = if start_rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(start_rel)
        };
        let mut out = Vec::new();
        let mut dirs = vec![start];
        while let Some(dir) = dirs.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => continue,
                Err(e) => return Err(io_err(&dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err(&dir))?;
                let path = entry.path();
                if path == self.tmp {
                    continue;
                }
                let file_type = entry.file_type().map_err(io_err(&path))?;
                let Some(rel) = path
                    .strip_prefix(&self.root)
                    .ok()
                    .and_then(|r| r.to_str())
                    .map(str::to_owned)
                else {
                    continue; // not UTF-8: cannot be a key this store wrote
                };
                if file_type.is_dir() {
                    let as_prefix = format!("{rel}/");
                    if as_prefix.starts_with(prefix) || prefix.starts_with(&as_prefix) {
                        dirs.push(path);
                    }
                } else if file_type.is_file() && rel.starts_with(prefix) {
                    let Ok(key) = BlobKey::new(rel) else { continue };
                    match self.meta(&key, &path) {
                        Ok(meta) => out.push(meta),
                        Err(BlobError::NotFound { .. }) => {} // deleted while listing
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// Removes a temporary file on drop unless disarmed.
struct TempGuard(Option<PathBuf>);

impl TempGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Sets `path`'s modification time later than `after` (nanoseconds), and fsyncs it.
fn bump_mtime(path: &Path, after: Generation) -> Result<(), BlobError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    let mut target = after.saturating_add(1);
    for _ in 0..2 {
        file.set_modified(UNIX_EPOCH + Duration::from_nanos(target))
            .map_err(io_err(path))?;
        let now = file
            .metadata()
            .map(|m| generation_of(&m))
            .map_err(io_err(path))?;
        if now > after {
            break;
        }
        // The file system rounds times (e.g. to seconds): step by a whole second.
        target = after.saturating_add(1_000_000_000);
    }
    file.sync_all().map_err(io_err(path))
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    fn uri(&self, key: &BlobKey) -> String {
        let path = self.path(key);
        url::Url::from_file_path(&path)
            .map(String::from)
            .unwrap_or_else(|()| format!("file://{}", path.display()))
    }

    async fn put(
        &self,
        key: &BlobKey,
        data: Bytes,
        _content_type: &str,
    ) -> Result<BlobMeta, BlobError> {
        self.put_bytes(key, data, Condition::None).await
    }

    async fn put_stream(
        &self,
        key: &BlobKey,
        mut data: ByteStream,
        _content_type: &str,
    ) -> Result<BlobMeta, BlobError> {
        let temp = self.temp_path();
        let mut file = tokio::fs::File::create_new(&temp)
            .await
            .map_err(io_err(&temp))?;
        // Removes the temporary file if this future is dropped midway (a cancelled upload).
        let guard = TempGuard(Some(temp.clone()));
        let written: Result<(), BlobError> = async {
            while let Some(chunk) = data.next().await {
                let chunk = chunk.map_err(|source| BlobError::Source {
                    uri: self.uri(key),
                    source,
                })?;
                file.write_all(&chunk).await.map_err(io_err(&temp))?;
            }
            file.flush().await.map_err(io_err(&temp))?;
            file.sync_all().await.map_err(io_err(&temp))
        }
        .await;
        drop(file);
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e);
        }
        // From here `commit` removes the file whatever happens, and runs to its end on a
        // blocking thread even if this future is dropped.
        guard.disarm();
        let store = self.clone();
        let key = key.clone();
        blocking(move || store.commit(&temp, &key, Condition::None)).await
    }

    async fn create_if_absent(
        &self,
        key: &BlobKey,
        data: Bytes,
        _content_type: &str,
    ) -> Result<CreateOutcome, BlobError> {
        CreateOutcome::of_write(self.put_bytes(key, data, Condition::Absent).await)
    }

    async fn replace_if_generation(
        &self,
        key: &BlobKey,
        data: Bytes,
        _content_type: &str,
        generation: Generation,
    ) -> Result<BlobMeta, BlobError> {
        self.put_bytes(key, data, Condition::Generation(generation))
            .await
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        let path = self.path(key);
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Bytes::from(data)),
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => {
                Err(BlobError::NotFound { uri: self.uri(key) })
            }
            Err(e) => Err(self.not_found_or_io(key, &path, e)),
        }
    }

    async fn get_stream(&self, key: &BlobKey) -> Result<BlobReadStream, BlobError> {
        let path = self.path(key);
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|e| self.not_found_or_io(key, &path, e))?;
        if !meta.is_file() {
            return Err(BlobError::NotFound { uri: self.uri(key) });
        }
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| self.not_found_or_io(key, &path, e))?;
        let stream = futures::stream::try_unfold((file, path), |(mut file, path)| async move {
            let mut buf = bytes::BytesMut::with_capacity(READ_CHUNK_BYTES);
            let n = file.read_buf(&mut buf).await.map_err(io_err(&path))?;
            if n == 0 {
                Ok(None)
            } else {
                Ok(Some((buf.freeze(), (file, path))))
            }
        });
        Ok(stream.boxed())
    }

    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        let store = self.clone();
        let key = key.clone();
        blocking(move || store.meta(&key, &store.path(&key))).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        check_prefix(prefix)?;
        let store = self.clone();
        let prefix = prefix.to_owned();
        blocking(move || store.list_blocking(&prefix)).await
    }

    async fn delete(&self, key: &BlobKey) -> Result<bool, BlobError> {
        let store = self.clone();
        let key = key.clone();
        blocking(move || store.delete_locked(&key, None)).await
    }

    async fn delete_if_generation(
        &self,
        key: &BlobKey,
        generation: Generation,
    ) -> Result<(), BlobError> {
        let store = self.clone();
        let owned = key.clone();
        match blocking(move || store.delete_locked(&owned, Some(generation))).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(BlobError::NotFound { uri: self.uri(key) }),
            Err(e) => Err(e),
        }
    }
}
