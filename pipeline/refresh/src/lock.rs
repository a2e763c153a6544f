//! The local refresh lock: one refresh at a time writes a data directory's typed tables, whether
//! it is `gma serve`'s background refresh, `gma views refresh` or the one `gma query` runs
//! before it answers. A file lock, so a process killed mid-refresh releases it with its life.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Holds the refresh lock of a data directory until dropped.
#[derive(Debug)]
pub struct RefreshLock {
    _file: File,
}

impl RefreshLock {
    /// The lock file of the data directory `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("REFRESH.LOCK")
    }

    /// Waits for the lock of the data directory `dir` and takes it (off the async runtime's
    /// threads: it may wait for a refresh in another process to finish).
    ///
    /// # Errors
    /// The I/O error of creating or locking the lock file, with its path.
    pub async fn acquire(dir: &Path) -> io::Result<Self> {
        let path = Self::path(dir);
        tokio::task::spawn_blocking(move || {
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| with_path(&path, e))?;
            file.lock().map_err(|e| with_path(&path, e))?;
            Ok(Self { _file: file })
        })
        .await
        .map_err(io::Error::other)?
    }
}

fn with_path(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("locking {} for the refresh: {error}", path.display()),
    )
}
