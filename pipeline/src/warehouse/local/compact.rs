//! Compaction of the data directory's Parquet tables other than `events`: the many small files
//! appends leave in a folder (a day partition, or a flat table) merged into one, sorted by the
//! table's clustering columns so a scan for one organization or repository skips the row
//! groups and pages of the others (their statistics and page index say what they hold).
//!
//! Readers never see a row twice or miss one, whenever they list the folder:
//!
//! 1. the merged file is written under a hidden temporary name and fsynced;
//! 2. `<name>.covers`, listing the files it replaces, is written and fsynced;
//! 3. the merged file is renamed to `<name>.parquet` (the switch): from then on
//!    [`super::tables::list_files`] leaves out every file a present `.covers` names;
//! 4. the replaced files are deleted by a later compaction, once the `.covers` file is older
//!    than [`GRACE`], so a query that listed the folder before the switch can still read them.
//!
//! A crash between 2 and 3 leaves a `.covers` without its file, which readers ignore and the
//! next compaction removes. One compaction at a time may run on a data directory (the callers
//! hold its refresh lock); appends may run beside it, their new files are simply not covered.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arrow::array::RecordBatch;
use arrow::compute::{
    SortColumn, SortOptions, concat_batches, lexsort_to_indices, take_record_batch,
};
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::tables;
use crate::warehouse::WarehouseError;
use crate::warehouse::ddl::TableLayout;
use gma_store::StoreError;
use gma_store::layout::fsync_dir;

/// How long replaced files stay after the switch, for queries that listed them before it.
pub const GRACE: Duration = Duration::from_secs(10 * 60);

/// A folder is compacted once it holds at least this many live files.
pub const MIN_FILES: usize = 8;

/// Rows per row group of a compacted file: small enough that statistics skip well, large enough
/// to compress.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// The suffix of the sidecar that lists the files a compacted file replaces.
pub const COVERS: &str = ".covers";

/// The end of a merged file's name (before `.parquet`), which readers look for a sidecar of.
pub const MERGED: &str = "-compacted";

/// What one compaction of a table did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Folders merged.
    pub folders: u64,
    /// Files replaced by merged ones.
    pub files_replaced: u64,
    /// Replaced files deleted (after their grace).
    pub files_deleted: u64,
}

/// Compacts every folder of the table `layout` describes, in `dir`: folders holding at least
/// `min_files` live files are merged; replaced files past their [`GRACE`] (as of `now`) are
/// deleted.
///
/// # Errors
/// I/O and Parquet errors, as [`WarehouseError::Store`], naming the file; a file that no longer
/// fits the table's schema as [`WarehouseError::RowsRefused`]. Folders done before the error stay
/// compacted.
pub fn compact_table(
    dir: &Path,
    layout: &TableLayout,
    min_files: usize,
    now: SystemTime,
) -> Result<Compacted, WarehouseError> {
    let mut done = Compacted::default();
    for folder in folders(dir).map_err(|e| io_error(dir, "listing", e))? {
        done.files_deleted += purge(&folder, now)?;
        let live = tables::live_files(&folder).map_err(|e| io_error(&folder, "listing", e))?;
        if live.len() >= min_files.max(2) {
            merge(&folder, layout, &live)?;
            done.folders += 1;
            done.files_replaced += live.len() as u64;
        }
    }
    Ok(done)
}

/// `dir` and its day folders.
fn folders(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut folders = vec![dir.to_path_buf()];
    match fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry?;
                if entry.file_type()?.is_dir()
                    && !entry.file_name().to_string_lossy().starts_with('.')
                {
                    folders.push(entry.path());
                }
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    }
    folders.sort();
    Ok(folders)
}

/// Deletes the files replaced by a merge whose `.covers` is older than [`GRACE`], then the
/// `.covers`; and `.covers` files whose merged file never appeared (a crash). Returns the
/// replaced files deleted.
fn purge(folder: &Path, now: SystemTime) -> Result<u64, WarehouseError> {
    let mut deleted = 0;
    let entries = fs::read_dir(folder).map_err(|e| io_error(folder, "listing", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(folder, "listing", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(COVERS) else {
            continue;
        };
        let covers = entry.path();
        if !folder.join(format!("{stem}.parquet")).exists() {
            remove(&covers)?;
            continue;
        }
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .unwrap_or_default();
        if age < GRACE {
            continue;
        }
        let listed = match tables::read_covers(&covers) {
            Ok(listed) => listed,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(io_error(&covers, "reading", error)),
        };
        for replaced in listed {
            let path = folder.join(&replaced);
            if path.exists() {
                remove(&path)?;
                deleted += 1;
            }
            if let Some(stem) = replaced.strip_suffix(".parquet")
                && stem.ends_with(MERGED)
            {
                remove(&folder.join(format!("{stem}{COVERS}")))?;
            }
        }
        remove(&covers)?;
    }
    fsync_dir(folder).map_err(|e| io_error(folder, "syncing", e))?;
    Ok(deleted)
}

fn remove(path: &Path) -> Result<(), WarehouseError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io_error(path, "removing", error)),
    }
}

