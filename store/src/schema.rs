//! The Arrow schema of the `events` table and the builder that turns [`Event`]s into
//! `RecordBatch`es of it.
//!
//! `sql/events.sql` is the definition; [`events_schema`] is its Arrow form, and a test parses the
//! DDL and checks the two agree, so a column added to one and not the other fails the build's
//! tests.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

use sha2::{Digest, Sha256};

use crate::event::Event;

/// The time zone every timestamp column carries, as BigQuery's TIMESTAMP is UTC.
pub const UTC: &str = "UTC";

static EVENTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    let int = |name: &str, nullable| Field::new(name, DataType::Int64, nullable);
    Arc::new(Schema::new(vec![
        text("delivery_id", false),
        text("signature", false),
        Field::new(
            "received",
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            false,
        ),
        text("event", false),
        text("payload", true),
        text("action", true),
        int("hook_id", true),
        text("target_type", true),
        int("target_id", true),
        int("installation_id", true),
        text("enterprise", true),
        text("organization", true),
        int("organization_id", true),
        text("repository", true),
        int("repository_id", true),
        text("sender", true),
        int("sender_id", true),
        text("payload_sha256", false),
        int("payload_size", false),
        text("payload_uri", true),
    ]))
});

/// The Arrow schema of the `events` table.
pub fn events_schema() -> SchemaRef {
    Arc::clone(&EVENTS_SCHEMA)
}

/// Accumulates events into one `RecordBatch` of [`events_schema`].
pub struct EventBatchBuilder {
    delivery_id: StringBuilder,
    signature: StringBuilder,
    received: TimestampMicrosecondBuilder,
    event: StringBuilder,
    payload: StringBuilder,
    action: StringBuilder,
    hook_id: Int64Builder,
    target_type: StringBuilder,
    target_id: Int64Builder,
    installation_id: Int64Builder,
    enterprise: StringBuilder,
    organization: StringBuilder,
    organization_id: Int64Builder,
    repository: StringBuilder,
    repository_id: Int64Builder,
    sender: StringBuilder,
    sender_id: Int64Builder,
    payload_sha256: StringBuilder,
    payload_size: Int64Builder,
    payload_uri: StringBuilder,
    rows: usize,
    payload_bytes: usize,
}

