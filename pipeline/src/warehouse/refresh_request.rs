//! Asking the typed tables' refresh to take a range of `received` again: a job that lands events
//! with old `received` times (an import) writes a row of `refresh_requests`, because the
//! refresh's incremental window follows recent arrivals only.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use chrono::{DateTime, Utc};

use super::{Warehouse, WarehouseError};
use crate::sql::REFRESH_REQUESTS;
use crate::warehouse::ddl::TableLayout;

/// Records that `events` events received from `from` to `until` (inclusive) were landed by
/// `source`, for the next refresh of the typed tables to take.
///
/// # Errors
/// The warehouse's error appending the row.
pub async fn request_refresh(
    warehouse: &dyn Warehouse,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    events: u64,
    source: &str,
) -> Result<(), WarehouseError> {
    let schema = TableLayout::of(&REFRESH_REQUESTS)?.arrow_schema();
    let time = |t: DateTime<Utc>| {
        Arc::new(TimestampMicrosecondArray::from(vec![t.timestamp_micros()]).with_timezone("UTC"))
    };
    let batch = RecordBatch::try_new(
        schema,
        vec![
            time(Utc::now()),
            time(from),
            time(until),
            Arc::new(Int64Array::from(vec![
                i64::try_from(events).unwrap_or(i64::MAX),
            ])),
            Arc::new(StringArray::from(vec![source])),
        ],
    )?;
    warehouse.append(&REFRESH_REQUESTS, batch).await
}