/// Merges `files` of `folder` into one sorted file and switches readers to it.
fn merge(folder: &Path, layout: &TableLayout, files: &[PathBuf]) -> Result<(), WarehouseError> {
    let schema = layout.arrow_schema();
    let mut batches = Vec::new();
    for file in files {
        batches.extend(read_file(file, &layout.name, &schema)?);
    }
    let merged = sorted(layout, &concat_batches(&schema, &batches)?)?;
    let name = format!("{}{MERGED}", tables::unique_name());
    let temp = folder.join(format!(".{name}.parquet.tmp"));
    let path = folder.join(format!("{name}.parquet"));
    let covers = folder.join(format!("{name}{COVERS}"));
    let result = (|| {
        write_sorted(&temp, &merged)?;
        write_covers(folder, &covers, files)?;
        fs::rename(&temp, &path).map_err(|e| io_error(&temp, "renaming", e))?;
        fsync_dir(folder).map_err(|e| io_error(folder, "syncing", e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
        let _ = fs::remove_file(&covers);
    }
    result
}

/// The rows of one file, in the table's current schema.
fn read_file(
    path: &Path,
    table: &str,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, WarehouseError> {
    let parquet = |e| {
        WarehouseError::Store(StoreError::parquet(
            format!("reading {}", path.display()),
            e,
        ))
    };
    let file = fs::File::open(path).map_err(|e| io_error(path, "opening", e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(parquet)?
        .build()
        .map_err(parquet)?;
    let mut batches = Vec::new();
    for batch in reader {
        batches.push(tables::conform(table, schema, &batch?)?);
    }
    Ok(batches)
}

/// `batch` sorted by the table's clustering columns, then its partition column.
fn sorted(layout: &TableLayout, batch: &RecordBatch) -> Result<RecordBatch, WarehouseError> {
    let keys: Vec<SortColumn> = layout
        .cluster_by
        .iter()
        .chain(layout.partition_by_day.iter())
        .filter_map(|name| batch.column_by_name(name))
        .map(|column| SortColumn {
            values: Arc::clone(column),
            options: Some(SortOptions {
                descending: false,
                nulls_first: true,
            }),
        })
        .collect();
    if keys.is_empty() || batch.num_rows() == 0 {
        return Ok(batch.clone());
    }
    let indices = lexsort_to_indices(&keys, None)?;
    Ok(take_record_batch(batch, &indices)?)
}

/// Writes `batch` to `temp` with page statistics and fsyncs it.
fn write_sorted(temp: &Path, batch: &RecordBatch) -> Result<(), WarehouseError> {
    let parquet = |e| {
        WarehouseError::Store(StoreError::parquet(
            format!("writing {}", temp.display()),
            e,
        ))
    };
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let file = fs::File::create(temp).map_err(|e| io_error(temp, "creating", e))?;
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(properties)).map_err(parquet)?;
    writer.write(batch).map_err(parquet)?;
    let file = writer.into_inner().map_err(parquet)?;
    file.sync_all().map_err(|e| io_error(temp, "syncing", e))
}

/// Writes the `.covers` sidecar naming `files` (their file names), and what the merged files
/// among them replaced, durably: the newest merge covers every file its inputs covered, so
/// deleting an older merged file never brings back what it replaced.
fn write_covers(folder: &Path, covers: &Path, files: &[PathBuf]) -> Result<(), WarehouseError> {
    let mut names: Vec<String> = Vec::new();
    for file in files {
        let Some(name) = file.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if let Some(stem) = name.strip_suffix(".parquet")
            && stem.ends_with(MERGED)
        {
            let sidecar = folder.join(format!("{stem}{COVERS}"));
            match tables::read_covers(&sidecar) {
                Ok(earlier) => names.extend(earlier),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(io_error(&sidecar, "reading", error)),
            }
        }
        names.push(name);
    }
    let temp = folder.join(format!(
        ".{}.tmp",
        covers
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let write = || -> io::Result<()> {
        let mut file = fs::File::create(&temp)?;
        file.write_all(names.join("\n").as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, covers)?;
        fsync_dir(folder)
    };
    write().map_err(|e| io_error(covers, "writing", e))
}

fn io_error(path: &Path, what: &str, error: io::Error) -> WarehouseError {
    WarehouseError::Store(StoreError::io(format!("{what} {}", path.display()), error))
}

/// Live files per folder of `dir`, for tests and summaries.
///
/// # Errors
/// The I/O error of listing.
pub fn live_files_by_folder(dir: &Path) -> io::Result<BTreeMap<PathBuf, usize>> {
    let mut counts = BTreeMap::new();
    for file in tables::list_files(dir)? {
        if let Some(parent) = file.parent() {
            *counts.entry(parent.to_path_buf()).or_default() += 1;
        }
    }
    Ok(counts)
}
