//! An in-process fake of GitHub's REST API for the retry and leech pipelines' tests and
//! benchmarks: a real axum server on `127.0.0.1:0` that the code under test reaches through
//! `GITHUB_API_URL`, plus a second "archive" host that serves workflow-log zips the way
//! GitHub's storage does (a signed, expiring URL that refuses any `Authorization` header).
//!
//! ```no_run
//! # async fn demo() {
//! use gma_testkit::github::{FakeGitHub, HookRef, NewDelivery, Route, Fault};
//! let gh = FakeGitHub::start().await;
//! let id = gh.add_delivery(HookRef::App, NewDelivery::new("guid-1", "push", 500));
//! gh.inject(Route::ListDeliveries, Fault::Status { code: 502, times: 2 });
//! // point the client under test at gh.url() with FakeGitHub::APP_ID and
//! // FakeGitHub::private_key_pem(), run it, then assert on what the fake saw:
//! assert_eq!(gh.redelivery_requests(id), 1);
//! # }
//! ```
//!
//! What it checks, like GitHub: App JWTs (RS256 against the test App's public key, `iss`,
//! `iat`, `exp`), installation tokens it issued (or [`FakeGitHub::PAT`]), cursor pagination
//! with an absolute `Link: <...>; rel="next"`, rate-limit headers on every answer. What it
//! can be told to do wrong: [`Fault`]s per [`Route`] (5xx, 403/429 with `Retry-After`,
//! "after k good calls", truncated archive bodies).
//!
//! Shapes follow GitHub's REST docs: "List deliveries for an app webhook", "Get a delivery",
//! "Redeliver a delivery", "Create an installation access token", "Download workflow run
//! logs" (a 302 whose link expires after a minute).

mod api;
mod faults;
mod genzip;
mod logs;
mod payloads;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::Value;
use tokio::task::JoinHandle;

pub use faults::{Fault, Route};
pub use logs::{Logs, logs_zip};
pub use payloads::workflow_run_completed;

/// The test App's private key (PKCS#1 PEM), `testdata/github-app/test-app-private-key.pem`.
const PRIVATE_KEY_PEM: &str = include_str!("../../../testdata/github-app/test-app-private-key.pem");
/// The matching public key (SPKI PEM) the fake verifies App JWTs with.
const PUBLIC_KEY_PEM: &str = include_str!("../../../testdata/github-app/test-app-public-key.pem");

/// Which webhook a delivery belongs to: the App's own hook, a repository hook or an
/// organization hook. Owner, repository and organization names are case-insensitive, as on
/// GitHub. Written apart from `gma_pipeline::github::HookRef` on purpose: the fake reads GitHub's
/// paths on its own, so a mistake in gma's parsing cannot hide in both.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HookRef {
    /// `GET /app/hook/deliveries` (App JWT).
    App,
    /// `GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries` (token).
    Repo {
        /// Repository owner.
        owner: String,
        /// Repository name.
        repo: String,
        /// The hook's id.
        hook_id: i64,
    },
    /// `GET /orgs/{org}/hooks/{hook_id}/deliveries` (token).
    Org {
        /// Organization login.
        org: String,
        /// The hook's id.
        hook_id: i64,
    },
}

impl HookRef {
    /// A repository hook.
    pub fn repo(owner: &str, repo: &str, hook_id: i64) -> Self {
        Self::Repo {
            owner: owner.into(),
            repo: repo.into(),
            hook_id,
        }
    }

    /// An organization hook.
    pub fn org(org: &str, hook_id: i64) -> Self {
        Self::Org {
            org: org.into(),
            hook_id,
        }
    }

    /// The same hook with lower-cased names, the key the fake stores it under.
    fn normalized(&self) -> Self {
        match self {
            Self::App => Self::App,
            Self::Repo {
                owner,
                repo,
                hook_id,
            } => Self::Repo {
                owner: owner.to_lowercase(),
                repo: repo.to_lowercase(),
                hook_id: *hook_id,
            },
            Self::Org { org, hook_id } => Self::Org {
                org: org.to_lowercase(),
                hook_id: *hook_id,
            },
        }
    }

