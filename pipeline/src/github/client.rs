//! The HTTP client: authentication, rate limits, retries.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use reqwest::{Method, Response, StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::GitHubError;
use super::jwt::AppKey;
use super::limits::{self, BudgetTracker, RetryPolicy, Spacing};
use crate::error::error_chain;

/// A secret string (a token): its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// How one request authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    /// As the App itself (JWT): `/app/...` routes.
    App(Arc<AppKey>),
    /// With a token (installation token, personal or fine-grained access token).
    Token(Secret),
    /// Anonymous.
    None,
}

/// Where GitHub is and how to talk to it.
#[derive(Debug, Clone)]
pub struct GitHubConfig {
    /// The REST API's base URL, without a trailing slash: `https://api.github.com`, or
    /// `https://HOST/api/v3` for GitHub Enterprise Server.
    pub api_url: String,
    /// The `User-Agent` GitHub requires.
    pub user_agent: String,
    /// Retries and waits.
    pub retry: RetryPolicy,
    /// Mutations (POSTs) per minute at most, below GitHub's secondary limits (0: unlimited).
    pub mutations_per_minute: u32,
    /// How long one request may take.
    pub timeout: Duration,
}

impl GitHubConfig {
    /// The defaults for `api_url`.
    pub fn new(api_url: impl Into<String>) -> Self {
        Self {
            api_url: api_url.into(),
            user_agent: concat!("gma/", env!("CARGO_PKG_VERSION")).to_owned(),
            retry: RetryPolicy::default(),
            mutations_per_minute: 60,
            timeout: Duration::from_secs(60),
        }
    }

    /// The host name of the API (`github.com` for `api.github.com`), for scoping state such as
    /// checkpoints per GitHub instance.
    pub fn instance(&self) -> String {
        let host = url::Url::parse(&self.api_url)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(port) => format!("{h}:{port}"),
                    None => h.to_owned(),
                })
            })
            .unwrap_or_else(|| self.api_url.clone());
        if host == "api.github.com" {
            "github.com".to_owned()
        } else {
            host
        }
    }
}

/// A GitHub REST client shared by a job's tasks (cheap to clone).
#[derive(Debug, Clone)]
pub struct GitHubClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    config: GitHubConfig,
    budget: BudgetTracker,
    spacing: Spacing,
    requests: AtomicU64,
}

