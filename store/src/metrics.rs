//! The store's counters, exported in Prometheus text by the server's `/metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Counters of the log writer and the compactor.
#[derive(Debug)]
pub struct StoreMetrics {
    /// Events made durable by each fsync: the group-commit batch size.
    pub fsync_batch_events: Histogram,
    /// Group commits that succeeded.
    pub commits: Counter,
    /// Group commits whose write or fsync failed (each answered 503).
    pub commit_failures: Counter,
    /// Bytes appended to the log.
    pub log_bytes: Counter,
    /// Log segments folded into Parquet.
    pub segments_compacted: Counter,
    /// Events written to Parquet by the compactor.
    pub events_compacted: Counter,
    /// Compactions that failed (retried later; the log is kept until one succeeds).
    pub compaction_failures: Counter,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            fsync_batch_events: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            commits: Counter::default(),
            commit_failures: Counter::default(),
            log_bytes: Counter::default(),
            segments_compacted: Counter::default(),
            events_compacted: Counter::default(),
            compaction_failures: Counter::default(),
        }
    }
}

impl StoreMetrics {
    pub(crate) fn observe_commit(&self, events: usize, bytes: usize) {
        self.fsync_batch_events.observe(events as f64);
        self.commits.inc();
        self.log_bytes.inc_by(bytes as u64);
    }

    /// Adds every counter to `registry` under the `gma_store_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("gma_store");
        sub.register(
            "fsync_batch_events",
            "Events made durable by one fsync (group commit batch size)",
            self.fsync_batch_events.clone(),
        );
        sub.register(
            "commits",
            "Group commits that succeeded",
            self.commits.clone(),
        );
        sub.register(
            "commit_failures",
            "Group commits whose write or fsync failed",
            self.commit_failures.clone(),
        );
        sub.register(
            "log_bytes",
            "Bytes appended to the write-ahead log",
            self.log_bytes.clone(),
        );
        sub.register(
            "segments_compacted",
            "Log segments folded into Parquet",
            self.segments_compacted.clone(),
        );
        sub.register(
            "events_compacted",
            "Events written to Parquet by the compactor",
            self.events_compacted.clone(),
        );
        sub.register(
            "compaction_failures",
            "Compactions that failed and will be retried",
            self.compaction_failures.clone(),
        );
    }
}