    /// `X-GitHub-Hook-ID` of this hook.
    fn hook_id(&self) -> i64 {
        match self {
            Self::App => FakeGitHub::APP_HOOK_ID,
            Self::Repo { hook_id, .. } | Self::Org { hook_id, .. } => *hook_id,
        }
    }
}

/// A delivery to add to a hook's list (what GitHub recorded when it tried to deliver).
/// Start from [`NewDelivery::new`] and override fields with struct-update syntax.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// `X-GitHub-Delivery`: the event's id, shared by every attempt to deliver it.
    pub guid: String,
    /// `X-GitHub-Event`, e.g. `push`.
    pub event: String,
    /// The payload's `action`, if any.
    pub action: Option<String>,
    /// The receiver's answer: 2xx is a success, anything else (0: unreachable) a failure.
    pub status_code: u16,
    /// Whether this attempt was a redelivery.
    pub redelivery: bool,
    /// When GitHub tried.
    pub delivered_at: DateTime<Utc>,
    /// The payload object (GitHub's `request.payload`).
    pub payload: Value,
    /// `installation_id`, if the event came through an App installation.
    pub installation_id: Option<i64>,
    /// `repository_id`, if the event concerns a repository.
    pub repository_id: Option<i64>,
}

impl NewDelivery {
    /// A first attempt delivered now, with an empty payload object and no ids.
    pub fn new(guid: &str, event: &str, status_code: u16) -> Self {
        Self {
            guid: guid.into(),
            event: event.into(),
            action: None,
            status_code,
            redelivery: false,
            delivered_at: Utc::now(),
            payload: serde_json::json!({}),
            installation_id: None,
            repository_id: None,
        }
    }
}

/// One delivery attempt as the fake holds it (what the list and detail endpoints answer).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The delivery id (strictly increasing in insertion order, across all hooks).
    pub id: i64,
    /// `X-GitHub-Delivery`.
    pub guid: String,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The payload's `action`.
    pub action: Option<String>,
    /// The receiver's status code (0: unreachable).
    pub status_code: u16,
    /// Whether this attempt was a redelivery.
    pub redelivery: bool,
    /// When it was attempted.
    pub delivered_at: DateTime<Utc>,
    /// Seconds the receiver took.
    pub duration: f64,
    /// The payload object.
    pub payload: Arc<Value>,
    /// `installation_id`.
    pub installation_id: Option<i64>,
    /// `repository_id`.
    pub repository_id: Option<i64>,
    /// The receiver's response body, when the fake really delivered it.
    pub response_body: String,
}

fn stored_delivery(id: i64, delivery: NewDelivery) -> Delivery {
    Delivery {
        id,
        guid: delivery.guid,
        event: delivery.event,
        action: delivery.action,
        status_code: delivery.status_code,
        redelivery: delivery.redelivery,
        delivered_at: delivery.delivered_at,
        duration: 0.05,
        payload: Arc::new(delivery.payload),
        installation_id: delivery.installation_id,
        repository_id: delivery.repository_id,
        response_body: String::new(),
    }
}

/// How a request authenticated itself, as recorded in [`RecordedRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// No `Authorization` header.
    None,
    /// `Bearer` with a three-part JWT.
    Jwt,
    /// `Bearer`/`token` with an installation token the fake issued or [`FakeGitHub::PAT`].
    Token,
    /// Anything else (an unknown or expired token, a malformed header).
    Other,
}

/// One request the fake received (either host).
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Which endpoint it hit.
    pub route: Route,
    /// How it authenticated.
    pub auth_kind: AuthKind,
}

/// An installation token the fake issued.
#[derive(Debug, Clone)]
struct IssuedToken {
    expires_at: DateTime<Utc>,
}

/// A workflow run attempt's logs, keyed by lower-cased owner, repo, run id, attempt.
type RunKey = (String, String, u64, u32);

