//! Where the webhook server lands events: the embedded [`EventStore`] (the default) or BigQuery
//! (`gma_pipeline::warehouse::bigquery::event_sink::BigQueryEventSink`).
//!
//! One rule for every sink: [`EventSink::land`] returns only once the event is durable (fsynced
//! locally, acknowledged by BigQuery remotely), so the server answers 2xx only then; and a
//! redelivery of a stored event (same delivery id) must not be stored twice where the sink can
//! prevent it.

use async_trait::async_trait;
use prometheus_client::registry::Registry;

use crate::event::Event;
use crate::{AppendOutcome, EventStore, Spool, SpoolGuard, StoreError};

/// A destination for webhook events. Shared by every request (`Arc<dyn EventSink>`).
#[async_trait]
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// The sink's name for logs and `/healthz` ("local", "bigquery").
    fn kind(&self) -> &'static str;

    /// Stores `event` and returns once it is durable. `spool` owns the file of a spilled
    /// payload ([`crate::event::Payload::Spilled`]): the sink keeps it when its record points
    /// at it, or lets it be removed once the payload is stored elsewhere.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] (or [`StoreError::Closed`]) when nothing was stored and the
    /// sender should retry later.
    async fn land(
        &self,
        event: &Event,
        spool: Option<SpoolGuard>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Starts a spool file for a request body too large to hold in memory.
    ///
    /// # Errors
    /// The I/O error of creating the file.
    async fn spool(&self) -> Result<Spool, StoreError>;

    /// Checks that the sink can take events now (the `/healthz` probe).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] saying what is wrong.
    async fn check_writable(&self) -> Result<(), StoreError>;

    /// Finishes pending work before the process exits.
    async fn close(&self) {}

    /// Adds the sink's counters to the server's `/metrics`.
    fn register_metrics(&self, registry: &mut Registry) {
        let _ = registry;
    }
}

#[async_trait]
impl EventSink for EventStore {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn land(
        &self,
        event: &Event,
        spool: Option<SpoolGuard>,
    ) -> Result<AppendOutcome, StoreError> {
        let outcome = self.append(event).await;
        // The log record points at the spool file: it must outlive the request.
        if let (Ok(AppendOutcome::Landed), Some(guard)) = (&outcome, spool) {
            guard.keep();
        }
        outcome
    }

    async fn spool(&self) -> Result<Spool, StoreError> {
        EventStore::spool(self).await
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        EventStore::check_writable(self).await
    }

    async fn close(&self) {
        EventStore::close(self).await;
        tracing::info!("Closed the sink: the event store is sealed.");
    }

    fn register_metrics(&self, registry: &mut Registry) {
        self.metrics().register(registry);
    }
}
