//! Rows of the `events` table as [`Event`]s, so an append locally goes through the event store
//! (its log, its dedupe on `delivery_id`) like a delivery `gma serve` lands.

use arrow::array::{Array, AsArray, RecordBatch};
use std::sync::Arc;

use arrow::datatypes::{Field, Int64Type, Schema, SchemaRef, TimestampMicrosecondType};
use bytes::Bytes;

use crate::error::error_chain;
use crate::warehouse::WarehouseError;
use gma_store::event::{DeliveryHeaders, Event, Payload, lift};
use gma_store::schema::events_schema;

/// The columns an append to `events` may carry: the events schema, with every column the store
/// derives from the payload (the lifted ones, `payload_sha256`, `payload_size`) optional, as
/// the store computes them again.
pub fn input_schema() -> SchemaRef {
    const REQUIRED: [&str; 4] = ["delivery_id", "signature", "received", "event"];
    let fields: Vec<Field> = events_schema()
        .fields()
        .iter()
        .map(|f| {
            f.as_ref()
                .clone()
                .with_nullable(!REQUIRED.contains(&f.name().as_str()))
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// The events of `batch`, a batch already conformed to [`input_schema`]. The lifted columns
/// are lifted again from `payload`, so they always agree with it.
///
/// # Errors
/// [`WarehouseError::RowsRefused`] when a row has no `payload` (a payload kept in the blob store
/// cannot be landed locally) or a payload that is not a JSON object.
pub fn to_events(table: &str, batch: &RecordBatch) -> Result<Vec<Event>, WarehouseError> {
    let refused = |row: usize, reason: String| WarehouseError::RowsRefused {
        table: table.to_owned(),
        count: batch.num_rows(),
        first: format!("row {row}: {reason}"),
    };
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| refused(0, format!("no column {name}")))
    };
    let text = |name: &str| column(name).map(|c| c.as_string::<i32>().clone());
    let int = |name: &str| column(name).map(|c| c.as_primitive::<Int64Type>().clone());
    let (delivery_id, signature, event, payload, target_type) = (
        text("delivery_id")?,
        text("signature")?,
        text("event")?,
        text("payload")?,
        text("target_type")?,
    );
    let (hook_id, target_id) = (int("hook_id")?, int("target_id")?);
    let received = column("received")?
        .as_primitive::<TimestampMicrosecondType>()
        .clone();
    let option_text = |array: &arrow::array::StringArray, row: usize| {
        array.is_valid(row).then(|| array.value(row).to_owned())
    };
    let option_int = |array: &arrow::array::Int64Array, row: usize| {
        array.is_valid(row).then(|| array.value(row))
    };
    let mut events = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        if payload.is_null(row) {
            return Err(refused(
                row,
                "payload is NULL; the local store keeps every payload in its row".into(),
            ));
        }
        let body = payload.value(row);
        let lifted = lift(body.as_bytes()).map_err(|e| refused(row, error_chain(&e)))?;
        events.push(Event {
            headers: DeliveryHeaders {
                delivery_id: delivery_id.value(row).to_owned(),
                event: event.value(row).to_owned(),
                signature: signature.value(row).to_owned(),
                hook_id: option_int(&hook_id, row),
                target_type: option_text(&target_type, row),
                target_id: option_int(&target_id, row),
            },
            received_micros: received.value(row),
            lifted,
            payload: Payload::Inline(Bytes::copy_from_slice(body.as_bytes())),
            payload_size: body.len() as u64,
        });
    }
    Ok(events)
}
