//! The delivery-id index that makes dedupe O(1) at ingest.
//!
//! It holds a 128-bit digest of each stored delivery id instead of the id (16 bytes instead of
//! a 36-character string and its allocation), and is rebuilt on start from the Parquet files'
//! `delivery_id` column and the log.

use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sha2::{Digest, Sha256};

use super::StoreError;

/// The index's key for one delivery id.
pub(crate) type DeliveryKey = [u8; 16];

/// The key of `delivery_id`: the first 128 bits of its SHA-256.
pub(crate) fn key(delivery_id: &str) -> DeliveryKey {
    let digest = Sha256::digest(delivery_id.as_bytes());
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// The keys of every delivery id in a Parquet file of the events table, reading only that
/// column.
pub(crate) fn keys_in_parquet(path: &Path) -> Result<Vec<DeliveryKey>, StoreError> {
    let context = || format!("reading delivery ids from {}", path.display());
    let file = File::open(path).map_err(|e| StoreError::io(context(), e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| StoreError::parquet(context(), e))?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), ["delivery_id"]);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| StoreError::parquet(context(), e))?;
    let mut keys = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let column = batch.column(0);
        if column.data_type() != &DataType::Utf8 {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("delivery_id is {}, not a string", column.data_type()),
            });
        }
        let ids = column.as_string::<i32>();
        keys.extend(
            (0..ids.len())
                .filter(|i| ids.is_valid(*i))
                .map(|i| key(ids.value(i))),
        );
    }
    Ok(keys)
}