/// Everything the fake knows; one lock, never held across an `.await`.
struct State {
    next_delivery_id: i64,
    hooks: HashMap<HookRef, Vec<Delivery>>,
    faults: Vec<faults::FaultRule>,
    calls: HashMap<Route, usize>,
    requests: Vec<RecordedRequest>,
    redeliveries: HashMap<i64, usize>,
    tokens: HashMap<String, IssuedToken>,
    tokens_issued: HashMap<u64, usize>,
    token_counter: u64,
    token_lifetime: Duration,
    redelivery_target: Option<String>,
    webhook_secret: String,
    redelivery_outcome: u16,
    rate_limit: u64,
    rate_used: u64,
    rate_reset: i64,
    runs: HashMap<RunKey, Logs>,
    /// `updated_at` of each run attempt (when it was added, unless set).
    run_updated: HashMap<RunKey, DateTime<Utc>>,
    blobs: Vec<Logs>,
    run_blob: HashMap<RunKey, usize>,
    archive_refusals: usize,
    archive_downloads: usize,
}

/// What the handlers share.
struct Shared {
    base_url: String,
    archive_url: String,
    decoding_key: DecodingKey,
    archive_secret: String,
    client: reqwest::Client,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread may poison the lock; the data stays usable for the others.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The running fake: an API host and an archive host on loopback. Dropping it stops both.
pub struct FakeGitHub {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl FakeGitHub {
    /// The test App's id (`iss` of its JWTs, `GITHUB_APP_ID`).
    pub const APP_ID: u64 = 424_242;
    /// The test App's client id, which GitHub also accepts as a JWT's `iss`.
    pub const CLIENT_ID: &'static str = "Iv23liFakeGitHubApp0";
    /// The id of the App's own webhook (`X-GitHub-Hook-ID` of App deliveries).
    pub const APP_HOOK_ID: i64 = 4_242;
    /// A personal access token the fake accepts on token routes (repo/org hooks, logs).
    pub const PAT: &'static str = "ghp_fakegithubpersonalaccesstoken000000";
    /// The webhook secret deliveries are signed with until [`Self::set_redelivery_target`]
    /// sets another.
    pub const DEFAULT_WEBHOOK_SECRET: &'static str = "fake-github-webhook-secret";

    /// Starts both hosts on free loopback ports.
    ///
    /// # Panics
    /// When loopback ports cannot be bound or the bundled key does not parse (a broken
    /// checkout).
    pub async fn start() -> Self {
        let api = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the fake GitHub API port");
        let archive = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the fake archive port");
        let api_addr: SocketAddr = api.local_addr().expect("bound address");
        let archive_addr: SocketAddr = archive.local_addr().expect("bound address");
        let decoding_key = DecodingKey::from_rsa_pem(PUBLIC_KEY_PEM.as_bytes())
            .expect("the test App's public key parses");
        let shared = Arc::new(Shared {
            base_url: format!("http://{api_addr}"),
            archive_url: format!("http://{archive_addr}"),
            decoding_key,
            archive_secret: format!("archive-{}", Utc::now().timestamp_nanos_opt().unwrap_or(0)),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("building the redelivery client"),
            state: Mutex::new(State {
                next_delivery_id: 1,
                hooks: HashMap::new(),
                faults: Vec::new(),
                calls: HashMap::new(),
                requests: Vec::new(),
                redeliveries: HashMap::new(),
                tokens: HashMap::new(),
                tokens_issued: HashMap::new(),
                token_counter: 0,
                token_lifetime: Duration::from_secs(3600),
                redelivery_target: None,
                webhook_secret: Self::DEFAULT_WEBHOOK_SECRET.into(),
                redelivery_outcome: 200,
                rate_limit: 15_000,
                rate_used: 0,
                rate_reset: Utc::now().timestamp() + 3600,
                runs: HashMap::new(),
                run_updated: HashMap::new(),
                blobs: Vec::new(),
                run_blob: HashMap::new(),
                archive_refusals: 0,
                archive_downloads: 0,
            }),
        });
        let api_router = api::router(shared.clone());
        let archive_router = logs::archive_router(shared.clone());
        let tasks = vec![
            tokio::spawn(async move {
                let _ = axum::serve(api, api_router).await;
            }),
            tokio::spawn(async move {
                let _ = axum::serve(archive, archive_router).await;
            }),
        ];
        Self { shared, tasks }
    }

