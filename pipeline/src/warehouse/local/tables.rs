//! The Parquet tables of the data directory other than `events`: `tables/<name>/`, with day
//! partitions `day=YYYY-MM-DD/` when the DDL says `PARTITION BY DATE(col)`, else flat files.
//!
//! An append writes one new file per day it touches: to a hidden temporary name, fsynced, renamed
//! into place and the folder fsynced, so a reader lists only whole files and an acknowledged
//! append survives a crash. File names start with the time and carry the process id and a random
//! part, so writers in one or several processes never collide.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array, new_null_array};
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, SchemaRef, TimestampMicrosecondType};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::warehouse::WarehouseError;
use crate::warehouse::ddl::TableLayout;
use gma_store::StoreError;
use gma_store::layout::fsync_dir;

/// Microseconds per day.
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The Parquet files of a table folder (recursively, so day partitions too), in path order, as
/// readers see them: temporary files (hidden, `.tmp`) and files a compaction replaced (named by
/// a `.covers` whose merged file is present, see [`super::compact`]) are left out; a missing
/// folder has none.
///
/// # Errors
/// The I/O error of listing a folder or reading a `.covers` file.
pub fn list_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let (live, folders) = folder_entries(&dir)?;
        files.extend(live);
        pending.extend(folders);
    }
    files.sort();
    Ok(files)
}

/// The live Parquet files directly in `folder` (not in its subfolders), in path order.
///
/// # Errors
/// As [`list_files`].
pub fn live_files(folder: &Path) -> io::Result<Vec<PathBuf>> {
    let (mut live, _) = folder_entries(folder)?;
    live.sort();
    Ok(live)
}

