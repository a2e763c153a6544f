//! Typed rows to and from Arrow batches, through serde: a pipeline works with plain structs
//! while sources and sinks speak Arrow.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::json::{ArrayWriter, ReaderBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Errors of converting rows.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// Arrow could not encode or decode the rows.
    #[error("converting rows")]
    Arrow(#[from] ArrowError),
    /// A row does not have the shape of the struct it is read into.
    #[error("a row does not match the expected shape")]
    Shape(#[from] serde_json::Error),
}

/// Reads every row of `batch` as a `T` (columns by field name; TIMESTAMPs as RFC 3339 text, so
/// `chrono::DateTime<Utc>` fields work).
///
/// # Errors
/// [`RowError::Shape`] naming the field when a row does not fit `T`.
pub fn from_batch<T: DeserializeOwned>(batch: &RecordBatch) -> Result<Vec<T>, RowError> {
    if batch.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let mut writer = ArrayWriter::new(Vec::new());
    writer.write(batch)?;
    writer.finish()?;
    Ok(serde_json::from_slice(&writer.into_inner())?)
}

/// Builds one batch of `schema` from `rows` (fields by column name; a missing nullable column is
/// NULL).
///
/// # Errors
/// [`RowError::Arrow`] when a row lacks a NOT NULL column or has a value of the wrong type.
pub fn to_batch<T: Serialize>(schema: SchemaRef, rows: &[T]) -> Result<RecordBatch, RowError> {
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.len().max(1))
        .build_decoder()?;
    decoder.serialize(rows)?;
    Ok(decoder
        .flush()?
        .unwrap_or_else(|| RecordBatch::new_empty(schema)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use chrono::{DateTime, TimeZone, Utc};
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Row {
        id: String,
        n: Option<i64>,
        at: DateTime<Utc>,
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
        ]))
    }

    #[test]
    fn round_trips_structs_through_arrow() {
        let rows = vec![
            Row {
                id: "a".into(),
                n: Some(1),
                at: Utc.timestamp_micros(1_700_000_000_123_456).unwrap(),
            },
            Row {
                id: "b".into(),
                n: None,
                at: Utc.timestamp_micros(0).unwrap(),
            },
        ];
        let batch = to_batch(schema(), &rows).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(from_batch::<Row>(&batch).unwrap(), rows);
        assert!(
            from_batch::<Row>(&RecordBatch::new_empty(schema()))
                .unwrap()
                .is_empty()
        );
        assert_eq!(to_batch::<Row>(schema(), &[]).unwrap().num_rows(), 0);
    }

    #[test]
    fn names_what_does_not_fit() {
        #[derive(Serialize)]
        struct Missing {
            n: i64,
        }
        assert!(to_batch(schema(), &[Missing { n: 1 }]).is_err());
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Wrong {
            id: i64,
        }
        let batch = to_batch(
            schema(),
            &[Row {
                id: "x".into(),
                n: None,
                at: Utc.timestamp_micros(0).unwrap(),
            }],
        )
        .unwrap();
        let err = crate::error::error_chain(&from_batch::<Wrong>(&batch).unwrap_err());
        assert!(err.contains("invalid type"), "{err}");
    }
}
