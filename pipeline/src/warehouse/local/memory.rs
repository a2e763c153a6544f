//! Bounded memory for local queries: one DataFusion memory pool per [`LocalWarehouse`], spilling
//! to the data directory.
//!
//! Every session a [`LocalWarehouse`] plans a query in runs on the same [`RuntimeEnv`], so the
//! limit holds for all the queries of the process together, not for each one. The pool is
//! DataFusion's [`FairSpillPool`]: operators that can spill (sorts, grouped aggregates,
//! sort-merge joins, repartitions) share what the ones that cannot (hash join build sides) leave,
//! and write sorted runs to disk when their share is full. An operator that cannot spill and
//! finds the pool full fails the query with [`WarehouseError::MemoryLimit`], naming the limit
//! and `--memory-limit`. The pool is wrapped in a [`TrackConsumersPool`] so that error lists the
//! largest consumers.
//!
//! Spill files go to a folder of their own under `<data-dir>/tmp/spill`
//! ([`Layout::spill_dir`]): the data directory is sized for data, the system's `/tmp` often is
//! not (or is memory). DataFusion deletes its spill files when a query ends and the folder when
//! the warehouse is dropped; a process killed meanwhile leaves its folder behind, so opening a
//! warehouse removes the folders no live process holds (each holds a lock file in its own).
//!
//! [`LocalWarehouse`]: super::LocalWarehouse

use std::fs::File;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManager, DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::SessionConfig;
use gma_store::layout::Layout;

use crate::warehouse::WarehouseError;

/// The share of the machine's memory a warehouse's queries may use by default: DataFusion
/// accounts for the large buffers (sort runs, hash tables, join inputs), not for every
/// allocation, so the rest is headroom for what it does not count and for the rest of gma.
const MACHINE_SHARE: f64 = 0.5;

/// The default limit when the machine's memory cannot be read (not Linux, or no `/proc`).
pub const FALLBACK_MEMORY_LIMIT_BYTES: usize = 2 << 30;

/// The smallest default limit, for very small containers.
const MIN_DEFAULT_BYTES: usize = 64 << 20;

/// How many of the largest memory consumers an out-of-memory error names.
const TOP_CONSUMERS: NonZeroUsize = NonZeroUsize::new(5).expect("5 is not zero");

/// DataFusion's default for `datafusion.execution.sort_spill_reservation_bytes`: what each sort
/// sets aside for merging its spilled runs.
const SORT_SPILL_RESERVATION_BYTES: usize = 10 << 20;

/// The lock file in a process's spill folder, held while the folder is in use.
const LOCK_FILE: &str = ".lock";

/// The prefix DataFusion gives the spill folder it makes in the directory it is given.
const FOLDER_PREFIX: &str = "datafusion-";

/// The memory limit a [`LocalWarehouse`](super::LocalWarehouse) gets unless told otherwise:
/// half of the machine's memory, which is the smaller of `/proc/meminfo`'s `MemTotal` and the
/// memory limit of the process's cgroup (v2 `memory.max`, v1 `memory.limit_in_bytes`), so a
/// container gets half of what it may use. [`FALLBACK_MEMORY_LIMIT_BYTES`] when neither can
/// be read.
pub fn default_memory_limit() -> usize {
    default_limit_of(machine_memory(|path| std::fs::read_to_string(path).ok()))
}

/// The default limit for a machine of `memory` bytes (`None`: unknown).
fn default_limit_of(memory: Option<u64>) -> usize {
    match memory {
        Some(bytes) => {
            let share = (bytes as f64 * MACHINE_SHARE) as u64;
            usize::try_from(share)
                .unwrap_or(usize::MAX)
                .max(MIN_DEFAULT_BYTES)
        }
        None => FALLBACK_MEMORY_LIMIT_BYTES,
    }
}

