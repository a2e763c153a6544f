//! One vocabulary for failures shared by the framework and every connector: a failure is
//! **transient** (the same call may succeed later: a timeout, a 5xx, a 429, a store that
//! cannot write for now) or **permanent** (only different input or configuration fixes it: a
//! 404, a refused credential, a broken archive).
//!
//! Connectors retry transient failures themselves where that is cheap (the GitHub and BigQuery
//! clients back off on 429 and 5xx); what reaches a job after that tells it whether to stop
//! and let a later run go on ([`Transient::is_transient`]) or to record the element as failed.

use gma_store::StoreError;

/// An error with its causes, `outer: cause: root`: how every failure is written for a person or
/// a table (a log field, a failure row, a status row), so that no cause is lost.
pub use gma_store::error_chain;

/// Whether a failure may pass if the same operation is tried again later.
pub trait Transient {
    /// True when trying again later may succeed; false when only a change of input or
    /// configuration will.
    fn is_transient(&self) -> bool;
}

impl Transient for StoreError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::WarehouseError;

    #[test]
    fn store_unavailability_is_transient_and_damage_is_not() {
        let unavailable = StoreError::Unavailable {
            reason: "disk full".into(),
        };
        assert!(unavailable.is_transient());
        assert!(WarehouseError::Store(unavailable).is_transient());
        let corrupt = StoreError::Corrupt {
            path: "wal/1.wal".into(),
            reason: "bad checksum".into(),
        };
        assert!(!corrupt.is_transient());
        assert!(!WarehouseError::StatementCount(2).is_transient());
    }
}
