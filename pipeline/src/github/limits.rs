//! GitHub's rate limits as a client sees them: the `x-ratelimit-*` budget of every answer,
//! `Retry-After` on secondary limits, backoff for server errors, and spacing for mutations.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::header::HeaderMap;
use tokio::time::Instant;

/// How a client retries and waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries of one call that meets 5xx answers or connection failures, the first included.
    pub attempts: u32,
    /// The first backoff; each further one doubles, up to `max_delay`.
    pub base_delay: Duration,
    /// The longest backoff between two tries.
    pub max_delay: Duration,
    /// How long a call may wait for a rate limit to reset; longer fails the call
    /// ([`super::GitHubError::RateLimited`]) so a scheduled job ends instead of hanging.
    pub max_rate_limit_wait: Duration,
    /// How long to wait on a secondary rate limit that names no time (GitHub: at least a
    /// minute).
    pub secondary_wait: Duration,
    /// Rate-limited answers one call accepts before it fails.
    pub rate_limit_retries: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_rate_limit_wait: Duration::from_secs(15 * 60),
            secondary_wait: Duration::from_secs(60),
            rate_limit_retries: 10,
        }
    }
}

impl RetryPolicy {
    /// The backoff before try `attempt + 1` (`attempt` counts from 1), with up to 25% jitter so
    /// concurrent callers do not retry in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self.base_delay.saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        let capped = doubled.min(self.max_delay);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        capped + capped.mul_f64(f64::from(nanos % 1000) / 4000.0)
    }
}

/// What one answer's headers say about the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// `x-ratelimit-remaining`.
    pub remaining: u64,
    /// `x-ratelimit-reset`, when the budget refills.
    pub reset: DateTime<Utc>,
}

/// Reads `x-ratelimit-remaining` and `x-ratelimit-reset`.
pub fn budget(headers: &HeaderMap) -> Option<Budget> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let remaining = u64::try_from(number("x-ratelimit-remaining")?).ok()?;
    let reset = Utc
        .timestamp_opt(number("x-ratelimit-reset")?, 0)
        .single()?;
    Some(Budget { remaining, reset })
}

/// `Retry-After` in seconds (GitHub sends seconds; an HTTP date is accepted too).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

/// The newest budget seen, shared by every call of a client: once it is spent, calls wait for
/// the reset instead of spending GitHub's patience.
#[derive(Debug, Default)]
pub struct BudgetTracker {
    latest: Mutex<Option<Budget>>,
}

impl BudgetTracker {
    /// Records an answer's budget.
    pub fn observe(&self, headers: &HeaderMap) {
        if let Some(budget) = budget(headers) {
            let mut latest = self
                .latest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *latest = Some(budget);
        }
    }

    /// When the next call may go: `None` now, or the reset time of a spent budget.
    pub fn blocked_until(&self) -> Option<DateTime<Utc>> {
        let latest = self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        latest
            .filter(|b| b.remaining == 0 && b.reset > Utc::now())
            .map(|b| b.reset)
    }
}

/// Spaces mutations (POSTs) to at most a number per minute, across every task of a client,
/// below GitHub's secondary limit on content-creating requests.
#[derive(Debug)]
pub struct Spacing {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Spacing {
    /// At most `per_minute` calls a minute (0: no spacing).
    pub fn per_minute(per_minute: u32) -> Self {
        let interval = if per_minute == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(60) / per_minute
        };
        Self {
            interval,
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits for this call's slot.
    pub async fn wait(&self) {
        if self.interval.is_zero() {
            return;
        }
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn reads_the_budget_and_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("4102444800"));
        headers.insert("retry-after", HeaderValue::from_static("7"));
        let budget = budget(&headers).unwrap();
        assert_eq!(budget.remaining, 0);
        assert_eq!(budget.reset.timestamp(), 4_102_444_800);
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let tracker = BudgetTracker::default();
        assert_eq!(tracker.blocked_until(), None);
        tracker.observe(&headers);
        assert_eq!(tracker.blocked_until(), Some(budget.reset));
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("4999"));
        tracker.observe(&headers);
        assert_eq!(tracker.blocked_until(), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            ..RetryPolicy::default()
        };
        let first = policy.backoff(1);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(125));
        let second = policy.backoff(2);
        assert!(second >= Duration::from_millis(200) && second <= Duration::from_millis(250));
        let late = policy.backoff(40);
        assert!(late >= Duration::from_millis(350) && late <= Duration::from_millis(438));
    }

    #[tokio::test]
    async fn spacing_lets_one_call_through_per_interval() {
        let spacing = std::sync::Arc::new(Spacing::per_minute(3000));
        let start = Instant::now();
        let calls: Vec<_> = (0..5)
            .map(|_| {
                let spacing = spacing.clone();
                tokio::spawn(async move {
                    spacing.wait().await;
                    Instant::now()
                })
            })
            .collect();
        let mut times = Vec::new();
        for call in calls {
            times.push(call.await.unwrap() - start);
        }
        times.sort();
        assert!(times[0] < Duration::from_millis(20), "{times:?}");
        assert!(times[4] >= Duration::from_millis(80), "{times:?}");
    }
}