impl Default for EventBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self {
            delivery_id: StringBuilder::new(),
            signature: StringBuilder::new(),
            received: TimestampMicrosecondBuilder::new().with_timezone(UTC),
            event: StringBuilder::new(),
            payload: StringBuilder::new(),
            action: StringBuilder::new(),
            hook_id: Int64Builder::new(),
            target_type: StringBuilder::new(),
            target_id: Int64Builder::new(),
            installation_id: Int64Builder::new(),
            enterprise: StringBuilder::new(),
            organization: StringBuilder::new(),
            organization_id: Int64Builder::new(),
            repository: StringBuilder::new(),
            repository_id: Int64Builder::new(),
            sender: StringBuilder::new(),
            sender_id: Int64Builder::new(),
            payload_sha256: StringBuilder::new(),
            payload_size: Int64Builder::new(),
            payload_uri: StringBuilder::new(),
            rows: 0,
            payload_bytes: 0,
        }
    }

    /// An empty builder sized for `rows` rows holding `payload_bytes` payload bytes in all, so a
    /// bulk load does not grow (and copy) its largest buffer as it appends.
    pub fn with_capacity(rows: usize, payload_bytes: usize) -> Self {
        Self {
            delivery_id: StringBuilder::with_capacity(rows, rows * 36),
            signature: StringBuilder::with_capacity(rows, rows * 71),
            payload: StringBuilder::with_capacity(rows, payload_bytes),
            payload_sha256: StringBuilder::with_capacity(rows, rows * 64),
            ..Self::new()
        }
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Payload bytes appended since the last [`finish`](Self::finish), to bound batch memory.
    pub fn payload_bytes(&self) -> usize {
        self.payload_bytes
    }

    /// Appends one event whose payload text is `payload` (the event's payload, already read).
    pub fn append(&mut self, event: &Event, payload: &str) {
        // Computed here, off the request path: the compactor and readers build batches.
        let sha256 = hex::encode(Sha256::digest(payload.as_bytes()));
        self.append_row(event, Some(payload), &sha256, None);
        self.payload_bytes += payload.len();
    }

    /// Appends one event whose payload is kept elsewhere (a blob too large for a row): the
    /// `payload` column is NULL and `payload_uri` points at the blob. `payload_sha256` is the
    /// lowercase hex SHA-256 of the payload's bytes.
    pub fn append_offloaded(&mut self, event: &Event, payload_sha256: &str, payload_uri: &str) {
        self.append_row(event, None, payload_sha256, Some(payload_uri));
    }

    fn append_row(
        &mut self,
        event: &Event,
        payload: Option<&str>,
        payload_sha256: &str,
        payload_uri: Option<&str>,
    ) {
        let headers = &event.headers;
        let lifted = &event.lifted;
        self.delivery_id.append_value(&headers.delivery_id);
        self.signature.append_value(&headers.signature);
        self.received.append_value(event.received_micros);
        self.event.append_value(&headers.event);
        self.payload.append_option(payload);
        self.action.append_option(lifted.action.as_deref());
        self.hook_id.append_option(headers.hook_id);
        self.target_type
            .append_option(headers.target_type.as_deref());
        self.target_id.append_option(headers.target_id);
        self.installation_id.append_option(lifted.installation_id);
        self.enterprise.append_option(lifted.enterprise.as_deref());
        self.organization
            .append_option(lifted.organization.as_deref());
        self.organization_id.append_option(lifted.organization_id);
        self.repository.append_option(lifted.repository.as_deref());
        self.repository_id.append_option(lifted.repository_id);
        self.sender.append_option(lifted.sender.as_deref());
        self.sender_id.append_option(lifted.sender_id);
        self.payload_sha256.append_value(payload_sha256);
        self.payload_size
            .append_value(i64::try_from(event.payload_size).unwrap_or(i64::MAX));
        self.payload_uri.append_option(payload_uri);
        self.rows += 1;
    }

    /// Takes the rows appended so far as one batch and leaves the builder empty.
    ///
    /// # Errors
    /// An Arrow error if the columns disagree with the schema, which would be a bug here.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.delivery_id.finish()),
            Arc::new(self.signature.finish()),
            Arc::new(self.received.finish()),
            Arc::new(self.event.finish()),
            Arc::new(self.payload.finish()),
            Arc::new(self.action.finish()),
            Arc::new(self.hook_id.finish()),
            Arc::new(self.target_type.finish()),
            Arc::new(self.target_id.finish()),
            Arc::new(self.installation_id.finish()),
            Arc::new(self.enterprise.finish()),
            Arc::new(self.organization.finish()),
            Arc::new(self.organization_id.finish()),
            Arc::new(self.repository.finish()),
            Arc::new(self.repository_id.finish()),
            Arc::new(self.sender.finish()),
            Arc::new(self.sender_id.finish()),
            Arc::new(self.payload_sha256.finish()),
            Arc::new(self.payload_size.finish()),
            Arc::new(self.payload_uri.finish()),
        ];
        self.rows = 0;
        self.payload_bytes = 0;
        RecordBatch::try_new(events_schema(), columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Lifted;
    use crate::testing::EventBuilder;

    #[test]
    fn builds_a_batch_of_the_schema() {
        let event = EventBuilder::new("d-1", "{}")
            .hook_id(5)
            .target_type("repository")
            .received_micros(1_700_000_000_000_000)
            .lifted(Lifted {
                repository: Some("a/b".into()),
                ..Lifted::default()
            })
            .build();
        let mut builder = EventBatchBuilder::new();
        builder.append(&event, "{}");
        builder.append(&event, "{}");
        assert_eq!(builder.payload_bytes(), 4);
        let batch = builder.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), events_schema());
        assert!(builder.is_empty());
    }
}
