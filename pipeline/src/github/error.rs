//! Why a call to GitHub failed, with what to do about it.

use chrono::{DateTime, Utc};

/// Errors of [`super::GitHubClient`]. None of them carries a token, a JWT or a key.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// The client's configuration is unusable.
    #[error("GitHub client configuration: {0}")]
    Config(String),
    /// The App's private key is not an RSA key in PEM form.
    #[error(
        "the GitHub App private key is not an RSA private key in PEM form ({0}); set \
         GITHUB_PRIVATE_KEY to the .pem file's text or --github-private-key-file to its path, \
         as downloaded from the App's settings"
    )]
    Key(String),
    /// GitHub could not be reached, also after retries.
    #[error("{method} {path}: cannot reach GitHub after {attempts} attempts")]
    Transport {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// How many times it was tried.
        attempts: u32,
        /// The last error.
        #[source]
        source: reqwest::Error,
    },
    /// GitHub answered with an error status (after retries, for the retryable ones).
    #[error("{method} {path}: GitHub answered HTTP {status}: {message}{hint}")]
    Status {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// GitHub's `message`, or the start of the body.
        message: String,
        /// What to do about it (starts with `; ` when present).
        hint: &'static str,
    },
    /// A rate limit would make the call wait longer than allowed.
    #[error(
        "{method} {path}: GitHub's rate limit is exhausted until {until} (longer than the \
         {max_wait_secs} s this run may wait); run again after that time"
    )]
    RateLimited {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// When GitHub said the limit resets.
        until: DateTime<Utc>,
        /// The longest wait allowed.
        max_wait_secs: u64,
    },
    /// The answer is not the JSON GitHub documents.
    #[error("{path}: GitHub's answer does not parse")]
    Decode {
        /// The request's path.
        path: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

impl crate::error::Transient for GitHubError {
    /// GitHub itself is in trouble or limiting us (5xx, unreachable, rate limited).
    fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::RateLimited { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

impl GitHubError {
    /// The HTTP status GitHub answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What to do about an error status.
    pub(crate) fn hint(status: u16) -> &'static str {
        match status {
            401 => {
                "; the credentials were refused: check GITHUB_APP_ID and GITHUB_PRIVATE_KEY \
                 (the App's current key) or the token, and that the machine's clock is right"
            }
            403 => "; the App or token lacks the permission this call needs",
            404 => {
                "; check the hook, repository or delivery id (an App needs its webhook \
                 enabled; deliveries older than GitHub's retention are gone)"
            }
            422 => "; GitHub refused the request as invalid",
            _ => "",
        }
    }
}
