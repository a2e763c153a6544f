//! The fake GitHub API of the retry benchmark, as a process: `gma_testkit::github::FakeGitHub`
//! loaded with a backlog of App webhook deliveries, some of which failed.
//!
//! ```sh
//! gma-fake-github --deliveries 100000 --failure-rate 0.01 --stats-file /tmp/stats.json
//! gma-fake-github --print-jwt        # an App JWT for curl, then exit
//! ```
//!
//! It starts the fake on a free loopback port, adds `--deliveries` deliveries to the App's hook
//! (ids increasing, `delivered_at` spread evenly over the last 47 hours, oldest first, each a
//! distinct GUID with a ~1.5 KB payload), of which `round(deliveries × failure-rate)` failed
//! (status 502 or 0, one at a random place in each equal slice of the list, so they are spread
//! over it), prints one JSON line on stdout (`GITHUB_API_URL`, `GITHUB_APP_ID`, the counts)
//! and serves until SIGTERM or SIGINT (or the end of stdin, with `--until-stdin-closes`).
//!
//! With `--landed-ndjson PATH` it also writes the deliveries that succeeded in GMA's BigQuery
//! export shape, for `gma import`: the events table a real run queries holds them.
//!
//! What it served is written as one JSON object to `--stats-file`: on SIGUSR1 (a snapshot; it
//! keeps serving) and when it stops. Fields: `list_calls`, `redelivery_posts`,
//! `redeliveries_accepted`, `api_calls` (every API request), and for the failed deliveries
//! `failed_redelivered_once`, `failed_not_redelivered`, `failed_redelivered_more` plus
//! `other_redeliveries` (accepted redeliveries of deliveries that had not failed).
//!
//! Dev tooling for `bench/retry.sh`; never shipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use chrono::Utc;
use clap::Parser;
use gma_testkit::github::{FakeGitHub, HookRef, NewDelivery, Route};
use serde_json::{Value, json};
use sha2::Digest;
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{SignalKind, signal};

/// Serves a fake GitHub API with a backlog of App webhook deliveries.
#[derive(Debug, Parser)]
struct Args {
    /// Deliveries on the App's hook.
    #[arg(long, default_value_t = 100_000)]
    deliveries: u64,
    /// Share of the deliveries that failed (status 502 or 0), 0 to 1.
    #[arg(long, default_value_t = 0.01)]
    failure_rate: f64,
    /// Seed of the GUIDs, payloads and failure positions.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write what was served (JSON), on SIGUSR1 and when stopping.
    #[arg(long)]
    stats_file: Option<PathBuf>,
    /// Also write every delivery that succeeded as one line of GMA's BigQuery export shape
    /// (NDJSON for `gma import`), so a warehouse can hold the events that did land.
    #[arg(long)]
    landed_ndjson: Option<PathBuf>,
    /// Also stop when stdin reaches its end (for a parent that holds a pipe to it).
    #[arg(long)]
    until_stdin_closes: bool,
    /// Print a valid App JWT (valid for 9 minutes) and exit.
    #[arg(long)]
    print_jwt: bool,
}

/// SplitMix64: a small, seeded, good-enough generator for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A UUID-shaped GUID, distinct for every `(seed, index)`.
fn guid(seed: u64, index: u64) -> String {
    let a = seed & 0xffff_ffff;
    let b = index;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a,
        (b >> 48) & 0xffff,
        (b >> 36) & 0xfff,
        (b >> 24) & 0xfff,
        b & 0xff_ffff_ffff
    )
}

