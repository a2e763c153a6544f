//! The REST calls to BigQuery, with bounded retries of what is worth retrying.
//!
//! Every answer is read as JSON and judged here: an HTTP error status, and also a 200 answer that
//! carries a failed job (`status.errorResult`, or `errors` with no result, which is how the
//! emulator reports a bad query), becomes a [`WarehouseError::Remote`] that names the call.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::auth::TokenSource;
use super::config::BigQueryConfig;
use crate::error::error_chain;
use crate::tls::install_crypto_provider;
use crate::warehouse::WarehouseError;

/// Attempts of one request before its error is returned.
const ATTEMPTS: u32 = 5;
/// The first retry's delay; each next one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// How long one HTTP exchange may take (a 10 MB insertAll on a slow link included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// An HTTP answer: its status and its JSON body (`Null` when it had none).
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

/// The BigQuery REST API of one project.
pub(crate) struct Rest {
    http: reqwest::Client,
    base: String,
    tokens: TokenSource,
}

pub(crate) fn remote(message: String) -> WarehouseError {
    WarehouseError::Remote {
        backend: "bigquery",
        message,
    }
}

impl Rest {
    /// A client for `config`'s endpoint and credentials. Makes no network call.
    pub(crate) fn new(config: &BigQueryConfig) -> Result<Self, WarehouseError> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| remote(format!("building the HTTP client: {}", error_chain(&e))))?;
        Ok(Self {
            http,
            base: config.api_base(),
            tokens: TokenSource::new(&config.credentials)?,
        })
    }

    /// Sends one request to `path` (below `.../bigquery/v2`), retrying 5xx, 429, rate-limit
    /// 403s and transport failures with exponential backoff. Only call this for requests that
    /// are safe to repeat (insertAll with insert ids, jobs.query with a request id, creates
    /// whose 409 is taken as success, reads, deletes).
    pub(crate) async fn call(
        &self,
        what: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, WarehouseError> {
        let url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        let mut attempt = 0;
        loop {
            attempt += 1;
            // google-cloud-auth caches the token and retries its own refreshes.
            let token = self.tokens.token().await?;
            let outcome = self
                .send_once(&method, &url, token.as_deref(), query, body)
                .await;
            let retryable = match &outcome {
                Ok(answer) => is_transient(answer),
                Err(error) => error.is_timeout() || error.is_connect() || error.is_request(),
            };
            if !retryable || attempt >= ATTEMPTS {
                return match outcome {
                    Ok(answer) => Ok(answer),
                    Err(error) => Err(remote(format!(
                        "{what}: request to {} failed after {attempt} attempts: {}",
                        self.base,
                        error_chain(&error)
                    ))),
                };
            }
            let backoff = backoff(attempt);
            match &outcome {
                Ok(answer) => tracing::warn!(
                    call = what,
                    status = answer.status.as_u16(),
                    retry_in_ms = backoff.as_millis() as u64,
                    "A BigQuery request failed; retrying."
                ),
                Err(error) => tracing::warn!(
                    call = what,
                    error = %error_chain(error),
                    retry_in_ms = backoff.as_millis() as u64,
                    "A BigQuery request failed; retrying."
                ),
            }
            tokio::time::sleep(backoff).await;
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &str,
        token: Option<&str>,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, reqwest::Error> {
        let mut request = self.http.request(method.clone(), url).query(query);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                // Not JSON (a proxy's HTML error page, say): keep the start of the text.
                let text = String::from_utf8_lossy(&bytes);
                let text: String = text.chars().take(300).collect();
                serde_json::json!({"error": {"message": text}})
            })
        };
        Ok(Answer { status, body })
    }
}

/// Whether an answer is worth another attempt.
fn is_transient(answer: &Answer) -> bool {
    let status = answer.status;
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return true;
    }
    status == StatusCode::FORBIDDEN
        && matches!(
            reason(&answer.body).as_deref(),
            Some("rateLimitExceeded" | "backendError")
        )
}

fn backoff(attempt: u32) -> Duration {
    let exponential = FIRST_BACKOFF.saturating_mul(1 << (attempt - 1).min(10));
    let capped = exponential.min(MAX_BACKOFF);
    // Up to 25% jitter so concurrent writers do not retry in lockstep.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = capped.mul_f64(f64::from(nanos % 1000) / 4000.0);
    capped + jitter
}

/// The first error reason of an error body (`error.errors[0].reason`).
fn reason(body: &Value) -> Option<String> {
    body.pointer("/error/errors/0/reason")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// What an error body says: its message and reason.
pub(crate) fn error_text(body: &Value) -> String {
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("no error message");
    match reason(body) {
        Some(reason) => format!("{message} ({reason})"),
        None => message.to_owned(),
    }
}

impl Answer {
    /// The body of a 2xx answer, or an error naming `what` failed and why.
    pub(crate) fn into_ok(self, what: &str) -> Result<Value, WarehouseError> {
        if self.status.is_success() {
            return Ok(self.body);
        }
        Err(remote(format!(
            "{what}: HTTP {}: {}",
            self.status.as_u16(),
            error_text(&self.body)
        )))
    }
}

/// The failure a job answer (jobs.query, getQueryResults, jobs.get) reports despite a 2xx:
/// `status.errorResult`, or `errors` on an answer without result columns (the emulator's way of
/// saying the query failed). `errors` next to a result are warnings and do not fail the job.
pub(crate) fn job_failure(body: &Value) -> Option<String> {
    let describe = |error: &Value| {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        match error.get("reason").and_then(Value::as_str) {
            Some(reason) => format!("{message} ({reason})"),
            None => message.to_owned(),
        }
    };
    if let Some(error) = body.pointer("/status/errorResult") {
        return Some(describe(error));
    }
    let errors = body.get("errors").and_then(Value::as_array)?;
    let first = errors.first()?;
    let has_result = body
        .pointer("/schema/fields")
        .and_then(Value::as_array)
        .is_some_and(|fields| !fields.is_empty());
    if has_result {
        return None;
    }
    Some(describe(first))
}
