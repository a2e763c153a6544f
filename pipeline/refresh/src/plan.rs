//! What a refresh takes: per typed table, windows of `received` (after, until], cut into day
//! chunks. Pure functions of the watermarks, the requests and the clock.

use std::time::Duration;

use chrono::{DateTime, Days, TimeDelta, Utc};
use serde::Deserialize;

/// The pipeline name under which a typed table's refresh keeps its watermark on `received`.
pub fn received_mark(table: &str) -> String {
    format!("views_refresh/{table}")
}

/// The pipeline name under which a typed table's refresh keeps the newest request it took.
pub fn requests_mark(table: &str) -> String {
    format!("views_refresh_requests/{table}")
}

/// How far a typed table has been refreshed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    /// Every event received at or before this (less the lateness allowance) is in the table;
    /// `None` before its first refresh.
    pub received: Option<DateTime<Utc>>,
    /// The newest `refresh_requests` row taken.
    pub requests: Option<DateTime<Utc>>,
}

/// A range of `received` a job landed events into after the fact (a `refresh_requests` row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Request {
    /// When it was written.
    pub requested: DateTime<Utc>,
    /// The oldest `received` of the events landed.
    pub received_from: DateTime<Utc>,
    /// The newest.
    pub received_until: DateTime<Utc>,
}

/// A window of `received`: after `after`, up to and including `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Exclusive start.
    pub after: DateTime<Utc>,
    /// Inclusive end.
    pub until: DateTime<Utc>,
}

const TICK: TimeDelta = TimeDelta::microseconds(1);

/// The windows one table takes, merged and in order: on its first refresh everything stored
/// (`oldest` is the oldest event's `received`, `None` when there is none), else the arrivals
/// since its watermark less `lateness`, and every request newer than the one it took last.
pub fn windows(
    marks: &Marks,
    requests: &[Request],
    oldest: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    lateness: Duration,
) -> Vec<Window> {
    let mut windows = Vec::new();
    match marks.received {
        None => {
            if let Some(oldest) = oldest {
                windows.push(Window {
                    after: oldest - TICK,
                    until: now,
                });
            }
        }
        Some(mark) => {
            let lateness = TimeDelta::from_std(lateness).unwrap_or(TimeDelta::MAX);
            windows.push(Window {
                after: mark.checked_sub_signed(lateness).unwrap_or(mark),
                until: now,
            });
            windows.extend(
                requests
                    .iter()
                    .filter(|r| marks.requests.is_none_or(|taken| r.requested > taken))
                    .map(|r| Window {
                        after: r.received_from - TICK,
                        until: r.received_until,
                    }),
            );
        }
    }
    merge(windows)
}

/// `windows` sorted, with overlapping and touching ones joined.
fn merge(mut windows: Vec<Window>) -> Vec<Window> {
    windows.retain(|w| w.after < w.until);
    windows.sort_by_key(|w| w.after);
    let mut merged: Vec<Window> = Vec::with_capacity(windows.len());
    for window in windows {
        match merged.last_mut() {
            Some(last) if window.after <= last.until => last.until = last.until.max(window.until),
            _ => merged.push(window),
        }
    }
    merged
}

/// `window` cut at UTC midnights: each piece holds the events of at most one day.
pub fn day_chunks(window: Window) -> Vec<Window> {
    let mut chunks = Vec::new();
    let mut after = window.after;
    while after < window.until {
        let next_midnight = after
            .date_naive()
            .checked_add_days(Days::new(1))
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .map(|midnight| midnight.and_utc());
        let until = next_midnight.map_or(window.until, |m| m.min(window.until));
        chunks.push(Window { after, until });
        after = until;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_first_refresh_takes_everything_stored() {
        let now = at("2026-12-05T12:00:00Z");
        let oldest = at("2026-12-01T08:00:00Z");
        let windows = windows(&Marks::default(), &[], Some(oldest), now, HOUR);
        assert_eq!(
            windows,
            [Window {
                after: oldest - TICK,
                until: now
            }]
        );
        assert!(super::windows(&Marks::default(), &[], None, now, HOUR).is_empty());
    }

    #[test]
    fn later_refreshes_take_arrivals_and_new_requests() {
        let now = at("2026-12-05T12:00:00Z");
        let marks = Marks {
            received: Some(at("2026-12-05T11:00:00Z")),
            requests: Some(at("2026-12-05T09:00:00Z")),
        };
        let old = Request {
            requested: at("2026-12-05T09:00:00Z"),
            received_from: at("2026-01-01T00:00:00Z"),
            received_until: at("2026-01-02T00:00:00Z"),
        };
        let new = Request {
            requested: at("2026-12-05T11:30:00Z"),
            received_from: at("2026-03-01T10:00:00Z"),
            received_until: at("2026-03-01T11:00:00Z"),
        };
        let windows = windows(&marks, &[old, new], None, now, HOUR);
        assert_eq!(
            windows,
            [
                Window {
                    after: at("2026-03-01T10:00:00Z") - TICK,
                    until: at("2026-03-01T11:00:00Z")
                },
                Window {
                    after: at("2026-12-05T10:00:00Z"),
                    until: now
                },
            ]
        );
    }

    #[test]
    fn overlapping_windows_merge() {
        let now = at("2026-12-05T12:00:00Z");
        let marks = Marks {
            received: Some(at("2026-12-05T11:00:00Z")),
            requests: None,
        };
        let inside = Request {
            requested: at("2026-12-05T11:30:00Z"),
            received_from: at("2026-12-05T08:00:00Z"),
            received_until: at("2026-12-05T10:30:00Z"),
        };
        let windows = windows(&marks, &[inside], None, now, HOUR);
        assert_eq!(
            windows,
            [Window {
                after: at("2026-12-05T08:00:00Z") - TICK,
                until: now
            }]
        );
    }

    #[test]
    fn chunks_end_at_midnight() {
        let window = Window {
            after: at("2026-12-03T22:00:00Z"),
            until: at("2026-12-05T01:00:00Z"),
        };
        let chunks = day_chunks(window);
        assert_eq!(
            chunks,
            [
                Window {
                    after: at("2026-12-03T22:00:00Z"),
                    until: at("2026-12-04T00:00:00Z")
                },
                Window {
                    after: at("2026-12-04T00:00:00Z"),
                    until: at("2026-12-05T00:00:00Z")
                },
                Window {
                    after: at("2026-12-05T00:00:00Z"),
                    until: at("2026-12-05T01:00:00Z")
                },
            ]
        );
    }
}
