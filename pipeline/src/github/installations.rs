//! Installation access tokens: what a GitHub App uses to act on the repositories it is
//! installed on (here: read Actions logs).
//!
//! A token is minted with the App's JWT (`POST /app/installations/{id}/access_tokens`), lives
//! an hour, and is reused by every task of a job until shortly before it expires: one token per
//! installation per hour, not one per run. Concurrent callers for the same installation wait
//! for one request; callers for different installations never wait for each other.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;

use super::client::{Auth, GitHubClient, Secret, decode};
use super::error::GitHubError;
use super::jwt::AppKey;

/// A cached token is replaced once it has less than this left (GitHub's tokens live an hour).
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// A token minted by a concurrent caller is still handed to the callers that waited for it if
/// it has at least this left, even inside the refresh margin (no request storm when GitHub
/// hands out short-lived tokens).
const USABLE_FOR_WAITERS: chrono::Duration = chrono::Duration::seconds(30);

/// The installation tokens of one App, cached per installation. Cheap to clone; clones share
/// the cache, so give one to every task of a job. Its `Debug` shows no token.
#[derive(Clone)]
pub struct InstallationTokens {
    inner: Arc<Inner>,
}

struct Inner {
    client: GitHubClient,
    app: Arc<AppKey>,
    permissions: serde_json::Value,
    refresh_before: chrono::Duration,
    slots: Mutex<HashMap<i64, Arc<Slot>>>,
    issued: AtomicU64,
}

/// One installation's token and the lock that lets one caller at a time mint it.
#[derive(Default)]
struct Slot {
    cached: Mutex<Option<Cached>>,
    /// Held while minting; holds the last attempt's error when it can be handed to the
    /// callers that waited for that attempt.
    mint: tokio::sync::Mutex<Option<GitHubError>>,
    /// Mint attempts finished so far (tells a waiter whether an attempt ended while it waited).
    attempts: AtomicU64,
}

#[derive(Clone)]
struct Cached {
    token: Secret,
    expires_at: DateTime<Utc>,
}

impl Slot {
    /// The cached token if it has more than `left` to live.
    fn valid_for(&self, left: chrono::Duration) -> Option<Secret> {
        let cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        cached
            .as_ref()
            .filter(|c| c.expires_at - Utc::now() > left)
            .map(|c| c.token.clone())
    }
}

impl fmt::Debug for InstallationTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let installations = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("InstallationTokens")
            .field("app_id", &self.inner.app.app_id())
            .field("installations", &installations)
            .field("issued", &self.issued())
            .finish_non_exhaustive()
    }
}

/// GitHub's answer to "create an installation access token" (the fields used).
#[derive(Deserialize)]
struct Minted {
    token: String,
    expires_at: DateTime<Utc>,
}

