//! What a refresh takes: per typed table, windows of `received` (after, until], cut into chunks
//! of whole days holding a bounded number of its events. Pure functions of the watermarks, the
//! requests, the events per day and the clock.

use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use serde::Deserialize;

/// The pipeline name under which a typed table's refresh keeps its watermark on `received`.
pub fn received_mark(table: &str) -> String {
    format!("views_refresh/{table}")
}

/// The pipeline name under which a typed table's refresh keeps the newest request it took.
pub fn requests_mark(table: &str) -> String {
    format!("views_refresh_requests/{table}")
}

/// The pipeline name under which a typed table's first build keeps its progress: every event
/// received up to it is in the table, so a build stopped midway (a task timeout, a kill) goes on
/// from there instead of starting over.
pub fn built_mark(table: &str) -> String {
    format!("views_refresh_built/{table}")
}

/// How far a typed table has been refreshed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    /// Every event received at or before this (less the lateness allowance) is in the table;
    /// `None` before its first refresh.
    pub received: Option<DateTime<Utc>>,
    /// The newest `refresh_requests` row taken.
    pub requests: Option<DateTime<Utc>>,
    /// Before the first refresh finished, how far it got ([`built_mark`]).
    pub built: Option<DateTime<Utc>>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// Exclusive start.
    pub after: DateTime<Utc>,
    /// Inclusive end.
    pub until: DateTime<Utc>,
}

const TICK: TimeDelta = TimeDelta::microseconds(1);

