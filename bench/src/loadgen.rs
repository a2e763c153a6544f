//! Load generator for gma's ingest benchmark.
//!
//! Sends signed GitHub-style webhook deliveries over loopback and prints one
//! JSON line of results per invocation on stdout (diagnostics go to stderr).
//!
//! Modes:
//! * `throughput` – closed loop: N workers send back to back on keep-alive
//!   connections; reports requests/s and latency percentiles.
//! * `rate` – open loop at a fixed request rate; latency is measured from each
//!   request's *scheduled* send time so a stalled server cannot hide its stall
//!   (no coordinated omission).
//! * `big` – a burst of large concurrent bodies while sampling the server
//!   process's RSS from `/proc/PID/status`.
//! * `wait-ready` – polls a health URL until it answers 200.
//!
//! Every body carries a unique delivery id, embedded in the body itself and
//! sent as `X-GitHub-Delivery`, and is signed with
//! `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
//!
//! Keeping the client cheap: all the per-delivery bytes (delivery id and the
//! commit sha derived from it) sit in a short fixed-width *tail* at the end of
//! the body. The long common *prefix* is built once, and the HMAC state after
//! absorbing it is computed once; each request then clones that state, hashes
//! only the ~600-byte tail and sends `prefix + tail` as two chunks of one body.
//! Signing therefore costs about a microsecond per request, the prefix is never
//! copied, and an unbounded number of distinct, correctly signed bodies can be
//! produced without a pre-generated pool or its memory.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use clap::{Args as ClapArgs, Parser, Subcommand};
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{Barrier, Semaphore, mpsc};

type HmacSha256 = Hmac<Sha256>;
type HttpClient = Client<HttpConnector, ChunkBody>;

const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Parser)]
#[command(
    name = "gma-loadgen",
    about = "Signed GitHub webhook load generator for the gma ingest benchmark"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Closed loop: N workers send signed deliveries back to back.
    Throughput(ThroughputArgs),
    /// Open loop at a fixed request rate (latency from the scheduled send time).
    Rate(RateArgs),
    /// Concurrent large bodies while sampling the server's RSS.
    Big(BigArgs),
    /// Poll a URL (e.g. /healthz) until it answers 200.
    WaitReady(WaitArgs),
    /// Print one generated push body on stdout and its headers on stderr.
    Sample(SampleArgs),
}

#[derive(Debug, Clone, ClapArgs)]
struct Target {
    /// Webhook URL, e.g. http://127.0.0.1:8080/webhook
    #[arg(long)]
    url: String,
    /// Webhook secret used for X-Hub-Signature-256.
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
    /// Value of the X-GitHub-Event header.
    #[arg(long, default_value = "push")]
    event: String,
    /// Free-form label copied into the JSON result (e.g. "gma" or "bare-axum").
    #[arg(long)]
    label: Option<String>,
}

#[derive(Debug, ClapArgs)]
struct ThroughputArgs {
    #[command(flatten)]
    target: Target,
    /// Concurrent workers (each keeps one keep-alive connection busy).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Length of the measured window.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Unmeasured warm-up before the window.
    #[arg(long, default_value_t = 2.0)]
    warmup_secs: f64,
    /// Size of each JSON body in bytes.
    #[arg(long, default_value_t = 8192)]
    body_bytes: usize,
    /// Per-request timeout.
    #[arg(long, default_value_t = 10.0)]
    timeout_secs: f64,
}

#[derive(Debug, ClapArgs)]
struct RateArgs {
    #[command(flatten)]
    target: Target,
    /// Requests per second to schedule.
    #[arg(long, default_value_t = 5000.0)]
    rate: f64,
    /// Length of the measured window.
    #[arg(long, default_value_t = 10.0)]
    duration_secs: f64,
    /// Unmeasured warm-up at the same rate before the window.
    #[arg(long, default_value_t = 1.0)]
    warmup_secs: f64,
    /// Size of each JSON body in bytes.
    #[arg(long, default_value_t = 8192)]
    body_bytes: usize,
    /// Cap on requests in flight; a scheduled request finding the cap reached
    /// is dropped and counted.
    #[arg(long, default_value_t = 2000)]
    max_in_flight: usize,
    /// Per-request timeout.
    #[arg(long, default_value_t = 10.0)]
    timeout_secs: f64,
}

#[derive(Debug, ClapArgs)]
struct BigArgs {
    #[command(flatten)]
    target: Target,
    /// Number of bodies sent at the same time (each on its own connection).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Exact size of each JSON body in bytes (25 MiB by default).
    #[arg(long, default_value_t = 26_214_400)]
    size_bytes: usize,
    /// PID of the server process whose RSS is sampled.
    #[arg(long)]
    pid: u32,
    /// RSS sampling interval in milliseconds.
    #[arg(long, default_value_t = 10)]
    sample_ms: u64,
    /// Per-request timeout.
    #[arg(long, default_value_t = 120.0)]
    timeout_secs: f64,
}

