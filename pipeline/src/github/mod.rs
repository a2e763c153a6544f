//! A client of GitHub's REST API for gma's batch jobs: the App's (and hooks') webhook
//! deliveries for `gma retry`, installation tokens and workflow-run logs for `gma leech`.
//!
//! Plain REST over reqwest, like the BigQuery and GCS connectors, because the jobs need what
//! general-purpose clients hide: the `Link` cursor of every page, streamed bodies, the
//! rate-limit headers of every answer, and a redirect to a storage host that must never see the
//! token.
//!
//! - **Auth.** An App authenticates with a short-lived RS256 JWT ([`jwt`]), reused until shortly
//!   before it expires; repository and organization hooks with a token.
//! - **Limits.** Every answer's `x-ratelimit-*` headers are remembered: when the budget is spent
//!   the next call waits for the reset. `403`/`429` with `Retry-After` (secondary limits) wait as
//!   told; `5xx` and connection failures back off exponentially ([`limits`]). Mutations are
//!   spaced to a configurable rate.
//! - **Base URL.** `https://api.github.com` by default; GitHub Enterprise Server
//!   (`https://HOST/api/v3`) and the tests' fake set [`GitHubConfig::api_url`].

pub mod client;
pub mod deliveries;
pub mod error;
pub mod installations;
pub mod jwt;
pub mod limits;
pub mod link;
pub mod logs;
pub mod runs;

pub use client::{Auth, GitHubClient, GitHubConfig, Secret};
pub use deliveries::{Delivery, DeliveryDetail, DeliveryPage, DeliveryRequest, HookRef};
pub use error::GitHubError;
pub use installations::InstallationTokens;
pub use jwt::AppKey;
pub use limits::RetryPolicy;
pub use logs::LogsDownload;
pub use runs::{WorkflowRun, check_segment};

/// GitHub's public API, the default base URL.
pub const GITHUB_API_URL: &str = "https://api.github.com";