impl InstallationTokens {
    /// Tokens of the App `app`, minted through `client`, scoped to `actions: read` (enough to
    /// read workflow runs and download their logs).
    pub fn new(client: GitHubClient, app: Arc<AppKey>) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                app,
                permissions: serde_json::json!({ "permissions": { "actions": "read" } }),
                refresh_before: chrono::Duration::from_std(DEFAULT_REFRESH_BEFORE)
                    .unwrap_or_else(|_| chrono::Duration::minutes(5)),
                slots: Mutex::new(HashMap::new()),
                issued: AtomicU64::new(0),
            }),
        }
    }

    /// Replaces a cached token once it has less than `margin` left (default
    /// [`DEFAULT_REFRESH_BEFORE`]). Call before cloning.
    #[must_use]
    pub fn with_refresh_before(self, margin: Duration) -> Self {
        let refresh_before =
            chrono::Duration::from_std(margin).unwrap_or_else(|_| chrono::Duration::minutes(5));
        Self {
            inner: Arc::new(Inner {
                client: self.inner.client.clone(),
                app: self.inner.app.clone(),
                permissions: self.inner.permissions.clone(),
                refresh_before,
                slots: Mutex::new(HashMap::new()),
                issued: AtomicU64::new(self.issued()),
            }),
        }
    }

    /// A token for `installation_id`: the cached one while it has more than the refresh
    /// margin left, else a new one. Concurrent callers for one installation share one
    /// request; when it fails with an answer from GitHub, they all get that error.
    ///
    /// # Errors
    /// [`GitHubError::Config`] for an id that is not positive; otherwise as
    /// [`GitHubClient::send`] (404: the App is not installed there any more, 403: the
    /// installation does not grant `actions: read`), plus [`GitHubError::Decode`].
    pub async fn token(&self, installation_id: i64) -> Result<Secret, GitHubError> {
        if installation_id <= 0 {
            return Err(GitHubError::Config(format!(
                "installation id {installation_id} is not an installation id (GitHub's are \
                 positive); check the events' installation column"
            )));
        }
        let slot = self.slot(installation_id);
        if let Some(token) = slot.valid_for(self.inner.refresh_before) {
            return Ok(token);
        }
        let seen = slot.attempts.load(Ordering::Acquire);
        let mut last_error = slot.mint.lock().await;
        if let Some(token) = slot.valid_for(self.inner.refresh_before) {
            return Ok(token);
        }
        if slot.attempts.load(Ordering::Acquire) != seen {
            // Another caller tried while this one waited: take its result.
            if let Some(token) = slot.valid_for(USABLE_FOR_WAITERS) {
                return Ok(token);
            }
            if let Some(error) = last_error.as_ref().and_then(replay) {
                return Err(error);
            }
        }
        let minted = self.mint(installation_id).await;
        slot.attempts.fetch_add(1, Ordering::Release);
        match minted {
            Ok(minted) => {
                *last_error = None;
                let token = minted.token.clone();
                *slot.cached.lock().unwrap_or_else(PoisonError::into_inner) = Some(minted);
                self.inner.issued.fetch_add(1, Ordering::Relaxed);
                Ok(token)
            }
            Err(error) => {
                *last_error = replay(&error);
                Err(error)
            }
        }
    }

    /// [`Self::token`] as an [`Auth`] for the client's calls.
    ///
    /// # Errors
    /// As [`Self::token`].
    pub async fn auth(&self, installation_id: i64) -> Result<Auth, GitHubError> {
        self.token(installation_id).await.map(Auth::Token)
    }

    /// Drops `installation_id`'s cached token (after GitHub answered 401 to it), so the next
    /// call mints a new one.
    pub fn forget(&self, installation_id: i64) {
        let slot = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&installation_id)
            .cloned();
        if let Some(slot) = slot {
            *slot.cached.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }

    /// Tokens minted so far, over all installations (for a job's summary).
    pub fn issued(&self) -> u64 {
        self.inner.issued.load(Ordering::Relaxed)
    }

    fn slot(&self, installation_id: i64) -> Arc<Slot> {
        self.inner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(installation_id)
            .or_default()
            .clone()
    }

    async fn mint(&self, installation_id: i64) -> Result<Cached, GitHubError> {
        let path = format!("/app/installations/{installation_id}/access_tokens");
        let auth = Auth::App(self.inner.app.clone());
        let response = self
            .inner
            .client
            .send(Method::POST, &path, &auth, Some(&self.inner.permissions))
            .await?;
        let minted: Minted = decode(&path, response).await?;
        tracing::debug!(
            installation_id,
            expires_at = %minted.expires_at,
            "Minted an installation token."
        );
        Ok(Cached {
            token: Secret::new(minted.token),
            expires_at: minted.expires_at,
        })
    }
}