impl GitHubClient {
    /// A client for `config`.
    ///
    /// # Errors
    /// [`GitHubError::Config`] for a base URL that is not http(s).
    pub fn new(mut config: GitHubConfig) -> Result<Self, GitHubError> {
        crate::tls::install_crypto_provider();
        config.api_url = config.api_url.trim().trim_end_matches('/').to_owned();
        let parsed = url::Url::parse(&config.api_url).map_err(|e| {
            GitHubError::Config(format!(
                "GITHUB_API_URL {:?} is not a URL ({e}); use https://api.github.com or \
                 https://HOST/api/v3 for GitHub Enterprise Server",
                config.api_url
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(GitHubError::Config(format!(
                "GITHUB_API_URL {:?} must be an http(s) URL",
                config.api_url
            )));
        }
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10))
            // Redirects are followed by the callers that expect them, never with the token.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                GitHubError::Config(format!("building the HTTP client: {}", error_chain(&e)))
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                spacing: Spacing::per_minute(config.mutations_per_minute),
                http,
                config,
                budget: BudgetTracker::default(),
                requests: AtomicU64::new(0),
            }),
        })
    }

    /// The client's configuration.
    pub fn config(&self) -> &GitHubConfig {
        &self.inner.config
    }

    /// HTTP requests sent so far (retries included), for a job's summary.
    pub fn requests_sent(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// The underlying HTTP client (no auth, no redirects), for fetching from storage hosts.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// GETs `path` (with its query) and parses the JSON answer.
    ///
    /// # Errors
    /// As [`GitHubClient::send`], plus [`GitHubError::Decode`].
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        auth: &Auth,
    ) -> Result<(T, header::HeaderMap), GitHubError> {
        let response = self.send(Method::GET, path, auth, None).await?;
        let headers = response.headers().clone();
        Ok((decode(path, response).await?, headers))
    }

    /// Sends one request to `path` (relative to the API URL, with its query) and returns the
    /// answer once it is a success (2xx or 3xx), waiting out rate limits and retrying server
    /// errors as the [`RetryPolicy`] says. POSTs are spaced to the configured rate.
    ///
    /// # Errors
    /// [`GitHubError::Status`] for an error answer, [`GitHubError::Transport`] when GitHub
    /// cannot be reached, [`GitHubError::RateLimited`] when a limit resets too late.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, GitHubError> {
        let url = format!("{}{path}", self.inner.config.api_url);
        let mut tries = Tries::default();
        loop {
            if let Some(until) = self.inner.budget.blocked_until() {
                self.wait_for(&method, path, until).await?;
            }
            if method == Method::POST {
                self.inner.spacing.wait().await;
            }
            let request = self.request(&method, &url, auth, body)?;
            self.inner.requests.fetch_add(1, Ordering::Relaxed);
            let response = match request.send().await {
                Ok(response) => response,
                Err(source) => {
                    self.unreachable(&method, path, source, &mut tries).await?;
                    continue;
                }
            };
            self.inner.budget.observe(response.headers());
            if let Some(response) = self
                .judge(&method, path, auth, response, &mut tries)
                .await?
            {
                return Ok(response);
            }
        }
    }

    /// The request to `url`, with GitHub's headers, the credentials and the JSON body.
    fn request(
        &self,
        method: &Method,
        url: &str,
        auth: &Auth,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::RequestBuilder, GitHubError> {
        let mut request = self
            .inner
            .http
            .request(method.clone(), url)
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        request = match auth {
            Auth::App(app) => request.bearer_auth(app.token()?),
            Auth::Token(token) => request.bearer_auth(token.expose()),
            Auth::None => request,
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        Ok(request)
    }

    /// GitHub could not be reached: waits before the next try, or gives up after the
    /// policy's attempts.
    async fn unreachable(
        &self,
        method: &Method,
        path: &str,
        source: reqwest::Error,
        tries: &mut Tries,
    ) -> Result<(), GitHubError> {
        let policy = self.inner.config.retry;
        tries.failures += 1;
        if tries.failures >= policy.attempts {
            return Err(GitHubError::Transport {
                method: method.to_string(),
                path: path.to_owned(),
                attempts: tries.failures,
                source: source.without_url(),
            });
        }
        tracing::warn!(%method, path, error = %error_chain(&source.without_url()), "GitHub is unreachable; retrying.");
        tokio::time::sleep(policy.backoff(tries.failures)).await;
        Ok(())
    }

    /// Judges an answer: the response when it is a success, `None` when the request is to be
    /// sent again (after the wait this has done), or the error.
    async fn judge(
        &self,
        method: &Method,
        path: &str,
        auth: &Auth,
        response: Response,
        tries: &mut Tries,
    ) -> Result<Option<Response>, GitHubError> {
        let policy = self.inner.config.retry;
        let status = response.status();
        if status.is_success() || status.is_redirection() {
            return Ok(Some(response));
        }
        if status == StatusCode::UNAUTHORIZED
            && let Auth::App(app) = auth
            && !tries.refreshed_jwt
        {
            // A JWT minted just before a clock step or key rotation: mint a fresh one once.
            tries.refreshed_jwt = true;
            app.forget();
            return Ok(None);
        }
        if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS {
            self.rate_limited(method, path, response, tries).await?;
            return Ok(None);
        }
        if status.is_server_error() {
            tries.failures += 1;
            if tries.failures < policy.attempts {
                tracing::warn!(%method, path, status = status.as_u16(), "GitHub answered with a server error; retrying.");
                tokio::time::sleep(policy.backoff(tries.failures)).await;
                return Ok(None);
            }
        }
        let message = error_message(response).await;
        Err(status_error(method, path, status, message))
    }

    /// A 403 or 429: waits out a rate limit (as GitHub says, or the policy's secondary wait),
    /// or returns the error of a refusal that is no rate limit, or of one limit too many.
    async fn rate_limited(
        &self,
        method: &Method,
        path: &str,
        response: Response,
        tries: &mut Tries,
    ) -> Result<(), GitHubError> {
        let policy = self.inner.config.retry;
        let status = response.status();
        let told = told_wait(response.headers());
        let message = error_message(response).await;
        let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
            || told.is_some()
            || message.to_ascii_lowercase().contains("rate limit");
        if !rate_limited {
            return Err(status_error(method, path, status, message));
        }
        tries.limited += 1;
        if tries.limited > policy.rate_limit_retries {
            return Err(status_error(method, path, status, message));
        }
        let wait = told.unwrap_or(policy.secondary_wait);
        let until = Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        tracing::warn!(%method, path, status = status.as_u16(), wait_secs = wait.as_secs_f64(), "Hit GitHub's rate limit; waiting.");
        self.wait_for(method, path, until).await
    }

    async fn wait_for(
        &self,
        method: &Method,
        path: &str,
        until: chrono::DateTime<Utc>,
    ) -> Result<(), GitHubError> {
        let policy = self.inner.config.retry;
        let wait = (until - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if wait > policy.max_rate_limit_wait {
            return Err(GitHubError::RateLimited {
                method: method.to_string(),
                path: path.to_owned(),
                until,
                max_wait_secs: policy.max_rate_limit_wait.as_secs(),
            });
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

/// What one call of [`GitHubClient::send`] has tried so far.
#[derive(Debug, Default)]
struct Tries {
    /// Failures to reach GitHub and server errors.
    failures: u32,
    /// Rate-limited answers.
    limited: u32,
    /// Whether the App's JWT was minted again after a 401.
    refreshed_jwt: bool,
}

/// How long a rate-limited answer says to wait: `Retry-After`, or until `x-ratelimit-reset`
/// when the budget is spent.
fn told_wait(headers: &header::HeaderMap) -> Option<Duration> {
    if let Some(wait) = limits::retry_after(headers) {
        return Some(wait);
    }
    limits::budget(headers)
        .filter(|budget| budget.remaining == 0)
        .map(|budget| {
            (budget.reset - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                + Duration::from_secs(1)
        })
}

fn status_error(method: &Method, path: &str, status: StatusCode, message: String) -> GitHubError {
    GitHubError::Status {
        method: method.to_string(),
        path: path.to_owned(),
        status: status.as_u16(),
        message,
        hint: GitHubError::hint(status.as_u16()),
    }
}

/// GitHub's `message` of an error answer, or the start of its body.
async fn error_message(response: Response) -> String {
    let text = response.text().await.unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Body {
        message: String,
    }
    match serde_json::from_str::<Body>(&text) {
        Ok(body) => body.message,
        Err(_) => text.chars().take(200).collect(),
    }
}

/// Parses a JSON answer.
pub(crate) async fn decode<T: DeserializeOwned>(
    path: &str,
    response: Response,
) -> Result<T, GitHubError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|source| GitHubError::Transport {
            method: "GET".into(),
            path: path.to_owned(),
            attempts: 1,
            source: source.without_url(),
        })?;
    serde_json::from_slice(&bytes).map_err(|source| GitHubError::Decode {
        path: path.to_owned(),
        source,
    })
}
