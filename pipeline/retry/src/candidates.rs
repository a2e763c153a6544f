//! The one question a run asks the warehouse: which of the events GitHub failed to deliver
//! landed anyway, and which failed to be recovered before.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gma_pipeline::flow::rows;
use gma_pipeline::sql;
use gma_pipeline::warehouse::{ParamValue, Params, Warehouse};
use serde::Deserialize;

use crate::error::RetryError;
use crate::job::RetryTables;
use crate::scan::Group;

/// Margin before the oldest failed attempt from which the events table is searched: an event
/// lands after its first attempt, so this only guards against clocks that disagree.
const LANDED_MARGIN: Duration = Duration::from_secs(3 * 24 * 3600);

/// What the warehouse knows about one failed event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Known {
    /// The events table holds it.
    pub landed: bool,
    /// Runs that failed to recover it so far.
    pub failed_runs: i64,
    /// A run gave up on it.
    pub given_up: bool,
}

#[derive(Deserialize)]
struct Row {
    guid: String,
    #[serde(flatten)]
    known: Known,
}

/// What to do with one failed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It is in the events table: nothing to do.
    Landed,
    /// An earlier run gave up on it.
    GivenUpBefore,
    /// It failed to be recovered by too many runs: give up and say why.
    GiveUp {
        /// Failed recoveries, this run's evidence included.
        failures: i64,
    },
    /// Recover it.
    Recover,
}

/// A failed event with what is known about it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its attempts.
    pub group: Group,
    /// What the warehouse knows.
    pub known: Known,
    /// Whether this run sees a failed redelivery, i.e. an earlier recovery that did not take.
    pub redelivery_failed: bool,
    /// The verdict.
    pub verdict: Verdict,
}

impl Candidate {
    /// Decides what to do with `group` given `known` and the give-up limit.
    pub fn decide(group: Group, known: Known, give_up_after: u32) -> Self {
        let redelivery_failed = group.failed_redelivery().is_some();
        let failures = known.failed_runs + i64::from(redelivery_failed);
        let verdict = if known.landed {
            Verdict::Landed
        } else if known.given_up {
            Verdict::GivenUpBefore
        } else if failures >= i64::from(give_up_after) {
            Verdict::GiveUp { failures }
        } else {
            Verdict::Recover
        };
        Self {
            group,
            known,
            redelivery_failed,
            verdict,
        }
    }
}

/// Asks the warehouse, in ONE query, what it knows about each failed event.
///
/// # Errors
/// [`RetryError::Lookup`] when the query fails.
pub async fn look_up(
    warehouse: &dyn Warehouse,
    tables: &RetryTables,
    failed: &[Group],
) -> Result<HashMap<String, Known>, RetryError> {
    if failed.is_empty() {
        return Ok(HashMap::new());
    }
    let oldest: DateTime<Utc> = failed
        .iter()
        .map(Group::first_failed_at)
        .min()
        .unwrap_or_else(Utc::now);
    let received_after =
        oldest - chrono::Duration::from_std(LANDED_MARGIN).unwrap_or(chrono::Duration::zero());
    let params = Params::new()
        .with(
            "guids",
            ParamValue::StringArray(failed.iter().map(|g| g.guid.clone()).collect()),
        )
        .with("received_after", ParamValue::Timestamp(received_after));
    let result = warehouse
        .query(&tables.resolve(sql::RETRY_CANDIDATES), &params)
        .await
        .map_err(RetryError::Lookup)?;
    let mut known = HashMap::with_capacity(failed.len());
    for batch in &result.batches {
        for row in rows::from_batch::<Row>(batch)? {
            known.insert(row.guid, row.known);
        }
    }
    Ok(known)
}