/// A push or issues payload of about 1.5 KB, different for every delivery.
fn payload(rng: &mut Rng, index: u64, guid: &str) -> (&'static str, Option<&'static str>, Value) {
    let repo_id = 100_000 + rng.below(500) as i64;
    let owner = format!("org-{}", repo_id % 37);
    let repo = format!("repo-{repo_id}");
    let full_name = format!("{owner}/{repo}");
    let sender = format!("user-{}", rng.below(5_000));
    let sha = format!("{:016x}{:016x}{:08x}", rng.next(), rng.next(), index);
    let repository = json!({
        "id": repo_id, "node_id": format!("R_kgDO{repo_id:08}"), "name": repo,
        "full_name": full_name, "private": false,
        "owner": {"login": owner, "id": repo_id % 37 + 1, "type": "Organization",
                  "html_url": format!("https://github.com/{owner}")},
        "html_url": format!("https://github.com/{full_name}"),
        "description": "A repository of the retry benchmark",
        "fork": false, "default_branch": "main", "language": "Rust",
        "created_at": "2024-03-01T10:00:00Z", "pushed_at": "2026-11-27T10:00:00Z",
        "visibility": "public", "stargazers_count": rng.below(2_000), "forks_count": rng.below(300),
    });
    let sender = json!({
        "login": sender, "id": 1_000 + rng.below(5_000), "type": "User", "site_admin": false,
        "html_url": format!("https://github.com/{sender}"),
    });
    let installation =
        json!({"id": 77_001, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzcwMDE="});
    if index.is_multiple_of(3) {
        let number = 1 + rng.below(4_000);
        let body = json!({
            "action": "opened",
            "issue": {
                "id": 2_000_000_000 + index, "number": number,
                "title": format!("Flaky test in module {} ({guid})", rng.below(90)),
                "user": sender.clone(), "state": "open", "locked": false, "comments": 0,
                "labels": [{"name": "bug", "color": "d73a4a"}],
                "created_at": "2026-11-27T10:00:00Z", "updated_at": "2026-11-27T10:00:00Z",
                "html_url": format!("https://github.com/{full_name}/issues/{number}"),
                "body": "The test fails about once in twenty runs on the Linux runners; see the log of the last failing run.",
            },
            "repository": repository, "sender": sender, "installation": installation,
        });
        ("issues", Some("opened"), body)
    } else {
        let before = format!("{:016x}{:016x}{:08x}", rng.next(), rng.next(), index);
        let commit = json!({
            "id": sha, "tree_id": before, "distinct": true,
            "message": format!("Fix the retry of delivery {guid}"),
            "timestamp": "2026-11-27T10:00:00Z",
            "url": format!("https://github.com/{full_name}/commit/{sha}"),
            "author": {"name": "Dev", "email": "dev@example.com", "username": "dev"},
            "committer": {"name": "Dev", "email": "dev@example.com", "username": "dev"},
            "added": [], "removed": [], "modified": ["src/lib.rs", "README.md"],
        });
        let body = json!({
            "ref": "refs/heads/main", "before": before, "after": sha,
            "repository": repository, "pusher": {"name": "dev", "email": "dev@example.com"},
            "sender": sender, "installation": installation,
            "created": false, "deleted": false, "forced": false,
            "compare": format!("https://github.com/{full_name}/compare/{}...{}", &before[..12], &sha[..12]),
            "commits": [commit.clone()], "head_commit": commit,
        });
        ("push", None, body)
    }
}

/// The backlog: the deliveries, oldest first, and the indexes of the failed ones.
fn backlog(args: &Args) -> Result<(Vec<NewDelivery>, Vec<usize>)> {
    ensure!(
        (0.0..=1.0).contains(&args.failure_rate),
        "--failure-rate must be between 0 and 1"
    );
    let n = args.deliveries;
    let failures = ((n as f64) * args.failure_rate).round() as u64;
    let mut rng = Rng(args.seed);
    // One failure at a random place in each of `failures` equal slices of the list.
    let mut failed = Vec::with_capacity(failures as usize);
    for slice in 0..failures {
        let start = slice * n / failures;
        let end = (slice + 1) * n / failures;
        failed.push((start + rng.below(end - start)) as usize);
    }
    let span = chrono::Duration::hours(47);
    let oldest = Utc::now() - span;
    let step = span.num_milliseconds() / (n.max(1) as i64);
    let mut next_failed = failed.iter().peekable();
    let mut deliveries = Vec::with_capacity(n as usize);
    for index in 0..n {
        let guid = guid(args.seed, index);
        let (event, action, body) = payload(&mut rng, index, &guid);
        let status_code = if next_failed.next_if_eq(&&(index as usize)).is_some() {
            if rng.below(2) == 0 { 502 } else { 0 }
        } else {
            200
        };
        let repository_id = body["repository"]["id"].as_i64();
        deliveries.push(NewDelivery {
            action: action.map(str::to_owned),
            delivered_at: oldest + chrono::Duration::milliseconds(step * index as i64),
            payload: body,
            installation_id: Some(77_001),
            repository_id,
            ..NewDelivery::new(&guid, event, status_code)
        });
    }
    Ok((deliveries, failed))
}

/// Writes the deliveries that succeeded as `gma import` input: GMA's BigQuery export shape
/// (`delivery_id`, `signature`, `received`, `event`, `payload` as a JSON string).
fn write_landed(path: &Path, deliveries: &[NewDelivery]) -> Result<u64> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut lines = 0;
    for d in deliveries
        .iter()
        .filter(|d| (200..300).contains(&d.status_code))
    {
        let payload = serde_json::to_string(&d.payload)?;
        let digest = sha2::Sha256::digest(payload.as_bytes());
        let line = json!({
            "delivery_id": d.guid,
            "signature": format!("sha256={}", hex::encode(digest)),
            "received": d.delivered_at.format("%Y-%m-%d %H:%M:%S%.6f UTC").to_string(),
            "event": d.event,
            "payload": payload,
        });
        writeln!(out, "{line}")?;
        lines += 1;
    }
    out.flush()?;
    Ok(lines)
}

/// What the fake served so far.
fn stats(gh: &FakeGitHub, failed_ids: &[i64]) -> Value {
    let (mut once, mut none, mut more, mut on_failed) = (0u64, 0u64, 0u64, 0usize);
    for &id in failed_ids {
        let n = gh.redelivery_requests(id);
        on_failed += n;
        match n {
            0 => none += 1,
            1 => once += 1,
            _ => more += 1,
        }
    }
    let accepted = gh.redelivery_requests_total();
    json!({
        "list_calls": gh.calls(Route::ListDeliveries),
        "redelivery_posts": gh.calls(Route::Redeliver),
        "redeliveries_accepted": accepted,
        "api_calls": gh.calls(Route::Any),
        "failed": failed_ids.len(),
        "failed_redelivered_once": once,
        "failed_not_redelivered": none,
        "failed_redelivered_more": more,
        "other_redeliveries": accepted.saturating_sub(on_failed),
    })
}

fn write_stats(path: Option<&Path>, stats: &Value) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{stats}\n"))
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.print_jwt {
        println!("{}", FakeGitHub::app_jwt());
        return Ok(());
    }
    let (deliveries, failed) = backlog(&args)?;
    let landed = match &args.landed_ndjson {
        Some(path) => Some(write_landed(path, &deliveries)?),
        None => None,
    };
    let gh = FakeGitHub::start().await;
    let ids = gh.add_deliveries(HookRef::App, deliveries);
    let failed_ids: Vec<i64> = failed.iter().map(|&i| ids[i]).collect();
    let pages = ids.len().div_ceil(100);
    let ready = json!({
        "GITHUB_API_URL": gh.url(),
        "GITHUB_APP_ID": FakeGitHub::APP_ID.to_string(),
        "deliveries": ids.len(),
        "failures": failed_ids.len(),
        "pages": pages,
        "landed_lines": landed,
        "seed": args.seed,
    });
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{ready}")?;
        stdout.flush()?;
    }

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("installing the SIGUSR1 handler")?;
    let watch_stdin = args.until_stdin_closes;
    let stdin_closed = async move {
        if !watch_stdin {
            return std::future::pending::<()>().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 1024];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::pin!(stdin_closed);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            () = &mut stdin_closed => break,
            _ = usr1.recv() => write_stats(args.stats_file.as_deref(), &stats(&gh, &failed_ids))?,
        }
    }
    // Let redeliveries still being answered finish recording.
    tokio::time::sleep(Duration::from_millis(50)).await;
    write_stats(args.stats_file.as_deref(), &stats(&gh, &failed_ids))?;
    Ok(())
}
