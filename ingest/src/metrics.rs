//! The server's Prometheus metrics, served at `/metrics` in the OpenMetrics text format.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a finished webhook request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The HTTP status answered.
    pub status: u16,
    /// The event type, for signed requests only (anyone can send any header; only a verified
    /// sender may add a label value), `unverified` otherwise.
    pub event: String,
}

/// Labels naming which configured secret verified a delivery.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SecretLabels {
    /// The secret's id (where it was configured), never its value.
    pub secret: String,
}

/// Counters of the webhook endpoint.
#[derive(Debug)]
pub struct IngestMetrics {
    /// Webhook requests by status and event type.
    pub requests: Family<RequestLabels, Counter>,
    /// Body bytes received.
    pub received_bytes: Counter,
    /// Seconds from a request's arrival until its event was durable (landed or duplicate).
    pub landing_seconds: Histogram,
    /// Deliveries verified, by the secret that matched: shows when an old secret is unused.
    pub signature_matches: Family<SecretLabels, Counter>,
    /// Webhook requests being served.
    pub in_flight: Gauge,
}

impl Default for IngestMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            received_bytes: Counter::default(),
            landing_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
            signature_matches: Family::default(),
            in_flight: Gauge::default(),
        }
    }
}

impl IngestMetrics {
    /// Adds every metric to `registry` under the `gma_ingest_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("gma_ingest");
        sub.register(
            "requests",
            "Webhook requests by HTTP status and event type",
            self.requests.clone(),
        );
        sub.register(
            "received_bytes",
            "Webhook body bytes received",
            self.received_bytes.clone(),
        );
        sub.register(
            "landing_seconds",
            "Seconds from a delivery's arrival until it was durable",
            self.landing_seconds.clone(),
        );
        sub.register(
            "signature_matches",
            "Verified deliveries by the id of the secret that matched",
            self.signature_matches.clone(),
        );
        sub.register(
            "in_flight",
            "Webhook requests being served",
            self.in_flight.clone(),
        );
    }
}
