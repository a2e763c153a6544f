//! Injected faults: which endpoint they hit, how many times, and the answer they give.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

/// An endpoint of the fake, for counting calls and aiming faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /app/installations/{id}/access_tokens`.
    AccessTokens,
    /// `GET .../hook(s)/.../deliveries` (App, repository or organization hook).
    ListDeliveries,
    /// `GET .../deliveries/{id}`.
    GetDelivery,
    /// `POST .../deliveries/{id}/attempts`.
    Redeliver,
    /// `GET /repos/{o}/{r}/actions/runs/{id}[/attempts/{n}]/logs`.
    RunLogs,
    /// `GET /repos/{o}/{r}/actions/runs/{id}`: the run's status.
    WorkflowRun,
    /// `GET` of a signed log-archive URL on the archive host.
    ArchiveDownload,
    /// Any other path on the API host (answered 404).
    Other,
    /// Every API route (not the archive host); for [`super::FakeGitHub::inject`] and
    /// [`super::FakeGitHub::calls`].
    Any,
}

impl Route {
    fn matches(self, route: Route) -> bool {
        self == route || (self == Route::Any && route != Route::ArchiveDownload)
    }
}

/// A wrong answer to inject. Counts are per [`super::FakeGitHub::inject`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer `code` (e.g. 502) to the next `times` matching calls, then behave.
    Status {
        /// The status to answer.
        code: u16,
        /// How many calls it hits.
        times: usize,
    },
    /// GitHub's secondary rate limit: `status` 403 or 429 with `Retry-After` and GitHub's
    /// message; a 403 also says `x-ratelimit-remaining: 0` and `x-ratelimit-reset`.
    RateLimited {
        /// 403 or 429.
        status: u16,
        /// The `Retry-After` value.
        retry_after_secs: u64,
        /// How many calls it hits.
        times: usize,
    },
    /// Let the first `ok_calls` matching calls through, then apply `then` ("crash after k
    /// recoveries").
    After {
        /// Calls answered normally first.
        ok_calls: usize,
        /// The fault that follows.
        then: Box<Fault>,
    },
    /// Answer `code` to every matching call from now on.
    Always {
        /// The status to answer.
        code: u16,
    },
    /// Answer normally, but only after `millis` milliseconds (for client timeouts).
    Delay {
        /// The pause before the answer.
        millis: u64,
        /// How many calls it hits.
        times: usize,
    },
    /// Archive downloads only: promise the full `Content-Length`, send half the bytes, then
    /// close the connection. Ignored on other routes.
    TruncatedBody {
        /// How many downloads it hits.
        times: usize,
    },
}

/// What a fired fault asks the handler to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fired {
    /// Answer this response instead of the real one.
    Status(u16),
    /// Answer a rate-limit refusal.
    RateLimited { status: u16, retry_after_secs: u64 },
    /// Serve the body cut short.
    Truncate,
    /// Answer normally after this many milliseconds.
    Delay(u64),
}

/// An injected fault with its counters.
#[derive(Debug)]
pub(super) struct FaultRule {
    route: Route,
    /// Matching calls still to let through before the fault applies.
    skip: usize,
    /// Calls the fault still hits; `None`: unlimited.
    remaining: Option<usize>,
    fired: Fired,
}

impl FaultRule {
    pub(super) fn new(route: Route, fault: Fault) -> Self {
        let mut skip = 0;
        let mut fault = fault;
        while let Fault::After { ok_calls, then } = fault {
            skip += ok_calls;
            fault = *then;
        }
        let (remaining, fired) = match fault {
            Fault::Status { code, times } => (Some(times), Fired::Status(code)),
            Fault::RateLimited {
                status,
                retry_after_secs,
                times,
            } => (
                Some(times),
                Fired::RateLimited {
                    status,
                    retry_after_secs,
                },
            ),
            Fault::Always { code } => (None, Fired::Status(code)),
            Fault::TruncatedBody { times } => (Some(times), Fired::Truncate),
            Fault::Delay { millis, times } => (Some(times), Fired::Delay(millis)),
            Fault::After { .. } => unreachable!("unwrapped above"),
        };
        Self {
            route,
            skip,
            remaining,
            fired,
        }
    }
}

/// The first rule that fires for a call to `route`, with its counters advanced.
/// `Truncate` rules only apply where `can_truncate` (the archive host).
pub(super) fn take(rules: &mut [FaultRule], route: Route, can_truncate: bool) -> Option<Fired> {
    for rule in rules.iter_mut() {
        if !rule.route.matches(route) || rule.remaining == Some(0) {
            continue;
        }
        if rule.fired == Fired::Truncate && !can_truncate {
            continue;
        }
        if rule.skip > 0 {
            rule.skip -= 1;
            continue;
        }
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        return Some(rule.fired);
    }
    None
}

/// GitHub's JSON error body.
pub(super) fn error_body(status: u16, message: &str, documentation_url: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({
        "message": message,
        "documentation_url": documentation_url,
        "status": status.to_string(),
    });
    (code, axum::Json(body)).into_response()
}

/// The answer of a fired status or rate-limit fault.
pub(super) fn respond(fired: Fired) -> Response {
    match fired {
        Fired::Status(code) => {
            let reason = StatusCode::from_u16(code)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("Server Error");
            error_body(code, reason, "https://docs.github.com/rest")
        }
        Fired::RateLimited {
            status,
            retry_after_secs,
        } => {
            let mut response = error_body(
                status,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you \
                 try again. If you reach out to GitHub Support for help, please include the \
                 request ID 0000:FAKE:0000000:0000000:00000000.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            );
            let headers: &mut HeaderMap = response.headers_mut();
            headers.insert("retry-after", HeaderValue::from(retry_after_secs));
            if status == 403 {
                let reset = Utc::now().timestamp() + i64::try_from(retry_after_secs).unwrap_or(60);
                headers.insert("x-ratelimit-remaining", HeaderValue::from(0));
                headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
            }
            response
        }
        // The handlers serve truncation and delays themselves; these never get here.
        Fired::Truncate | Fired::Delay(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
