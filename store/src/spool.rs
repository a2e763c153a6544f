//! Spool files: where a large request body goes while it streams in, so that memory stays flat
//! however many large deliveries arrive at once.
//!
//! A spool file lives in the store's payload folder. Once the body is verified, the file is
//! synced and the log record points at it; if the delivery is refused, or turns out to be a
//! duplicate, the file is removed when its guard drops. Files no log record points at (a crash
//! mid-request) are removed when the store opens.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::AsyncWriteExt;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A spool file being written.
#[derive(Debug)]
pub struct Spool {
    file: tokio::fs::File,
    guard: SpoolGuard,
}

/// Removes its spool file when dropped, unless [`kept`](SpoolGuard::keep).
#[derive(Debug)]
pub struct SpoolGuard {
    path: Option<PathBuf>,
}

impl SpoolGuard {
    /// The spool file's path.
    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Leaves the file in place: the store has landed a record that points at it.
    pub fn keep(mut self) {
        self.path = None;
    }
}

impl Drop for SpoolGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Spool {
    /// Creates a new spool file in `dir`.
    pub async fn create(dir: &Path) -> std::io::Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("spool-{nanos}-{}-{n}.json", std::process::id()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(Self {
            file,
            guard: SpoolGuard { path: Some(path) },
        })
    }

    /// Appends bytes.
    ///
    /// # Errors
    /// The I/O error of the write (a full disk, say).
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes).await
    }

    /// Syncs the file to disk and returns the guard that owns it.
    ///
    /// # Errors
    /// The I/O error of the flush or the sync.
    pub async fn finish(mut self) -> std::io::Result<SpoolGuard> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        Ok(self.guard)
    }

    /// The spool file's path.
    pub fn path(&self) -> &Path {
        self.guard.path()
    }
}