#[derive(Debug, ClapArgs)]
struct WaitArgs {
    /// URL to poll, e.g. http://127.0.0.1:8080/healthz
    #[arg(long)]
    url: String,
    /// Give up after this long.
    #[arg(long, default_value_t = 30.0)]
    timeout_secs: f64,
}

#[derive(Debug, ClapArgs)]
struct SampleArgs {
    /// Webhook secret used for the signature.
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
    /// Size of the body in bytes.
    #[arg(long, default_value_t = 8192)]
    body_bytes: usize,
}

// ---------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------

/// A request body made of up to two chunks (shared prefix + per-request tail)
/// with an exact length, so hyper sends it with `Content-Length`.
struct ChunkBody {
    chunks: [Option<Bytes>; 2],
    next: usize,
    remaining: u64,
}

impl ChunkBody {
    fn new(prefix: Bytes, tail: Bytes) -> Self {
        let remaining = (prefix.len() + tail.len()) as u64;
        Self {
            chunks: [Some(prefix), Some(tail)],
            next: 0,
            remaining,
        }
    }
}

impl Body for ChunkBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        while this.next < this.chunks.len() {
            let chunk = this.chunks[this.next].take();
            this.next += 1;
            if let Some(chunk) = chunk.filter(|c| !c.is_empty()) {
                this.remaining -= chunk.len() as u64;
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Which body shape the generator produces.
#[derive(Clone, Copy)]
enum Shape {
    /// Realistic GitHub `push` payload of an exact size.
    Push,
    /// `{"action":"x","padding":"aaa…","delivery":"<id>"}` of an exact size.
    Padded,
}

/// Produces distinct, signed deliveries cheaply (see the module docs).
struct Deliveries {
    shape: Shape,
    prefix: Bytes,
    /// HMAC state after absorbing `prefix`.
    mac: HmacSha256,
    /// Run-unique leading part of every delivery id (UUID-like layout).
    run: [u64; 2],
    counter: AtomicU64,
    body_len: usize,
}

/// One signed request ready to send.
struct Delivery {
    id: String,
    signature: String,
    body: ChunkBody,
}

/// Fixed width of a delivery id: `xxxxxxxx-xxxx-4xxx-yxxx-nnnnnnnnnnnn`.
const ID_LEN: usize = 36;

impl Deliveries {
    fn new(shape: Shape, secret: &str, body_len: usize) -> anyhow::Result<Self> {
        let run = run_entropy();
        let tail_len = tail_for(shape, &format_id(run, 0)).len();
        let prefix = match shape {
            Shape::Push => push_prefix(body_len, tail_len)?,
            Shape::Padded => padded_prefix(body_len, tail_len)?,
        };
        ensure!(
            prefix.len() + tail_len == body_len,
            "internal: body length {} != requested {body_len}",
            prefix.len() + tail_len
        );
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
            .map_err(|e| anyhow::anyhow!("invalid HMAC key: {e}"))?;
        mac.update(&prefix);
        Ok(Self {
            shape,
            prefix: Bytes::from(prefix),
            mac,
            run,
            counter: AtomicU64::new(0),
            body_len,
        })
    }

    fn next(&self) -> Delivery {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format_id(self.run, n);
        let tail = tail_for(self.shape, &id);
        debug_assert_eq!(self.prefix.len() + tail.len(), self.body_len);
        let mut mac = self.mac.clone();
        mac.update(tail.as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        Delivery {
            id,
            signature,
            body: ChunkBody::new(self.prefix.clone(), Bytes::from(tail)),
        }
    }

    /// The whole body of the delivery with this id, as one buffer.
    fn full_body(&self, id: &str) -> Vec<u8> {
        let mut v = self.prefix.to_vec();
        v.extend_from_slice(tail_for(self.shape, id).as_bytes());
        v
    }
}

/// 128 bits that differ between runs (and between processes started in the
/// same nanosecond), so delivery ids never repeat against a long-lived server.
fn run_entropy() -> [u64; 2] {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut out = [0u64; 2];
    for (i, slot) in out.iter_mut().enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_usize(i);
        *slot = h.finish();
    }
    out
}

fn format_id(run: [u64; 2], n: u64) -> String {
    let a = (run[0] >> 32) as u32;
    let b = (run[0] >> 16) as u16;
    let c = 0x4000 | (run[0] as u16 & 0x0fff);
    let d = 0x8000 | (run[1] as u16 & 0x3fff);
    let e = (run[1] >> 16) ^ n;
    let id = format!(
        "{a:08x}-{b:04x}-{c:04x}-{d:04x}-{:012x}",
        e & 0xffff_ffff_ffff
    );
    debug_assert_eq!(id.len(), ID_LEN);
    id
}

/// A 40-hex-digit commit sha derived from a delivery id.
fn sha_for(id: &str) -> String {
    let mut s: String = id.chars().filter(|c| *c != '-').collect();
    s.push_str("c0ffee00");
    s
}

/// The per-delivery end of the body. Fixed width for a given shape.
fn tail_for(shape: Shape, id: &str) -> String {
    match shape {
        Shape::Push => {
            let sha = sha_for(id);
            format!(
                concat!(
                    r#""after":"{sha}","#,
                    r#""head_commit":{{"id":"{sha}","tree_id":"4b825dc642cb6eb9a060e54bf8d69288fbee4904","#,
                    r#""distinct":true,"message":"Record webhook delivery {id}","#,
                    r#""timestamp":"2026-05-04T09:30:12Z","#,
                    r#""url":"https://github.com/gma-rs/widgets/commit/{sha}","#,
                    r#""author":{{"name":"Octo Cat","email":"octocat@users.noreply.github.com","username":"octocat"}},"#,
                    r#""committer":{{"name":"GitHub","email":"noreply@github.com","username":"web-flow"}},"#,
                    r#""added":[],"removed":[],"modified":["src/ingest/webhook.rs"]}}}}"#
                ),
                sha = sha,
                id = id
            )
        }
        Shape::Padded => format!(r#"{id}"}}"#),
    }
}

/// `{"action":"x","padding":"aaa…","delivery":"` sized so that
/// prefix + tail is exactly `body_len` bytes.
fn padded_prefix(body_len: usize, tail_len: usize) -> anyhow::Result<Vec<u8>> {
    const HEAD: &str = r#"{"action":"x","padding":""#;
    const MID: &str = r#"","delivery":""#;
    let fixed = HEAD.len() + MID.len() + tail_len;
    ensure!(
        body_len >= fixed,
        "body size must be at least {fixed} bytes"
    );
    let mut v = Vec::with_capacity(body_len - tail_len);
    v.extend_from_slice(HEAD.as_bytes());
    v.resize(v.len() + body_len - fixed, b'a');
    v.extend_from_slice(MID.as_bytes());
    Ok(v)
}

fn user(login: &str, id: u64, kind: &str) -> Value {
    let api = format!("https://api.github.com/users/{login}");
    json!({
        "login": login,
        "id": id,
        "node_id": format!("MDQ6VXNlcj{id:08}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("https://github.com/{login}"),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": kind,
        "user_view_type": "public",
        "site_admin": false
    })
}

fn repository() -> Value {
    let api = "https://api.github.com/repos/gma-rs/widgets";
    let mut repo = json!({
        "id": 781_245_377u64,
        "node_id": "R_kgDOLo-2wQ",
        "name": "widgets",
        "full_name": "gma-rs/widgets",
        "private": false,
        "owner": user("gma-rs", 165_443_210, "Organization"),
        "html_url": "https://github.com/gma-rs/widgets",
        "description": "Widgets used to exercise the gma webhook ingest path",
        "fork": false,
        "url": "https://github.com/gma-rs/widgets"
    });
    let extra = json!({
        "created_at": 1_711_972_800u64,
        "updated_at": "2026-05-01T08:12:44Z",
        "pushed_at": 1_777_887_012u64,
        "git_url": "git://github.com/gma-rs/widgets.git",
        "ssh_url": "git@github.com:gma-rs/widgets.git",
        "clone_url": "https://github.com/gma-rs/widgets.git",
        "svn_url": "https://github.com/gma-rs/widgets",
        "homepage": null,
        "size": 4312,
        "stargazers_count": 128,
        "watchers_count": 128,
        "language": "Rust",
        "has_issues": true,
        "has_projects": false,
        "has_downloads": true,
        "has_wiki": false,
        "has_pages": false,
        "has_discussions": true,
        "forks_count": 9,
        "mirror_url": null,
        "archived": false,
        "disabled": false,
        "open_issues_count": 17,
        "license": {"key": "apache-2.0", "name": "Apache License 2.0", "spdx_id": "Apache-2.0",
                    "url": "https://api.github.com/licenses/apache-2.0", "node_id": "MDc6TGljZW5zZTI="},
        "allow_forking": true,
        "is_template": false,
        "web_commit_signoff_required": false,
        "topics": ["github", "webhooks", "rust"],
        "visibility": "public",
        "forks": 9,
        "open_issues": 17,
        "watchers": 128,
        "default_branch": "main",
        "stargazers": 128,
        "master_branch": "main",
        "organization": "gma-rs",
        "custom_properties": {}
    });
    let map = repo.as_object_mut().expect("object");
    if let Value::Object(extra) = extra {
        map.extend(extra);
    }
    for (key, path) in [
        ("forks_url", "/forks"),
        ("keys_url", "/keys{/key_id}"),
        ("collaborators_url", "/collaborators{/collaborator}"),
        ("teams_url", "/teams"),
        ("hooks_url", "/hooks"),
        ("issue_events_url", "/issues/events{/number}"),
        ("events_url", "/events"),
        ("assignees_url", "/assignees{/user}"),
        ("branches_url", "/branches{/branch}"),
        ("tags_url", "/tags"),
        ("blobs_url", "/git/blobs{/sha}"),
        ("git_tags_url", "/git/tags{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"),
        ("trees_url", "/git/trees{/sha}"),
        ("statuses_url", "/statuses/{sha}"),
        ("languages_url", "/languages"),
        ("stargazers_url", "/stargazers"),
        ("contributors_url", "/contributors"),
        ("subscribers_url", "/subscribers"),
        ("subscription_url", "/subscription"),
        ("commits_url", "/commits{/sha}"),
        ("git_commits_url", "/git/commits{/sha}"),
        ("comments_url", "/comments{/number}"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("contents_url", "/contents/{+path}"),
        ("compare_url", "/compare/{base}...{head}"),
        ("merges_url", "/merges"),
        ("archive_url", "/{archive_format}{/ref}"),
        ("downloads_url", "/downloads"),
        ("issues_url", "/issues{/number}"),
        ("pulls_url", "/pulls{/number}"),
        ("milestones_url", "/milestones{/number}"),
        (
            "notifications_url",
            "/notifications{?since,all,participating}",
        ),
        ("labels_url", "/labels{/name}"),
        ("releases_url", "/releases{/id}"),
        ("deployments_url", "/deployments"),
    ] {
        map.insert(key.to_owned(), Value::String(format!("{api}{path}")));
    }
    repo
}

fn organization() -> Value {
    let api = "https://api.github.com/orgs/gma-rs";
    json!({
        "login": "gma-rs",
        "id": 165_443_210u64,
        "node_id": "O_kgDOCdx9ig",
        "url": api,
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events"),
        "hooks_url": format!("{api}/hooks"),
        "issues_url": format!("{api}/issues"),
        "members_url": format!("{api}/members{{/member}}"),
        "public_members_url": format!("{api}/public_members{{/member}}"),
        "avatar_url": "https://avatars.githubusercontent.com/u/165443210?v=4",
        "description": "GitHub events pipeline"
    })
}

const FILES: [&str; 6] = [
    "src/lib.rs",
    "src/ingest/mod.rs",
    "src/pipeline/views.rs",
    "docs/ingest.md",
    "tests/webhook.rs",
    "Cargo.toml",
];

const FILLER: &str = "Tighten the ingest path so deliveries land durably before the \
    response is sent and duplicate delivery ids are answered idempotently without \
    another write to the event log ";

fn commit(i: usize, message: &str) -> Value {
    let sha = format!("{:040x}", 0x5eed_0000_u64 + i as u64 * 7919);
    json!({
        "id": sha,
        "tree_id": format!("{:040x}", 0x7ee0_0000_u64 + i as u64 * 104_729),
        "distinct": true,
        "message": message,
        "timestamp": format!("2026-05-04T09:{:02}:{:02}Z", (i / 60) % 60, i % 60),
        "url": format!("https://github.com/gma-rs/widgets/commit/{sha}"),
        "author": {"name": "Octo Cat", "email": "octocat@users.noreply.github.com", "username": "octocat"},
        "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
        "added": [],
        "removed": [],
        "modified": [FILES[i % FILES.len()], FILES[(i + 1) % FILES.len()]]
    })
}

/// Everything of a push payload except the per-delivery tail (`after` and
/// `head_commit`), sized so that prefix + tail is exactly `body_len` bytes.
/// Top-level keys are written by hand to keep GitHub's order regardless of
/// serde_json's map implementation.
fn push_prefix(body_len: usize, tail_len: usize) -> anyhow::Result<Vec<u8>> {
    let head = format!(
        concat!(
            r#"{{"ref":"refs/heads/main","#,
            r#""before":"9f1c2a4e0b7d3c5a8e6f1b2d4c3a5e7f9b0d2c4e","#,
            r#""repository":{},"pusher":{},"organization":{},"sender":{},"#,
            r#""created":false,"deleted":false,"forced":false,"base_ref":null,"#,
            r#""compare":"https://github.com/gma-rs/widgets/compare/9f1c2a4e0b7d...head","#,
            r#""commits":"#
        ),
        repository(),
        json!({"name": "octocat", "email": "octocat@users.noreply.github.com"}),
        organization(),
        user("octocat", 583_231, "User"),
    );
    // head + commits + "," + tail
    let total = |commits: &[Value]| -> anyhow::Result<usize> {
        Ok(head.len() + serde_json::to_vec(commits)?.len() + 1 + tail_len)
    };
    let mut commits = vec![commit(0, "Update ingest")];
    ensure!(
        total(&commits)? <= body_len,
        "body size must be at least {} bytes",
        total(&commits)?
    );
    loop {
        let mut more = commits.clone();
        more.push(commit(commits.len(), "Update ingest"));
        if total(&more)? > body_len {
            break;
        }
        commits = more;
    }
    // Pad the last commit's message (plain ASCII, no escaping) to the exact size.
    let deficit = body_len - total(&commits)?;
    let last = commits.last_mut().expect("at least one commit");
    let mut message = String::from("Update ingest");
    if deficit > 0 {
        message.push_str(": ");
        message.extend(FILLER.chars().cycle().take(deficit.saturating_sub(2)));
        message.truncate("Update ingest".len() + deficit);
    }
    last["message"] = Value::String(message);
    let mut out = head.into_bytes();
    out.extend_from_slice(&serde_json::to_vec(&commits)?);
    out.push(b',');
    ensure!(
        out.len() + tail_len == body_len,
        "internal: push payload is {} bytes, wanted {body_len}",
        out.len() + tail_len
    );
    Ok(out)
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

fn make_client(max_idle: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_idle)
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

struct Endpoint {
    uri: Uri,
    event: HeaderValue,
}

impl Endpoint {
    fn new(target: &Target) -> anyhow::Result<Self> {
        let uri: Uri = target.url.parse().context("parsing --url")?;
        ensure!(
            uri.scheme_str() == Some("http"),
            "--url must be an http:// URL"
        );
        Ok(Self {
            uri,
            event: HeaderValue::from_str(&target.event).context("--event")?,
        })
    }

    fn request(&self, d: Delivery) -> Request<ChunkBody> {
        let mut req = Request::new(d.body);
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.uri.clone();
        let h = req.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(
            USER_AGENT,
            HeaderValue::from_static("GitHub-Hookshot/gma-loadgen"),
        );
        h.insert("x-github-event", self.event.clone());
        h.insert(
            "x-github-delivery",
            HeaderValue::from_str(&d.id).expect("ascii id"),
        );
        h.insert(
            "x-hub-signature-256",
            HeaderValue::from_str(&d.signature).expect("ascii signature"),
        );
        req
    }
}

/// Outcome of one request: an HTTP status, or a transport error / timeout.
#[derive(Debug, Clone)]
enum Outcome {
    Status(u16),
    Transport(String),
    Timeout,
}

impl Outcome {
    fn ok(&self) -> bool {
        matches!(self, Outcome::Status(s) if (200..300).contains(s))
    }

    fn key(&self) -> String {
        match self {
            Outcome::Status(s) => s.to_string(),
            Outcome::Transport(_) => "transport_error".to_owned(),
            Outcome::Timeout => "timeout".to_owned(),
        }
    }
}

/// Sends one request and reads the whole response body.
async fn send(client: &HttpClient, req: Request<ChunkBody>, timeout: Duration) -> Outcome {
    let fut = async {
        let resp = client.request(req).await.map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        resp.into_body()
            .collect()
            .await
            .map_err(|e| format!("reading response: {e}"))?;
        Ok::<_, String>(status)
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(status)) => Outcome::Status(status),
        Ok(Err(e)) => Outcome::Transport(e),
        Err(_) => Outcome::Timeout,
    }
}

/// Status / error tally shared by the modes.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<String, u64>,
    errors: u64,
    first_errors: Vec<String>,
}

impl Tally {
    fn add(&mut self, o: &Outcome) {
        *self.counts.entry(o.key()).or_default() += 1;
        if !o.ok() {
            self.errors += 1;
            if self.first_errors.len() < 5 {
                self.first_errors.push(match o {
                    Outcome::Status(s) => format!("HTTP {s}"),
                    Outcome::Transport(e) => e.clone(),
                    Outcome::Timeout => "timeout".to_owned(),
                });
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        for (k, v) in other.counts {
            *self.counts.entry(k).or_default() += v;
        }
        self.errors += other.errors;
        for e in other.first_errors {
            if self.first_errors.len() < 5 {
                self.first_errors.push(e);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/// Nearest-rank percentile of sorted microsecond samples, in milliseconds.
fn pct_ms(sorted_us: &[u64], p: f64) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted_us.len()) - 1;
    Some(round3(sorted_us[idx] as f64 / 1000.0))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn latency_json(prefix: &str, mut us: Vec<u64>) -> serde_json::Map<String, Value> {
    us.sort_unstable();
    let mut m = serde_json::Map::new();
    let mean = if us.is_empty() {
        None
    } else {
        Some(round3(
            us.iter().sum::<u64>() as f64 / us.len() as f64 / 1000.0,
        ))
    };
    m.insert(format!("{prefix}mean_ms"), json!(mean));
    for (name, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9)] {
        m.insert(format!("{prefix}{name}_ms"), json!(pct_ms(&us, p)));
    }
    m.insert(
        format!("{prefix}max_ms"),
        json!(us.last().map(|v| round3(*v as f64 / 1000.0))),
    );
    m
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

fn secs(s: f64, what: &str) -> anyhow::Result<Duration> {
    ensure!(
        s.is_finite() && (0.0..=86_400.0).contains(&s),
        "{what} must be between 0 and 86400 seconds"
    );
    Ok(Duration::from_secs_f64(s))
}

fn base_result(mode: &str, target: &Target) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("mode".into(), json!(mode));
    if let Some(label) = &target.label {
        m.insert("label".into(), json!(label));
    }
    m.insert("url".into(), json!(target.url));
    m.insert("event".into(), json!(target.event));
    m
}

// ---------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------

#[derive(Default)]
struct WorkerStats {
    lat_us: Vec<u64>,
    in_window_ok: u64,
    tally: Tally,
}

async fn throughput(a: ThroughputArgs) -> anyhow::Result<(Value, bool)> {
    ensure!(a.connections > 0, "--connections must be > 0");
    let duration = secs(a.duration_secs, "--duration-secs")?;
    ensure!(!duration.is_zero(), "--duration-secs must be > 0");
    let warmup = secs(a.warmup_secs, "--warmup-secs")?;
    let timeout = secs(a.timeout_secs, "--timeout-secs")?;
    let endpoint = Arc::new(Endpoint::new(&a.target)?);
    let source = Arc::new(Deliveries::new(
        Shape::Push,
        &a.target.secret,
        a.body_bytes,
    )?);
    let client = make_client(a.connections);

    let start = Instant::now();
    let window_start = start + warmup;
    let window_end = window_start + duration;
    let mut workers = Vec::with_capacity(a.connections);
    for _ in 0..a.connections {
        let (client, endpoint, source) = (client.clone(), endpoint.clone(), source.clone());
        workers.push(tokio::spawn(async move {
            let mut st = WorkerStats {
                lat_us: Vec::with_capacity(64 * 1024),
                ..WorkerStats::default()
            };
            while Instant::now() < window_end {
                let req = endpoint.request(source.next());
                let sent = Instant::now();
                let outcome = send(&client, req, timeout).await;
                let done = Instant::now();
                st.tally.add(&outcome);
                // A request counts toward the window if it completed inside it.
                if outcome.ok() && done >= window_start && done < window_end {
                    st.in_window_ok += 1;
                    st.lat_us.push(micros(done - sent));
                }
            }
            st
        }));
    }
    let mut lat = Vec::new();
    let mut ok = 0;
    let mut tally = Tally::default();
    for w in workers {
        let st = w.await.context("worker panicked")?;
        lat.extend(st.lat_us);
        ok += st.in_window_ok;
        tally.merge(st.tally);
    }
    let seconds = duration.as_secs_f64();
    let mut m = base_result("throughput", &a.target);
    m.insert("connections".into(), json!(a.connections));
    m.insert("body_bytes".into(), json!(a.body_bytes));
    m.insert("warmup_secs".into(), json!(a.warmup_secs));
    m.insert("requests".into(), json!(ok));
    m.insert("errors".into(), json!(tally.errors));
    m.insert("seconds".into(), json!(seconds));
    m.insert("rps".into(), json!(round3(ok as f64 / seconds)));
    m.extend(latency_json("", lat));
    m.insert("statuses".into(), json!(tally.counts));
    m.insert(
        "deliveries_sent".into(),
        json!(source.counter.load(Ordering::Relaxed)),
    );
    if !tally.first_errors.is_empty() {
        m.insert("first_errors".into(), json!(tally.first_errors));
    }
    Ok((Value::Object(m), tally.errors == 0 && ok > 0))
}

struct RateSample {
    scheduled: Instant,
    sent: Instant,
    done: Instant,
    outcome: Outcome,
}

async fn rate(a: RateArgs) -> anyhow::Result<(Value, bool)> {
    ensure!(
        a.rate.is_finite() && a.rate > 0.0 && a.rate <= 1_000_000.0,
        "--rate must be in (0, 1e6]"
    );
    ensure!(a.max_in_flight > 0, "--max-in-flight must be > 0");
    let duration = secs(a.duration_secs, "--duration-secs")?;
    ensure!(!duration.is_zero(), "--duration-secs must be > 0");
    let warmup = secs(a.warmup_secs, "--warmup-secs")?;
    let timeout = secs(a.timeout_secs, "--timeout-secs")?;
    let endpoint = Arc::new(Endpoint::new(&a.target)?);
    let source = Arc::new(Deliveries::new(
        Shape::Push,
        &a.target.secret,
        a.body_bytes,
    )?);
    let client = make_client(256);
    let limit = Arc::new(Semaphore::new(a.max_in_flight));
    let (tx, mut rx) = mpsc::unbounded_channel::<RateSample>();

    let total = ((warmup + duration).as_secs_f64() * a.rate).round() as u64;
    let period_ns = 1e9 / a.rate;
    let start = Instant::now() + Duration::from_millis(5);
    let window_start = start + warmup;

    // The schedule is kept by a dedicated thread using `thread::sleep`
    // (nanosleep, ~0.1 ms precision) rather than tokio's 1 ms timer wheel,
    // which would fire requests late in bursts and inflate every latency.
    let handle = tokio::runtime::Handle::current();
    let dispatcher = tokio::task::spawn_blocking(move || {
        let mut dropped = 0u64;
        let mut dropped_in_window = 0u64;
        let mut max_lag = Duration::ZERO;
        for i in 0..total {
            let scheduled = start + Duration::from_nanos((i as f64 * period_ns) as u64);
            let now = Instant::now();
            if scheduled > now {
                std::thread::sleep(scheduled - now);
            }
            max_lag = max_lag.max(Instant::now().saturating_duration_since(scheduled));
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                dropped += 1;
                if scheduled >= window_start {
                    dropped_in_window += 1;
                }
                continue;
            };
            let (client, endpoint, source, tx) =
                (client.clone(), endpoint.clone(), source.clone(), tx.clone());
            handle.spawn(async move {
                let req = endpoint.request(source.next());
                let sent = Instant::now();
                let outcome = send(&client, req, timeout).await;
                let done = Instant::now();
                drop(permit);
                let _ = tx.send(RateSample {
                    scheduled,
                    sent,
                    done,
                    outcome,
                });
            });
        }
        // `tx` is dropped here, so the channel closes once every task is done.
        (dropped, dropped_in_window, max_lag, Instant::now())
    });
    let (dropped, dropped_in_window, max_dispatch_lag, dispatch_end) =
        dispatcher.await.context("dispatcher panicked")?;

    // Every task ends within `timeout`; allow a little more before giving up.
    let drain_deadline = tokio::time::Instant::now() + timeout + Duration::from_secs(5);
    let mut samples = Vec::with_capacity(total as usize);
    loop {
        match tokio::time::timeout_at(drain_deadline, rx.recv()).await {
            Ok(Some(s)) => samples.push(s),
            Ok(None) => break,
            Err(_) => bail!("in-flight requests did not finish before the drain deadline"),
        }
    }

    let mut tally = Tally::default();
    let mut corrected = Vec::with_capacity(samples.len());
    let mut service = Vec::with_capacity(samples.len());
    let mut ok = 0u64;
    let mut last_done = window_start;
    for s in &samples {
        tally.add(&s.outcome);
        if s.scheduled < window_start {
            continue;
        }
        if s.outcome.ok() {
            ok += 1;
            corrected.push(micros(s.done - s.scheduled));
            service.push(micros(s.done - s.sent));
            last_done = last_done.max(s.done);
        }
    }
    let window_secs = duration.as_secs_f64();
    let achieved_secs = (last_done - window_start).as_secs_f64().max(window_secs);
    let mut m = base_result("rate", &a.target);
    m.insert("target_rps".into(), json!(a.rate));
    m.insert("body_bytes".into(), json!(a.body_bytes));
    m.insert("warmup_secs".into(), json!(a.warmup_secs));
    m.insert("seconds".into(), json!(window_secs));
    m.insert("requests".into(), json!(ok));
    m.insert("errors".into(), json!(tally.errors));
    m.insert("dropped".into(), json!(dropped));
    m.insert("dropped_in_window".into(), json!(dropped_in_window));
    m.insert(
        "achieved_rps".into(),
        json!(round3(ok as f64 / achieved_secs)),
    );
    // Latency measured from the scheduled send time (the headline numbers)...
    m.extend(latency_json("", corrected));
    // ...and from the moment the request was actually handed to the client.
    m.extend(latency_json("service_", service));
    m.insert(
        "max_dispatch_lag_ms".into(),
        json!(round3(max_dispatch_lag.as_secs_f64() * 1000.0)),
    );
    m.insert(
        "dispatch_secs".into(),
        json!(round3((dispatch_end - start).as_secs_f64())),
    );
    m.insert("statuses".into(), json!(tally.counts));
    if !tally.first_errors.is_empty() {
        m.insert("first_errors".into(), json!(tally.first_errors));
    }
    Ok((
        Value::Object(m),
        tally.errors == 0 && dropped == 0 && ok > 0,
    ))
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn proc_mem_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{name} missing from /proc/{pid}/status"))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("parsing {line:?}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn kib_to_mib(k: u64) -> f64 {
    round3(k as f64 * 1024.0 / MIB)
}

async fn big(a: BigArgs) -> anyhow::Result<(Value, bool)> {
    ensure!(a.concurrency > 0, "--concurrency must be > 0");
    let timeout = secs(a.timeout_secs, "--timeout-secs")?;
    let interval = Duration::from_millis(a.sample_ms.max(1));
    let endpoint = Arc::new(Endpoint::new(&a.target)?);
    let source = Deliveries::new(Shape::Padded, &a.target.secret, a.size_bytes)?;
    // Build (and sign) every body before anything is sent.
    let deliveries: Vec<Delivery> = (0..a.concurrency).map(|_| source.next()).collect();
    let client = make_client(a.concurrency);

    // Reset the kernel's peak-RSS counter so VmHWM covers this burst only.
    let hwm_reset = std::fs::write(format!("/proc/{}/clear_refs", a.pid), "5").is_ok();
    let (baseline_kib, _) = proc_mem_kib(a.pid)?;

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let pid = a.pid;
        std::thread::spawn(move || {
            let mut peak = 0u64;
            let mut samples = 0u64;
            loop {
                if let Ok((rss, _)) = proc_mem_kib(pid) {
                    peak = peak.max(rss);
                    samples += 1;
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(interval);
            }
            (peak, samples)
        })
    };

    let barrier = Arc::new(Barrier::new(a.concurrency));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(a.concurrency);
    for d in deliveries {
        let (client, endpoint, barrier) = (client.clone(), endpoint.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let id = d.id.clone();
            let req = endpoint.request(d);
            barrier.wait().await;
            let t = Instant::now();
            let outcome = send(&client, req, timeout).await;
            (id, outcome, t.elapsed())
        }));
    }
    let mut tally = Tally::default();
    let mut per_request = Vec::new();
    for t in tasks {
        let (id, outcome, took) = t.await.context("request task panicked")?;
        tally.add(&outcome);
        per_request.push(json!({
            "delivery": id,
            "status": outcome.key(),
            "seconds": round3(took.as_secs_f64()),
        }));
    }
    let elapsed = start.elapsed();
    // Keep sampling briefly after the last response in case memory is still
    // being touched by work that finishes after the response is sent.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let (peak_kib, samples) = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("RSS sampler panicked"))?;
    let (end_kib, hwm_kib) = proc_mem_kib(a.pid)?;
    let peak = if hwm_reset {
        peak_kib.max(hwm_kib)
    } else {
        peak_kib
    };

    let mut m = base_result("big", &a.target);
    m.insert("pid".into(), json!(a.pid));
    m.insert("concurrency".into(), json!(a.concurrency));
    m.insert("size_bytes".into(), json!(a.size_bytes));
    m.insert(
        "requests".into(),
        json!(a.concurrency as u64 - tally.errors),
    );
    m.insert("errors".into(), json!(tally.errors));
    m.insert("seconds".into(), json!(round3(elapsed.as_secs_f64())));
    m.insert("baseline_rss_mib".into(), json!(kib_to_mib(baseline_kib)));
    m.insert("peak_rss_mib".into(), json!(kib_to_mib(peak)));
    m.insert("sampled_peak_rss_mib".into(), json!(kib_to_mib(peak_kib)));
    m.insert("vm_hwm_mib".into(), json!(kib_to_mib(hwm_kib)));
    m.insert("hwm_reset".into(), json!(hwm_reset));
    m.insert("end_rss_mib".into(), json!(kib_to_mib(end_kib)));
    m.insert("rss_samples".into(), json!(samples));
    m.insert("statuses".into(), json!(tally.counts));
    m.insert("per_request".into(), json!(per_request));
    if !tally.first_errors.is_empty() {
        m.insert("first_errors".into(), json!(tally.first_errors));
    }
    Ok((Value::Object(m), tally.errors == 0))
}

async fn wait_ready(a: WaitArgs) -> anyhow::Result<(Value, bool)> {
    let uri: Uri = a.url.parse().context("parsing --url")?;
    let deadline = Instant::now() + secs(a.timeout_secs, "--timeout-secs")?;
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let started = Instant::now();
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        let req = Request::get(uri.clone()).body(Empty::new())?;
        match tokio::time::timeout(Duration::from_secs(2), client.request(req)).await {
            Ok(Ok(resp)) if resp.status().is_success() => {
                let v = json!({
                    "mode": "wait-ready",
                    "url": a.url,
                    "status": resp.status().as_u16(),
                    "seconds": round3(started.elapsed().as_secs_f64()),
                });
                return Ok((v, true));
            }
            Ok(Ok(resp)) => last = format!("HTTP {}", resp.status()),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "timeout".into(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{} not ready after {}s: {last}", a.url, a.timeout_secs)
}

fn sample(a: SampleArgs) -> anyhow::Result<(Value, bool)> {
    use std::io::Write;
    let source = Deliveries::new(Shape::Push, &a.secret, a.body_bytes)?;
    let d = source.next();
    eprintln!("X-GitHub-Delivery: {}", d.id);
    eprintln!("X-Hub-Signature-256: {}", d.signature);
    let mut out = std::io::stdout().lock();
    out.write_all(&source.full_body(&d.id))?;
    out.flush()?;
    Ok((Value::Null, true))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Throughput(a) => throughput(a).await,
        Mode::Rate(a) => rate(a).await,
        Mode::Big(a) => big(a).await,
        Mode::WaitReady(a) => wait_ready(a).await,
        Mode::Sample(a) => sample(a),
    };
    match result {
        Ok((v, clean)) => {
            if !v.is_null() {
                println!("{v}");
            }
            if clean {
                ExitCode::SUCCESS
            } else {
                eprintln!("gma-loadgen: errors, drops or no successful requests (see JSON result)");
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("gma-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(shape: Shape, len: usize) {
        let source = Deliveries::new(shape, "s3cret", len).unwrap();
        let a = source.next();
        let b = source.next();
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), ID_LEN);
        for d in [&a, &b] {
            let body = source.full_body(&d.id);
            assert_eq!(body.len(), len);
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert!(v.is_object());
            assert!(String::from_utf8_lossy(&body).contains(&d.id));
            assert_eq!(d.signature, gma_testkit::sign("s3cret", &body));
            assert_eq!(d.body.size_hint().exact(), Some(len as u64));
        }
    }

    #[test]
    fn push_bodies_are_exact_valid_and_signed() {
        check(Shape::Push, 8192);
        check(Shape::Push, 16_000);
    }

    #[test]
    fn padded_bodies_are_exact_valid_and_signed() {
        check(Shape::Padded, 26_214_400);
        check(Shape::Padded, 1000);
    }

    #[test]
    fn percentiles() {
        let v: Vec<u64> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(pct_ms(&v, 50.0), Some(50.0));
        assert_eq!(pct_ms(&v, 99.0), Some(99.0));
        assert_eq!(pct_ms(&v, 100.0), Some(100.0));
        assert_eq!(pct_ms(&[], 50.0), None);
    }
}
