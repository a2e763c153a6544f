//! Listing a webhook's deliveries, newest first, back to where the previous run stopped.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use gma_pipeline::github::{Auth, Delivery, GitHubClient, GitHubError, HookRef};
use tokio_util::sync::CancellationToken;

/// Why a listing stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd {
    /// It reached a delivery at or below the checkpoint.
    Checkpoint,
    /// It reached deliveries older than the redelivery window (or the backfill's `since`).
    Window,
    /// GitHub has no older deliveries.
    End,
    /// The run was stopped (time budget, shutdown) before it got there.
    Interrupted,
}

impl ScanEnd {
    /// Whether every delivery between the checkpoint and the newest one was seen, so a new
    /// checkpoint may be derived from the listing.
    pub fn is_complete(self) -> bool {
        !matches!(self, Self::Interrupted)
    }
}

impl fmt::Display for ScanEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Checkpoint => "reached the checkpoint",
            Self::Window => "reached the end of the window",
            Self::End => "reached the oldest delivery GitHub keeps",
            Self::Interrupted => "interrupted",
        })
    }
}

/// One attempt of a failed event, what recovery and the checkpoint need of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// GitHub's id of the attempt.
    pub id: i64,
    /// When GitHub made it.
    pub delivered_at: DateTime<Utc>,
    /// The receiver's answer (0: none).
    pub status_code: i64,
    /// Whether it was a redelivery.
    pub redelivery: bool,
}

/// Every attempt of one event (one GUID) seen in the listing.
#[derive(Debug, Clone)]
pub struct Group {
    /// The event's GUID.
    pub guid: String,
    /// The webhook it was delivered to.
    pub hook: HookRef,
    /// The event type.
    pub event: String,
    /// The event's action.
    pub action: Option<String>,
    /// Whether any attempt succeeded (then the attempts are not kept).
    pub succeeded: bool,
    /// The failed attempts, in listing order (newest first).
    pub attempts: Vec<Attempt>,
}

impl Group {
    /// The oldest failed attempt's id: the checkpoint must stay below it until the event is
    /// handled.
    pub fn oldest_id(&self) -> i64 {
        self.attempts.iter().map(|a| a.id).min().unwrap_or(i64::MAX)
    }

    /// The newest failed attempt's id: the one asked to be redelivered or fetched.
    pub fn newest_id(&self) -> i64 {
        self.attempts.iter().map(|a| a.id).max().unwrap_or(0)
    }

    /// When GitHub first failed to deliver the event (of the attempts seen).
    pub fn first_failed_at(&self) -> DateTime<Utc> {
        self.attempts
            .iter()
            .map(|a| a.delivered_at)
            .min()
            .unwrap_or_else(Utc::now)
    }

    /// A failed redelivery among the attempts: evidence that an earlier recovery did not take.
    pub fn failed_redelivery(&self) -> Option<&Attempt> {
        self.attempts.iter().find(|a| a.redelivery)
    }
}

/// What listing one webhook found.
#[derive(Debug, Clone)]
pub struct HookScan {
    /// The webhook.
    pub hook: HookRef,
    /// The checkpoint the listing started from.
    pub checkpoint: Option<i64>,
    /// Pages fetched.
    pub pages: u64,
    /// Deliveries examined (within the bounds).
    pub scanned: u64,
    /// The newest delivery's id at the start of the listing.
    pub newest_id: Option<i64>,
    /// The oldest delivery time examined.
    pub oldest_seen: Option<DateTime<Utc>>,
    /// Why the listing stopped.
    pub end: ScanEnd,
}

/// The bounds of a listing.
#[derive(Debug, Clone, Copy)]
pub struct ScanBounds {
    /// Stop at a delivery with an id at or below this.
    pub checkpoint: Option<i64>,
    /// Stop at a delivery older than this.
    pub oldest: DateTime<Utc>,
    /// Skip deliveries newer than this.
    pub newest: Option<DateTime<Utc>>,
}

/// Attempts grouped by GUID, across every webhook listed.
#[derive(Debug, Default)]
pub struct Groups {
    by_guid: HashMap<String, Group>,
}