/// A copy of `error` to hand to the callers that waited for the request that failed with it,
/// for the errors that are plain data (GitHub's answer, a rate limit). `None` for transport
/// and decode failures: those callers try themselves.
fn replay(error: &GitHubError) -> Option<GitHubError> {
    match error {
        GitHubError::Status {
            method,
            path,
            status,
            message,
            hint,
        } => Some(GitHubError::Status {
            method: method.clone(),
            path: path.clone(),
            status: *status,
            message: message.clone(),
            hint,
        }),
        GitHubError::RateLimited {
            method,
            path,
            until,
            max_wait_secs,
        } => Some(GitHubError::RateLimited {
            method: method.clone(),
            path: path.clone(),
            until: *until,
            max_wait_secs: *max_wait_secs,
        }),
        GitHubError::Config(message) => Some(GitHubError::Config(message.clone())),
        GitHubError::Key(message) => Some(GitHubError::Key(message.clone())),
        _ => None,
    }
}

/// Tokens from the fake GitHub, for this module's and its siblings' tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::testing::github_app;
    use gma_testkit::github::FakeGitHub;

    /// The installation [`token`] mints for.
    pub(crate) const INSTALLATION: i64 = 31_337;

    /// An installation token of [`INSTALLATION`] from `gh`.
    pub(crate) async fn token(_gh: &FakeGitHub, client: &GitHubClient) -> Auth {
        InstallationTokens::new(client.clone(), github_app())
            .auth(INSTALLATION)
            .await
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{fake_github_client, github_app, github_client};
    use gma_testkit::github::{FakeGitHub, Fault, Route};

    #[tokio::test]
    async fn fifty_concurrent_callers_share_one_token_per_installation() {
        let gh = FakeGitHub::start().await;
        // Slow answers, so every caller arrives while the first request is in flight.
        gh.inject(
            Route::AccessTokens,
            Fault::Delay {
                millis: 300,
                times: 2,
            },
        );
        let tokens = InstallationTokens::new(fake_github_client(&gh), github_app());
        let calls: Vec<_> = (0..50)
            .map(|n| {
                let tokens = tokens.clone();
                let installation = if n % 5 == 0 { 8 } else { 7 };
                tokio::spawn(async move { (installation, tokens.token(installation).await) })
            })
            .collect();
        let mut seen: HashMap<i64, Vec<String>> = HashMap::new();
        for call in calls {
            let (installation, token) = call.await.unwrap();
            seen.entry(installation)
                .or_default()
                .push(token.unwrap().expose().to_owned());
        }
        assert_eq!(gh.tokens_issued(7), 1);
        assert_eq!(gh.tokens_issued(8), 1);
        assert_eq!(tokens.issued(), 2);
        assert_eq!(seen[&7].len(), 40);
        assert!(seen[&7].iter().all(|t| *t == seen[&7][0]));
        assert!(seen[&8].iter().all(|t| *t == seen[&8][0]));
        assert_ne!(seen[&7][0], seen[&8][0]);
        // The token was asked for with the App's JWT and only `actions: read`.
        let requests = gh.requests();
        assert!(
            requests
                .iter()
                .filter(|r| r.route == Route::AccessTokens)
                .all(|r| r.auth_kind == gma_testkit::github::AuthKind::Jwt)
        );
        // Cached: a later call sends nothing.
        tokens.token(7).await.unwrap();
        assert_eq!(gh.calls(Route::AccessTokens), 2);
    }

    #[tokio::test]
    async fn one_installation_does_not_wait_for_another() {
        let gh = FakeGitHub::start().await;
        gh.inject(
            Route::AccessTokens,
            Fault::Delay {
                millis: 2_000,
                times: 1,
            },
        );
        let tokens = InstallationTokens::new(fake_github_client(&gh), github_app());
        let slow = tokio::spawn({
            let tokens = tokens.clone();
            async move { tokens.token(1).await }
        });
        tokio::time::sleep(Duration::from_millis(150)).await;
        let started = std::time::Instant::now();
        tokens.token(2).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(1_500),
            "installation 2 waited for installation 1: {:?}",
            started.elapsed()
        );
        assert!(!slow.is_finished());
        slow.await.unwrap().unwrap();
        assert_eq!(tokens.issued(), 2);
    }

    #[tokio::test]
    async fn re_mints_near_expiry_and_after_forget() {
        let gh = FakeGitHub::start().await;
        let tokens = InstallationTokens::new(fake_github_client(&gh), github_app());
        // Tokens that live 4 minutes are inside the 5-minute margin at once: never reused.
        gh.set_token_lifetime(Duration::from_secs(4 * 60));
        let first = tokens.token(5).await.unwrap();
        let second = tokens.token(5).await.unwrap();
        assert_ne!(first, second);
        assert_eq!(gh.tokens_issued(5), 2);

        // An hour-long token is reused until `forget`.
        gh.set_token_lifetime(Duration::from_secs(3600));
        let third = tokens.token(5).await.unwrap();
        assert_eq!(tokens.token(5).await.unwrap(), third);
        assert_eq!(gh.tokens_issued(5), 3);
        tokens.forget(5);
        let fourth = tokens.token(5).await.unwrap();
        assert_ne!(fourth, third);
        assert_eq!(gh.tokens_issued(5), 4);
        tokens.forget(99); // an installation never seen: nothing to do
        assert_eq!(tokens.issued(), 4);
    }

    #[tokio::test]
    async fn a_token_is_reused_until_the_margin_then_replaced() {
        let gh = FakeGitHub::start().await;
        gh.set_token_lifetime(Duration::from_secs(4));
        let tokens = InstallationTokens::new(fake_github_client(&gh), github_app())
            .with_refresh_before(Duration::from_secs(2));
        let first = tokens.token(3).await.unwrap();
        assert_eq!(tokens.token(3).await.unwrap(), first);
        assert_eq!(gh.tokens_issued(3), 1);
        // expires_at has whole seconds: after 3 s at most 1 s is left, inside the margin.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let second = tokens.token(3).await.unwrap();
        assert_ne!(second, first);
        assert_eq!(gh.tokens_issued(3), 2);
    }

    #[tokio::test]
    async fn waiters_share_a_failure_instead_of_repeating_it() {
        let gh = FakeGitHub::start().await;
        gh.inject(Route::AccessTokens, Fault::Always { code: 502 });
        // Two tries 20 ms apart: the first caller holds the lock while the others queue.
        let tokens = InstallationTokens::new(github_client(gh.url(), 2), github_app());
        let calls: Vec<_> = (0..20)
            .map(|_| {
                let tokens = tokens.clone();
                tokio::spawn(async move { tokens.token(9).await })
            })
            .collect();
        for call in calls {
            let error = call.await.unwrap().unwrap_err();
            assert_eq!(error.status(), Some(502), "{error}");
        }
        assert_eq!(gh.calls(Route::AccessTokens), 2, "one call, retried once");
        assert_eq!(tokens.issued(), 0);
        // A later call tries again, and succeeds once GitHub is back.
        gh.clear_faults();
        assert!(tokens.token(9).await.is_ok());
    }

    #[tokio::test]
    async fn tokens_stay_out_of_debug_output_and_errors() {
        let gh = FakeGitHub::start().await;
        let tokens = InstallationTokens::new(fake_github_client(&gh), github_app());
        let token = tokens.token(4).await.unwrap();
        let debug = format!("{tokens:?} {token:?} {:?}", tokens.auth(4).await.unwrap());
        assert!(!debug.contains(token.expose()), "{debug}");
        assert!(debug.contains("issued: 1"), "{debug}");
        assert!(tokens.token(0).await.is_err());
        gh.inject(
            Route::AccessTokens,
            Fault::Status {
                code: 404,
                times: 1,
            },
        );
        tokens.forget(4);
        let error = tokens.token(4).await.unwrap_err().to_string();
        assert!(error.contains("404"), "{error}");
        assert!(!error.contains(token.expose()), "{error}");
    }
}