/// The windows one table takes, merged and in order: on its first refresh everything stored
/// (after what a build stopped midway already took, less `lateness`), else the arrivals since
/// its watermark less `lateness`; and every request newer than the one it took last.
pub fn windows(
    marks: &Marks,
    requests: &[Request],
    now: DateTime<Utc>,
    lateness: Duration,
) -> Vec<Window> {
    let lateness = TimeDelta::from_std(lateness).unwrap_or(TimeDelta::MAX);
    let back = |mark: DateTime<Utc>| mark.checked_sub_signed(lateness).unwrap_or(mark);
    let after = match (marks.received, marks.built) {
        (Some(mark), _) => back(mark),
        (None, Some(built)) => back(built),
        (None, None) => DateTime::UNIX_EPOCH,
    };
    let mut windows = vec![Window { after, until: now }];
    windows.extend(
        requests
            .iter()
            .filter(|r| marks.requests.is_none_or(|taken| r.requested > taken))
            .map(|r| Window {
                after: r.received_from - TICK,
                until: r.received_until,
            }),
    );
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

/// The window of `received` that day `day` covers: after the microsecond before its midnight,
/// until the microsecond before the next, as `DATE(received)` counts it.
fn day_window(day: NaiveDate) -> Option<Window> {
    let midnight = |day: NaiveDate| day.and_hms_opt(0, 0, 0).map(|m| m.and_utc() - TICK);
    Some(Window {
        after: midnight(day)?,
        until: midnight(day.checked_add_days(Days::new(1))?)?,
    })
}

/// `window` cut into chunks: from a day `days` says holds events (with how many, in any order)
/// to a later one, packed while they hold at most `max_events` together, each chunk clipped to
/// the window; days holding none are never the start or end of a chunk; a day holding more is
/// cut into equal spans of time instead ([`slices`]), so a chunk's size stays bounded however
/// busy a day is. Oldest first.
pub fn chunks(window: Window, days: &[(NaiveDate, u64)], max_events: u64) -> Vec<Window> {
    let mut days: Vec<(NaiveDate, u64)> = days.iter().copied().filter(|(_, n)| *n > 0).collect();
    days.sort_unstable();
    let mut chunks: Vec<(Window, u64)> = Vec::new();
    for (day, events) in days {
        let Some(covered) = day_window(day) else {
            continue;
        };
        let piece = Window {
            after: covered.after.max(window.after),
            until: covered.until.min(window.until),
        };
        if piece.after >= piece.until {
            continue;
        }
        if events > max_events {
            chunks.extend(slices(piece, events, max_events));
            continue;
        }
        match chunks.last_mut() {
            Some((last, held)) if *held + events <= max_events => {
                last.until = piece.until;
                *held += events;
            }
            _ => chunks.push((piece, events)),
        }
    }
    chunks.into_iter().map(|(chunk, _)| chunk).collect()
}

/// `piece` (one day, or part of one) holding `events`, more than `max_events`, cut into equal
/// spans of time expected to hold at most `max_events` each (a day's events spread over it),
/// each with its share of the events.
fn slices(piece: Window, events: u64, max_events: u64) -> Vec<(Window, u64)> {
    let count = events.div_ceil(max_events.max(1)).max(1);
    let span = (piece.until - piece.after) / i32::try_from(count).unwrap_or(i32::MAX);
    let mut slices = Vec::new();
    let mut after = piece.after;
    for i in 1..=count {
        let until = if i == count {
            piece.until
        } else {
            (after + span).min(piece.until)
        };
        if after < until {
            slices.push((Window { after, until }, events / count));
        }
        after = until;
    }
    slices
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
        let windows = windows(&Marks::default(), &[], now, HOUR);
        assert_eq!(
            windows,
            [Window {
                after: DateTime::UNIX_EPOCH,
                until: now
            }]
        );
        let resumed = Marks {
            built: Some(at("2025-06-01T00:00:00Z")),
            ..Marks::default()
        };
        assert_eq!(
            super::windows(&resumed, &[], now, HOUR),
            [Window {
                after: at("2025-05-31T23:00:00Z"),
                until: now
            }]
        );
    }

    #[test]
    fn later_refreshes_take_arrivals_and_new_requests() {
        let now = at("2026-12-05T12:00:00Z");
        let marks = Marks {
            received: Some(at("2026-12-05T11:00:00Z")),
            requests: Some(at("2026-12-05T09:00:00Z")),
            ..Marks::default()
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
        let windows = windows(&marks, &[old, new], now, HOUR);
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
            ..Marks::default()
        };
        let inside = Request {
            requested: at("2026-12-05T11:30:00Z"),
            received_from: at("2026-12-05T08:00:00Z"),
            received_until: at("2026-12-05T10:30:00Z"),
        };
        let windows = windows(&marks, &[inside], now, HOUR);
        assert_eq!(
            windows,
            [Window {
                after: at("2026-12-05T08:00:00Z") - TICK,
                until: now
            }]
        );
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn chunks_pack_the_days_holding_events() {
        let window = Window {
            after: at("2026-12-01T22:00:00Z"),
            until: at("2026-12-09T01:00:00Z"),
        };
        let days = [
            (day("2026-12-03"), 40),
            (day("2026-12-01"), 10),
            (day("2026-12-02"), 30),
            (day("2026-12-04"), 0),
            (day("2026-12-06"), 500),
            (day("2026-12-07"), 20),
            (day("2026-12-09"), 5),
        ];
        let before = |text: &str| at(text) - TICK;
        assert_eq!(
            chunks(window, &days, 100),
            [
                // 12-01 (from the window's start) to 12-03: 80 events.
                Window {
                    after: at("2026-12-01T22:00:00Z"),
                    until: before("2026-12-04T00:00:00Z")
                },
                // 12-06, larger than the limit: five spans of 4.8 hours.
                Window {
                    after: before("2026-12-06T00:00:00Z"),
                    until: before("2026-12-06T04:48:00Z")
                },
                Window {
                    after: before("2026-12-06T04:48:00Z"),
                    until: before("2026-12-06T09:36:00Z")
                },
                Window {
                    after: before("2026-12-06T09:36:00Z"),
                    until: before("2026-12-06T14:24:00Z")
                },
                Window {
                    after: before("2026-12-06T14:24:00Z"),
                    until: before("2026-12-06T19:12:00Z")
                },
                Window {
                    after: before("2026-12-06T19:12:00Z"),
                    until: before("2026-12-07T00:00:00Z")
                },
                // 12-07 to the window's end, across 12-08 which held nothing: 25 events.
                Window {
                    after: before("2026-12-07T00:00:00Z"),
                    until: at("2026-12-09T01:00:00Z")
                },
            ]
        );
        assert!(chunks(window, &[(day("2026-11-30"), 9)], 100).is_empty());
    }

    #[test]
    fn an_event_at_midnight_is_in_its_day() {
        let window = Window {
            after: DateTime::UNIX_EPOCH,
            until: at("2026-12-09T00:00:00Z"),
        };
        let chunk = chunks(window, &[(day("2026-12-03"), 1)], 100);
        let midnight = at("2026-12-03T00:00:00Z");
        assert!(chunk[0].after < midnight && midnight <= chunk[0].until);
        let next = at("2026-12-04T00:00:00Z");
        assert!(next > chunk[0].until);
    }
}