/// The memory this process may use: the smallest of the machine's total and the limits of its
/// cgroups, read through `read` (a file's text, `None` when it cannot be read).
fn machine_memory(read: impl Fn(&str) -> Option<String>) -> Option<u64> {
    let total = read("/proc/meminfo").and_then(|text| mem_total(&text));
    let mut files = vec![
        "/sys/fs/cgroup/memory.max".to_owned(),
        "/sys/fs/cgroup/memory/memory.limit_in_bytes".to_owned(),
    ];
    for line in read("/proc/self/cgroup").unwrap_or_default().lines() {
        // `0::/path` (v2) or `4:memory:/path` (v1).
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next(), fields.next(), fields.next());
        match (controllers, path) {
            (Some(""), Some(path)) => files.push(format!("/sys/fs/cgroup{path}/memory.max")),
            (Some(controllers), Some(path)) if controllers.split(',').any(|c| c == "memory") => {
                files.push(format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"));
            }
            _ => {}
        }
    }
    files
        .iter()
        .filter_map(|file| read(file).and_then(|text| cgroup_limit(&text)))
        .chain(total)
        .min()
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// A cgroup memory limit file's value in bytes; `None` for no limit (`max`, or v1's huge
/// number).
fn cgroup_limit(text: &str) -> Option<u64> {
    let bytes: u64 = text.trim().parse().ok()?;
    (bytes < 1 << 60).then_some(bytes)
}

/// `bytes` in MiB for messages: `8 MiB`, `1.5 MiB`.
pub(crate) fn mib(bytes: usize) -> String {
    let mib = bytes as f64 / f64::from(1 << 20);
    if mib.fract() == 0.0 {
        format!("{mib:.0} MiB")
    } else {
        format!("{mib:.1} MiB")
    }
}

/// The memory pool and spill folder every query of one warehouse runs with.
pub(crate) struct QueryMemory {
    /// Shared by every session, so the pool bounds all the warehouse's queries together.
    runtime: Arc<RuntimeEnv>,
    /// The pool's size in bytes.
    limit: usize,
    /// The lock of the spill folder, held as long as the folder may be written: by the
    /// warehouse and by every result stream it returned (see [`QueryMemory::spill_guard`]).
    spill_lock: Option<Arc<File>>,
}

impl QueryMemory {
    /// A pool of `limit` bytes spilling to a folder of its own in `layout`'s spill directory
    /// (after removing the folders of dead processes there). When that folder cannot be made
    /// (a read-only data directory), spills go to the system's temporary directory instead.
    ///
    /// # Errors
    /// [`WarehouseError::Query`] if DataFusion cannot build its runtime.
    pub(crate) fn new(layout: &Layout, limit: usize) -> Result<Self, WarehouseError> {
        let spill_dir = layout.spill_dir();
        remove_abandoned(&spill_dir);
        let (disk, spill_lock) = match spill_folder(&spill_dir) {
            Ok((disk, lock)) => (disk, Some(Arc::new(lock))),
            Err(error) => {
                tracing::warn!(
                    dir = %spill_dir.display(),
                    error = %error,
                    "Cannot spill into the data directory; queries spill to the system's temporary directory."
                );
                (DiskManagerBuilder::default().build()?, None)
            }
        };
        let mut builder = RuntimeEnvBuilder::new().with_memory_pool(pool(limit));
        builder.disk_manager = Some(Arc::new(disk));
        Ok(Self {
            runtime: builder.build_arc()?,
            limit,
            spill_lock,
        })
    }

    /// The same spill folder with a pool of `limit` bytes.
    ///
    /// # Errors
    /// [`WarehouseError::Query`] if DataFusion cannot build its runtime.
    pub(crate) fn with_limit(&self, limit: usize) -> Result<Self, WarehouseError> {
        let runtime = RuntimeEnvBuilder::from_runtime_env(&self.runtime)
            .with_memory_pool(pool(limit))
            .build_arc()?;
        Ok(Self {
            runtime,
            limit,
            spill_lock: self.spill_lock.clone(),
        })
    }

    /// The pool's size in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// The runtime every session of the warehouse shares.
    pub(crate) fn runtime(&self) -> Arc<RuntimeEnv> {
        Arc::clone(&self.runtime)
    }

    /// What a result stream explains its errors with. It holds the spill folder's lock, so the
    /// folder stays locked while the stream runs, even after the warehouse is dropped.
    pub(crate) fn explainer(&self) -> Explainer {
        Explainer {
            limit: self.limit,
            _spill_lock: self.spill_lock.clone(),
        }
    }

    /// `config` with the settings a bounded pool needs: a sort sets aside at most an eighth of
    /// the pool for merging its spilled runs (DataFusion's 10 MiB would not fit a small pool;
    /// a large one keeps the default).
    pub(crate) fn configure(&self, mut config: SessionConfig) -> SessionConfig {
        config.options_mut().execution.sort_spill_reservation_bytes =
            SORT_SPILL_RESERVATION_BYTES.min(self.limit / 8);
        config
    }

    /// `error`, or [`WarehouseError::MemoryLimit`] when it is DataFusion running out of the
    /// pool.
    pub(crate) fn explain(&self, error: WarehouseError) -> WarehouseError {
        explain(self.limit, error)
    }
}

/// Turns the errors of one result stream into [`WarehouseError::MemoryLimit`] where they are
/// DataFusion running out of the pool, keeping the spill folder locked meanwhile.
pub(crate) struct Explainer {
    limit: usize,
    _spill_lock: Option<Arc<File>>,
}

impl Explainer {
    /// As [`QueryMemory::explain`].
    pub(crate) fn explain(&self, error: WarehouseError) -> WarehouseError {
        explain(self.limit, error)
    }
}

/// `error`, or [`WarehouseError::MemoryLimit`] with `limit` when it is DataFusion running out
/// of the pool.
fn explain(limit: usize, error: WarehouseError) -> WarehouseError {
    match error {
        WarehouseError::Query(source)
            if matches!(source.find_root(), DataFusionError::ResourcesExhausted(_)) =>
        {
            WarehouseError::MemoryLimit {
                limit_bytes: limit,
                source,
            }
        }
        other => other,
    }
}

/// A fair spill pool of `limit` bytes that names its largest consumers when full.
fn pool(limit: usize) -> Arc<dyn MemoryPool> {
    Arc::new(TrackConsumersPool::new(
        FairSpillPool::new(limit),
        TOP_CONSUMERS,
    ))
}

/// DataFusion's disk manager over a new folder in `spill_dir`, and the lock of that folder.
///
/// The lock file is made and locked under a temporary name, then renamed into place, so another
/// process never finds it unlocked while this one lives.
fn spill_folder(spill_dir: &Path) -> Result<(DiskManager, File), WarehouseError> {
    let io = |what: &str, path: &Path, error: std::io::Error| {
        WarehouseError::Store(gma_store::StoreError::io(
            format!("{what} {}", path.display()),
            error,
        ))
    };
    std::fs::create_dir_all(spill_dir).map_err(|e| io("creating", spill_dir, e))?;
    let disk = DiskManagerBuilder::default()
        .with_mode(DiskManagerMode::Directories(vec![spill_dir.to_path_buf()]))
        .build()?;
    let Some(folder) = disk.temp_dir_paths().into_iter().next() else {
        return Err(WarehouseError::Unsupported(
            "DataFusion made no spill folder".into(),
        ));
    };
    let staging = folder.join(format!("{LOCK_FILE}.new"));
    let lock = File::create(&staging).map_err(|e| io("creating", &staging, e))?;
    lock.try_lock().map_err(|e| {
        io(
            "locking",
            &staging,
            std::io::Error::new(std::io::ErrorKind::WouldBlock, e.to_string()),
        )
    })?;
    let path = folder.join(LOCK_FILE);
    std::fs::rename(&staging, &path).map_err(|e| io("renaming", &staging, e))?;
    Ok((disk, lock))
}

/// Removes the spill folders in `spill_dir` whose lock no process holds: those of processes
/// that were killed mid-query. A folder without a lock file is one being made right now, and is
/// left alone. Failures are logged: they cost disk space, not correctness.
fn remove_abandoned(spill_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(spill_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let folder: PathBuf = entry.path();
        let is_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(FOLDER_PREFIX));
        if !is_ours || !folder.is_dir() {
            continue;
        }
        let Ok(lock) = File::open(folder.join(LOCK_FILE)) else {
            continue;
        };
        if lock.try_lock().is_err() {
            continue;
        }
        match std::fs::remove_dir_all(&folder) {
            Ok(()) => tracing::info!(
                dir = %folder.display(),
                "Removed the spill files of a query that did not finish."
            ),
            Err(error) => tracing::warn!(
                dir = %folder.display(),
                error = %error,
                "Cannot remove the spill files of a query that did not finish."
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_memory_is_the_smallest_of_ram_and_cgroup_limits() {
        let files = |cgroup: &'static str, v2: &'static str, v1: &'static str| {
            move |path: &str| match path {
                "/proc/meminfo" => Some("MemTotal:       24683784 kB\nMemFree: 1 kB\n".to_owned()),
                "/proc/self/cgroup" => Some(cgroup.to_owned()),
                "/sys/fs/cgroup/app/memory.max" => Some(v2.to_owned()),
                "/sys/fs/cgroup/memory/app/memory.limit_in_bytes" => Some(v1.to_owned()),
                _ => None,
            }
        };
        let ram = 24_683_784 * 1024;
        assert_eq!(machine_memory(files("0::/app\n", "max\n", "")), Some(ram));
        assert_eq!(
            machine_memory(files("0::/app\n", "1073741824\n", "")),
            Some(1 << 30)
        );
        assert_eq!(
            machine_memory(files("4:memory:/app\n0::/\n", "", "9223372036854771712\n")),
            Some(ram)
        );
        assert_eq!(
            machine_memory(files("4:cpu,memory:/app\n", "", "536870912\n")),
            Some(512 << 20)
        );
        assert_eq!(machine_memory(|_| None), None);
    }

    #[test]
    fn the_default_is_half_the_machine_with_a_floor_and_a_fallback() {
        assert_eq!(default_limit_of(Some(24 << 30)), 12 << 30);
        assert_eq!(default_limit_of(Some(64 << 20)), MIN_DEFAULT_BYTES);
        assert_eq!(default_limit_of(None), FALLBACK_MEMORY_LIMIT_BYTES);
        assert!(default_memory_limit() >= MIN_DEFAULT_BYTES);
    }

    #[test]
    fn mib_reads_well() {
        assert_eq!(mib(8 << 20), "8 MiB");
        assert_eq!(mib(3 << 19), "1.5 MiB");
    }
}