/// The live Parquet files of `dir` and its subfolders.
fn folder_entries(dir: &Path) -> io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(error) => return Err(error),
    };
    let (mut parquet, mut folders) = (Vec::new(), Vec::new());
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            folders.push(entry.path());
        } else if name.ends_with(".parquet") {
            parquet.push(entry.path());
        }
    }
    // A merged file's sidecar is read by its path, not found in the listing: it was written
    // before the merged file appeared, but a listing running meanwhile may show one and not
    // the other.
    let mut replaced = std::collections::HashSet::new();
    for path in &parquet {
        if let Some(stem) = path.file_stem().map(|s| s.to_string_lossy())
            && stem.ends_with(super::compact::MERGED)
        {
            match read_covers(&dir.join(format!("{stem}{}", super::compact::COVERS))) {
                Ok(names) => replaced.extend(names),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
    }
    parquet.retain(|p| {
        p.file_name()
            .is_none_or(|n| !replaced.contains(n.to_string_lossy().as_ref()))
    });
    Ok((parquet, folders))
}

/// The file names a `.covers` sidecar lists.
///
/// # Errors
/// The I/O error of reading it.
pub fn read_covers(path: &Path) -> io::Result<Vec<String>> {
    Ok(fs::read_to_string(path)?
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Whether a batch column of type `from` may be stored in a table column of type `to` without
/// losing anything.
fn widens(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    matches!(
        (from, to),
        (Null, _)
            | (Utf8View | LargeUtf8, Utf8)
            | (
                Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32 | UInt64,
                Int64
            )
            | (Float16 | Float32, Float64)
            | (Timestamp(_, _), Timestamp(_, _))
    )
}

/// `batch` with exactly the columns of `schema`, matched by name: a missing nullable column is
/// NULL, and lossless type differences (string views, narrower integers, other timestamp units)
/// are cast (nanosecond timestamps are truncated to microseconds, the precision BigQuery keeps).
///
/// # Errors
/// [`WarehouseError::RowsRefused`] naming the column: unknown, missing and NOT NULL, of another
/// type, or NULL in a NOT NULL column.
pub fn conform(
    table: &str,
    schema: &SchemaRef,
    batch: &RecordBatch,
) -> Result<RecordBatch, WarehouseError> {
    let refused = |count: usize, first: String| WarehouseError::RowsRefused {
        table: table.to_owned(),
        count,
        first,
    };
    let rows = batch.num_rows();
    for field in batch.schema().fields() {
        if schema.field_with_name(field.name()).is_err() {
            return Err(refused(
                rows,
                format!("the table has no column {}", field.name()),
            ));
        }
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = match batch.column_by_name(field.name()) {
            None if field.is_nullable() => new_null_array(field.data_type(), rows),
            None => {
                return Err(refused(
                    rows,
                    format!("column {} is NOT NULL but the rows lack it", field.name()),
                ));
            }
            Some(column) if column.data_type() == field.data_type() => Arc::clone(column),
            Some(column) if widens(column.data_type(), field.data_type()) => {
                cast(column, field.data_type())?
            }
            Some(column) => {
                return Err(refused(
                    rows,
                    format!(
                        "column {} is {} in the table but {} in the rows",
                        field.name(),
                        field.data_type(),
                        column.data_type()
                    ),
                ));
            }
        };
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(refused(
                column.null_count(),
                format!(
                    "column {} is NOT NULL but some rows hold NULL",
                    field.name()
                ),
            ));
        }
        columns.push(column);
    }
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// Splits `batch` by the UTC day of its `column` (a TIMESTAMP), as `day=…` folder names.
fn split_by_day(
    batch: &RecordBatch,
    column: &str,
) -> Result<Vec<(String, RecordBatch)>, WarehouseError> {
    let Some(times) = batch.column_by_name(column) else {
        return Ok(vec![(String::new(), batch.clone())]);
    };
    let times = times.as_primitive::<TimestampMicrosecondType>();
    let mut days: BTreeMap<Option<i64>, Vec<u32>> = BTreeMap::new();
    for row in 0..times.len() {
        let day = times
            .is_valid(row)
            .then(|| times.value(row).div_euclid(MICROS_PER_DAY));
        days.entry(day)
            .or_default()
            .push(u32::try_from(row).unwrap_or(u32::MAX));
    }
    let mut parts = Vec::with_capacity(days.len());
    for (day, rows) in days {
        let indices = UInt32Array::from(rows);
        let columns = batch
            .columns()
            .iter()
            .map(|c| take(c, &indices, None))
            .collect::<Result<Vec<_>, _>>()?;
        let name = match day.and_then(|d| chrono::DateTime::from_timestamp(d * 86_400, 0)) {
            Some(date) => format!("day={}", date.format("%Y-%m-%d")),
            None => "day=__NULL__".to_owned(),
        };
        parts.push((name, RecordBatch::try_new(batch.schema(), columns)?));
    }
    Ok(parts)
}

/// A file name no other writer (in this or another process) picks: the time, the process id,
/// a per-process counter and a random part.
pub(crate) fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = chrono::Utc::now().timestamp_micros();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut random = RandomState::new().build_hasher();
    random.write_u64(count);
    format!(
        "{now:020}-{:010}-{count:06}-{:016x}",
        std::process::id(),
        random.finish()
    )
}

/// Creates `dir` and its missing parents, fsyncing each parent that gained an entry.
fn create_dir_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durably(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(error) => return Err(error),
    }
    if let Some(parent) = dir.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

/// Writes `batch` as a new file of `dir`: a temporary name, fsync, rename, fsync of the folder.
fn write_file(dir: &Path, batch: &RecordBatch) -> Result<PathBuf, StoreError> {
    create_dir_durably(dir)
        .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
    let name = unique_name();
    let temp = dir.join(format!(".{name}.parquet.tmp"));
    let path = dir.join(format!("{name}.parquet"));
    let context = |what: &str| format!("{what} {}", temp.display());
    let file = fs::File::create(&temp).map_err(|e| StoreError::io(context("creating"), e))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let result = (|| {
        let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(properties))
            .map_err(|e| StoreError::parquet(context("writing"), e))?;
        writer
            .write(batch)
            .map_err(|e| StoreError::parquet(context("writing"), e))?;
        let file = writer
            .into_inner()
            .map_err(|e| StoreError::parquet(context("finishing"), e))?;
        file.sync_all()
            .map_err(|e| StoreError::io(context("syncing"), e))?;
        fs::rename(&temp, &path).map_err(|e| StoreError::io(context("renaming"), e))?;
        fsync_dir(dir).map_err(|e| StoreError::io(format!("syncing {}", dir.display()), e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map(|()| path)
}

/// Appends `batch` (already conformed to `layout`) to the table folder `dir`, one file per day
/// partition touched. Returns the files written. Each file is atomic; an append spanning several
/// days that fails midway leaves the days written before the failure.
///
/// # Errors
/// I/O and Parquet errors of writing, as [`WarehouseError::Store`].
pub fn append(
    dir: &Path,
    layout: &TableLayout,
    batch: &RecordBatch,
) -> Result<Vec<PathBuf>, WarehouseError> {
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let parts = match &layout.partition_by_day {
        Some(column) => split_by_day(batch, column)?,
        None => vec![(String::new(), batch.clone())],
    };
    let mut written = Vec::with_capacity(parts.len());
    for (partition, part) in parts {
        let folder = if partition.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(partition)
        };
        written.push(write_file(&folder, &part)?);
    }
    Ok(written)
}