impl Groups {
    /// Adds one listed attempt.
    pub fn add(&mut self, hook: &HookRef, delivery: &Delivery) {
        let group = self
            .by_guid
            .entry(delivery.guid.clone())
            .or_insert_with(|| Group {
                guid: delivery.guid.clone(),
                hook: hook.clone(),
                event: delivery.event.clone(),
                action: delivery.action.clone(),
                succeeded: false,
                attempts: Vec::new(),
            });
        if group.succeeded {
            return;
        }
        if delivery.succeeded() {
            group.succeeded = true;
            group.attempts = Vec::new();
            return;
        }
        group.attempts.push(Attempt {
            id: delivery.id,
            delivered_at: delivery.delivered_at,
            status_code: delivery.status_code,
            redelivery: delivery.redelivery,
        });
    }

    /// Events seen, failed or not.
    pub fn len(&self) -> usize {
        self.by_guid.len()
    }

    /// Whether nothing was seen.
    pub fn is_empty(&self) -> bool {
        self.by_guid.is_empty()
    }

    /// The events no attempt of which succeeded, oldest first.
    pub fn into_failed(self) -> Vec<Group> {
        let mut failed: Vec<Group> = self
            .by_guid
            .into_values()
            .filter(|g| !g.succeeded && !g.attempts.is_empty())
            .collect();
        failed.sort_by_key(Group::oldest_id);
        failed
    }
}

/// Lists `hook`'s deliveries newest first within `bounds`, adding each to `groups`.
///
/// # Errors
/// The [`GitHubError`] of a page that failed after the client's retries.
pub async fn scan_hook(
    github: &GitHubClient,
    auth: &Auth,
    hook: &HookRef,
    bounds: ScanBounds,
    per_page: u8,
    stop: &CancellationToken,
    groups: &mut Groups,
) -> Result<HookScan, GitHubError> {
    let mut scan = HookScan {
        hook: hook.clone(),
        checkpoint: bounds.checkpoint,
        pages: 0,
        scanned: 0,
        newest_id: None,
        oldest_seen: None,
        end: ScanEnd::End,
    };
    let mut cursor: Option<String> = None;
    loop {
        if stop.is_cancelled() {
            scan.end = ScanEnd::Interrupted;
            return Ok(scan);
        }
        let page = github
            .list_deliveries(hook, auth, per_page, cursor.as_deref())
            .await?;
        scan.pages += 1;
        if scan.newest_id.is_none() {
            scan.newest_id = page.deliveries.first().map(|d| d.id);
        }
        for delivery in &page.deliveries {
            if bounds.checkpoint.is_some_and(|c| delivery.id <= c) {
                scan.end = ScanEnd::Checkpoint;
                return Ok(scan);
            }
            if delivery.delivered_at < bounds.oldest {
                scan.end = ScanEnd::Window;
                return Ok(scan);
            }
            if bounds
                .newest
                .is_some_and(|newest| delivery.delivered_at > newest)
            {
                continue;
            }
            scan.scanned += 1;
            scan.oldest_seen = Some(delivery.delivered_at);
            groups.add(hook, delivery);
        }
        match page.next_cursor {
            Some(next) if !page.deliveries.is_empty() => cursor = Some(next),
            _ => {
                scan.end = ScanEnd::End;
                return Ok(scan);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: i64, guid: &str, status_code: i64, redelivery: bool) -> Delivery {
        Delivery {
            id,
            guid: guid.into(),
            delivered_at: DateTime::from_timestamp(1_700_000_000 + id, 0).unwrap(),
            redelivery,
            status: String::new(),
            status_code,
            event: "push".into(),
            action: None,
            installation_id: None,
            repository_id: None,
        }
    }

    #[test]
    fn an_event_needs_recovery_only_if_no_attempt_succeeded() {
        let mut groups = Groups::default();
        // Newest first, as GitHub lists them.
        for d in [
            delivery(9, "a", 200, true),
            delivery(8, "b", 0, true),
            delivery(7, "c", 500, false),
            delivery(5, "b", 502, false),
            delivery(4, "a", 500, false),
            delivery(3, "d", 204, false),
            delivery(2, "e", 302, false),
        ] {
            groups.add(&HookRef::App, &d);
        }
        assert_eq!(groups.len(), 5);
        let failed = groups.into_failed();
        let guids: Vec<&str> = failed.iter().map(|g| g.guid.as_str()).collect();
        assert_eq!(guids, ["e", "b", "c"], "oldest first; a and d succeeded");
        let b = &failed[1];
        assert_eq!((b.oldest_id(), b.newest_id()), (5, 8));
        assert_eq!(b.failed_redelivery().map(|a| a.id), Some(8));
        assert!(failed[2].failed_redelivery().is_none());
    }
}