    /// `http://127.0.0.1:PORT`: the value for `GITHUB_API_URL`.
    pub fn url(&self) -> &str {
        &self.shared.base_url
    }

    /// `http://127.0.0.1:PORT` of the archive host the logs redirects point at.
    pub fn archive_url(&self) -> &str {
        &self.shared.archive_url
    }

    /// The test App's private key, PKCS#1 PEM (`GITHUB_PRIVATE_KEY`).
    pub fn private_key_pem() -> &'static str {
        PRIVATE_KEY_PEM
    }

    /// The test App's public key, SPKI PEM.
    pub fn public_key_pem() -> &'static str {
        PUBLIC_KEY_PEM
    }

    /// Signs `claims` as an RS256 JWT with the test App's key (for tests of JWT handling).
    ///
    /// # Panics
    /// When the bundled key does not parse (a broken checkout).
    pub fn sign_jwt(claims: &Value) -> String {
        let key = EncodingKey::from_rsa_pem(PRIVATE_KEY_PEM.as_bytes())
            .expect("the test App's private key parses");
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key)
            .expect("signing a JWT with a valid RSA key")
    }

    /// A valid App JWT as a client should make one: `iat` 60 s in the past, `exp` 9 min ahead.
    pub fn app_jwt() -> String {
        let now = Utc::now().timestamp();
        Self::sign_jwt(&serde_json::json!({
            "iat": now - 60, "exp": now + 540, "iss": Self::APP_ID.to_string()
        }))
    }

    /// Adds a delivery to `hook`'s list and returns its id (strictly increasing).
    pub fn add_delivery(&self, hook: HookRef, delivery: NewDelivery) -> i64 {
        let mut state = self.shared.lock();
        let id = state.next_delivery_id;
        state.next_delivery_id += 1;
        let stored = stored_delivery(id, delivery);
        state
            .hooks
            .entry(hook.normalized())
            .or_default()
            .push(stored);
        id
    }

    /// Adds many deliveries to `hook` under one lock (benchmarks: 100,000 of them) and
    /// returns their ids in order.
    pub fn add_deliveries(
        &self,
        hook: HookRef,
        deliveries: impl IntoIterator<Item = NewDelivery>,
    ) -> Vec<i64> {
        let mut state = self.shared.lock();
        let state = &mut *state;
        let list = state.hooks.entry(hook.normalized()).or_default();
        let mut ids = Vec::new();
        for delivery in deliveries {
            let id = state.next_delivery_id;
            state.next_delivery_id += 1;
            list.push(stored_delivery(id, delivery));
            ids.push(id);
        }
        ids
    }

    /// Every delivery of `hook`, oldest first (including redeliveries the fake appended).
    pub fn deliveries(&self, hook: &HookRef) -> Vec<Delivery> {
        self.shared
            .lock()
            .hooks
            .get(&hook.normalized())
            .cloned()
            .unwrap_or_default()
    }

    /// Makes `POST .../attempts` really deliver: the payload goes to `url` signed with
    /// `webhook_secret` (which also signs the `X-Hub-Signature-256` shown in delivery
    /// details), and the new attempt records the receiver's status (0 if unreachable).
    pub fn set_redelivery_target(&self, url: &str, webhook_secret: &str) {
        let mut state = self.shared.lock();
        state.redelivery_target = Some(url.into());
        state.webhook_secret = webhook_secret.into();
    }

    /// The status code recorded for a redelivery when no target is set (default 200).
    pub fn set_redelivery_outcome(&self, status_code: u16) {
        self.shared.lock().redelivery_outcome = status_code;
    }

    /// How long installation tokens live (default one hour, as on GitHub).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().token_lifetime = lifetime;
    }

    /// The primary rate limit reported in `x-ratelimit-limit` (default 15,000, an App
    /// installation's ceiling on GitHub, so repeated benchmark runs do not spend it). It is
    /// reported, not enforced: `x-ratelimit-remaining` counts down to 0 (and a client that
    /// honours it waits for `x-ratelimit-reset`, an hour after start); use
    /// [`Fault::RateLimited`] to refuse calls.
    pub fn set_rate_limit(&self, limit: u64) {
        self.shared.lock().rate_limit = limit;
    }

    /// Adds a fault for calls to `route` ([`Route::Any`]: every API call). Faults are tried
    /// in the order they were added; the first that fires answers the call.
    pub fn inject(&self, route: Route, fault: Fault) {
        self.shared
            .lock()
            .faults
            .push(faults::FaultRule::new(route, fault));
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// How many requests hit `route` (faulted and refused ones included);
    /// [`Route::Any`]: all API requests.
    pub fn calls(&self, route: Route) -> usize {
        let state = self.shared.lock();
        if route == Route::Any {
            return state
                .calls
                .iter()
                .filter(|(r, _)| **r != Route::ArchiveDownload)
                .map(|(_, n)| n)
                .sum();
        }
        state.calls.get(&route).copied().unwrap_or(0)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// How many `POST .../deliveries/{id}/attempts` were made for `delivery_id` (answered
    /// 202; faulted calls are not counted here).
    pub fn redelivery_requests(&self, delivery_id: i64) -> usize {
        self.shared
            .lock()
            .redeliveries
            .get(&delivery_id)
            .copied()
            .unwrap_or(0)
    }

    /// Total accepted redelivery requests over all deliveries.
    pub fn redelivery_requests_total(&self) -> usize {
        self.shared.lock().redeliveries.values().sum()
    }

    /// How many installation tokens were issued for `installation_id`.
    pub fn tokens_issued(&self, installation_id: u64) -> usize {
        self.shared
            .lock()
            .tokens_issued
            .get(&installation_id)
            .copied()
            .unwrap_or(0)
    }

    /// Adds (or replaces) a workflow run attempt and its logs. `GET .../actions/runs/{id}`
    /// then reports the run's latest attempt: `in_progress` for [`Logs::InProgress`],
    /// `completed` otherwise, `updated_at` now (see [`Self::set_workflow_run_updated_at`]).
    pub fn add_workflow_run(&self, owner: &str, repo: &str, run_id: u64, attempt: u32, logs: Logs) {
        let key = (owner.to_lowercase(), repo.to_lowercase(), run_id, attempt);
        let mut state = self.shared.lock();
        state.run_blob.remove(&key);
        state.run_updated.insert(key.clone(), Utc::now());
        state.runs.insert(key, logs);
    }

    /// Sets the `updated_at` the run endpoint reports for a run attempt added with
    /// [`Self::add_workflow_run`] (for "completed longer ago than the log retention").
    pub fn set_workflow_run_updated_at(
        &self,
        owner: &str,
        repo: &str,
        run_id: u64,
        attempt: u32,
        updated_at: DateTime<Utc>,
    ) {
        let key = (owner.to_lowercase(), repo.to_lowercase(), run_id, attempt);
        self.shared.lock().run_updated.insert(key, updated_at);
    }

    /// A signed archive URL (valid one minute) for a run attempt whose logs are an archive,
    /// as the logs endpoint's `Location` would be: for benchmarks that copy the archives
    /// with another tool. `None` for unknown runs and runs without an archive.
    pub fn signed_archive_url(
        &self,
        owner: &str,
        repo: &str,
        run_id: u64,
        attempt: u32,
    ) -> Option<String> {
        let key = (owner.to_lowercase(), repo.to_lowercase(), run_id, attempt);
        logs::signed_location(&self.shared, &mut self.shared.lock(), key)
    }

    /// How many archive requests were refused because they carried `Authorization`.
    pub fn archive_auth_refusals(&self) -> usize {
        self.shared.lock().archive_refusals
    }

    /// How many archive downloads were served (started with a 200).
    pub fn archive_downloads(&self) -> usize {
        self.shared.lock().archive_downloads
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
