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
//! # Leech mode (`bench/leech.sh`)
//!
//! ```sh
//! gma-fake-github --workflow-runs 1000 --zip-bytes 2MiB \
//!     --runs-ndjson /tmp/runs.ndjson --archive-urls /tmp/urls.tsv
//! gma-fake-github --generated-gib 1 --runs-ndjson /tmp/big.ndjson --archive-urls /tmp/big.tsv
//! ```
//!
//! With `--workflow-runs N` (or `--generated-gib`) it serves completed workflow runs instead of
//! the delivery backlog. Each of the N runs (spread over `--repos` repositories of `bench-org`
//! and four installations; every fifth is a second attempt) gets its own logs zip of about
//! `--zip-bytes` (GitHub's layout: jobs `build` and `test`, one `{job}/{n}_{step}.txt` per step
//! and a `{n}_{job}.txt` per job). The step texts are realistic CI log lines with random
//! hashes, paths and numbers (deflate shrinks them about 3×, not to nothing), compressed once
//! into a pool and copied raw into the archives, so building 1,000 × 2 MiB takes seconds; every
//! archive also holds entries of its own (its run id, runner, timing), so no two are alike.
//! `--generated-gib G` adds one run whose logs are a `Logs::Generated` zip of G GiB of text,
//! produced while streaming (never held in memory).
//!
//! `--runs-ndjson PATH` writes the runs' `workflow_run` `completed` events as `gma import`
//! input (`{"headers": …, "received": …, "payload": {…}}`), and `--archive-urls PATH` one line
//! per run, `owner/repo/run_id/attempt<TAB>signed archive URL`, for curl. The fake's links
//! expire one minute after they are signed (GitHub's lifetime), so SIGUSR2 rewrites the file
//! with freshly signed URLs: send it just before the copy starts. SIGUSR1 writes the stats
//! (`api_calls`, `access_tokens`, `run_logs`, `workflow_run_calls`, `archive_downloads`,
//! `archive_auth_refusals`) to `--stats-file`, as in the retry mode.
//!
//! Dev tooling for `bench/retry.sh` and `bench/leech.sh`; never shipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use chrono::Utc;
use clap::Parser;
use gma_testkit::github::{FakeGitHub, HookRef, Logs, NewDelivery, Route};
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
    /// Leech mode: completed workflow runs, each with its own logs zip (instead of the
    /// delivery backlog).
    #[arg(long, default_value_t = 0)]
    workflow_runs: u64,
    /// Leech mode: size of each run's logs zip (`2MiB`, `512KiB`, `1GiB` or bytes).
    #[arg(long, default_value = "2MiB", value_parser = parse_size)]
    zip_bytes: u64,
    /// Leech mode: one more run whose logs are a generated zip of this many GiB of log text.
    #[arg(long)]
    generated_gib: Option<f64>,
    /// Leech mode: repositories (of owner `bench-org`) the runs are spread over.
    #[arg(long, default_value_t = 10)]
    repos: u64,
    /// Leech mode: write the runs' `workflow_run` events here (NDJSON for `gma import`).
    #[arg(long)]
    runs_ndjson: Option<PathBuf>,
    /// Leech mode: write `owner/repo/run_id/attempt<TAB>signed URL` per run here (again, freshly
    /// signed, on SIGUSR2).
    #[arg(long)]
    archive_urls: Option<PathBuf>,
}

impl Args {
    fn leech_mode(&self) -> bool {
        self.workflow_runs > 0 || self.generated_gib.is_some()
    }
}

/// `2MiB`, `512KiB`, `1GiB`, `1MB` or a plain number of bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 2MiB or 1048576"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB or GiB)"
            ));
        }
    };
    Ok((number * scale).round() as u64)
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

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
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

// --- leech mode --------------------------------------------------------------------------

/// The owner of every leech-mode repository.
const LEECH_OWNER: &str = "bench-org";

/// Uncompressed text of one pooled step log (deflate makes it about a third of that).
const POOL_TEXT_BYTES: usize = 384 << 10;

/// Distinct pooled step logs the archives are assembled from.
const POOL_ENTRIES: usize = 64;

/// One run attempt of the leech benchmark.
struct BenchRun {
    repo: String,
    run_id: u64,
    attempt: u32,
    installation: u64,
}

impl BenchRun {
    fn key(&self) -> String {
        format!(
            "{LEECH_OWNER}/{}/{}/{}",
            self.repo, self.run_id, self.attempt
        )
    }
}

const WORDS: &[&str] = &[
    "serde",
    "tokio",
    "hyper",
    "arrow",
    "parquet",
    "axum",
    "tower",
    "rustls",
    "ring",
    "zip",
    "chrono",
    "clap",
    "regex",
    "bytes",
    "futures",
    "tracing",
    "prost",
    "tonic",
    "reqwest",
    "datafusion",
    "object_store",
    "sha2",
    "hmac",
    "uuid",
    "rand",
    "itertools",
    "thiserror",
];
const MODULES: &[&str] = &[
    "store::log",
    "import::line",
    "github::deliveries",
    "warehouse::local",
    "retry::scan",
    "leech::index",
    "event::lift",
    "schema",
    "sink::bigquery",
    "blob::gcs",
    "flow::shard",
];
const OUTCOMES: &[&str] = &[
    "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ignored", "FAILED",
];

/// One line of CI log text: a GitHub timestamp and a compiler, test, download or shell line
/// with random versions, hashes, paths and durations.
fn log_line(rng: &mut Rng, second: &mut u64, out: &mut String) {
    use std::fmt::Write as _;
    *second += rng.below(3);
    let (h, m, s) = (10 + *second / 3600 % 10, *second / 60 % 60, *second % 60);
    let _ = write!(
        out,
        "2026-11-28T{h:02}:{m:02}:{s:02}.{:07}Z ",
        rng.below(10_000_000)
    );
    let _ = match rng.below(10) {
        0..=2 => writeln!(
            out,
            "   Compiling {}-{} v{}.{}.{} (/home/runner/work/gma/gma/{}/{:x})",
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.below(3),
            rng.below(40),
            rng.below(20),
            rng.pick(WORDS),
            rng.next() & 0xffff_ffff,
        ),
        3..=5 => writeln!(
            out,
            "test {}::tests::{}_{}_{} ... {} ({}.{:03}s)",
            rng.pick(MODULES),
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.below(1000),
            rng.pick(OUTCOMES),
            rng.below(20),
            rng.below(1000),
        ),
        6 => writeln!(
            out,
            "  Downloaded {} v{}.{}.{} sha256:{:016x}{:016x}{:016x}{:016x}",
            rng.pick(WORDS),
            rng.below(3),
            rng.below(40),
            rng.below(20),
            rng.next(),
            rng.next(),
            rng.next(),
            rng.next(),
        ),
        7 => writeln!(
            out,
            "[{:>3}%] Building CXX object third_party/{}/src/{}_{}.cc.o",
            rng.below(101),
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.below(500),
        ),
        8 => writeln!(
            out,
            "##[debug]Evaluating: env.CACHE_KEY_{:x} = '{}-{:016x}-{:08x}'",
            rng.below(1 << 20),
            rng.pick(WORDS),
            rng.next(),
            rng.next() as u32,
        ),
        _ => writeln!(
            out,
            "warning: unused variable `{}_{}` --> src/{}/{}.rs:{}:{}",
            rng.pick(WORDS),
            rng.below(100),
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.below(2_000),
            rng.below(120),
        ),
    };
}

/// About `bytes` bytes of log text; with `error`, ending in a `##[error]` line.
fn log_text(rng: &mut Rng, bytes: usize, error: bool) -> String {
    let mut out = String::with_capacity(bytes + 256);
    let mut second = rng.below(3_000);
    while out.len() < bytes {
        log_line(rng, &mut second, &mut out);
    }
    if error {
        out.push_str(&format!(
            "2026-11-28T11:00:00.0000000Z ##[error]Process completed with exit code {}.\n",
            1 + rng.below(101)
        ));
    }
    out
}

fn deflated() -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)
}

/// A zip of [`POOL_ENTRIES`] compressed step logs, to copy raw into the archives.
fn step_pool(rng: &mut Rng) -> Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for n in 0..POOL_ENTRIES {
        writer.start_file(format!("pool/{n}.txt"), deflated())?;
        writer.write_all(log_text(rng, POOL_TEXT_BYTES, n % 7 == 3).as_bytes())?;
    }
    Ok(writer.finish()?.into_inner())
}

/// A run's logs archive of about `target` bytes: per job (`build`, `test`), a `Set up job`
/// step of its own, pooled steps copied raw, and the job's own `{n}_{job}.txt`.
fn run_zip(
    pool: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    rng: &mut Rng,
    run: &BenchRun,
    target: u64,
) -> Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::with_capacity(
        target as usize + (64 << 10),
    )));
    let jobs = ["build", "test"];
    let mut written: u64 = 0;
    let mut steps: [u32; 2] = [1, 1];
    for (j, job) in jobs.iter().enumerate() {
        let setup = format!(
            "2026-11-28T10:00:00.0000000Z Current runner version: '2.{}.{}'\n\
             2026-11-28T10:00:00.0000000Z Runner name: 'gh-runner-{:08x}'\n\
             2026-11-28T10:00:00.0000000Z Job {job} of run {} attempt {} of {LEECH_OWNER}/{}\n{}",
            rng.below(400),
            rng.below(10),
            rng.next() as u32,
            run.run_id,
            run.attempt,
            run.repo,
            log_text(rng, 2_000, false),
        );
        writer.start_file(format!("{job}/1_Set up job.txt"), deflated())?;
        writer.write_all(setup.as_bytes())?;
        steps[j] = 2;
    }
    // Pooled steps, alternating between the jobs, until the next would pass the target.
    let mut job = 0;
    loop {
        let index = rng.below(pool.len() as u64) as usize;
        let file = pool.by_index_raw(index)?;
        let size = file.compressed_size() + 100;
        if written > 0 && written + size > target {
            break;
        }
        written += size;
        let name = format!(
            "{}/{}_Run {} {}.txt",
            jobs[job],
            steps[job],
            rng.pick(&["cargo test", "cargo build", "make", "npm ci", "pytest"]),
            rng.pick(WORDS)
        );
        writer.raw_copy_file_rename(file, name)?;
        steps[job] += 1;
        job = 1 - job;
    }
    for (j, job) in jobs.iter().enumerate() {
        writer.start_file(format!("{}_{job}.txt", j + 1), deflated())?;
        let whole = format!(
            "2026-11-28T10:00:00.0000000Z Job {job} of run {}: {} steps\n{}",
            run.run_id,
            steps[j] - 1,
            log_text(rng, 4_000, false)
        );
        writer.write_all(whole.as_bytes())?;
    }
    Ok(writer.finish()?.into_inner())
}

/// A `workflow_run` `completed` event for `run`, as `gma import` reads it.
fn run_event_line(run: &BenchRun, index: u64, completed: chrono::DateTime<Utc>) -> Value {
    let full_name = format!("{LEECH_OWNER}/{}", run.repo);
    let run_id = run.run_id;
    let payload = json!({
        "action": "completed",
        "workflow_run": {
            "id": run_id, "run_attempt": run.attempt, "name": "CI", "status": "completed",
            "conclusion": if index % 7 == 3 { "failure" } else { "success" },
            "run_number": run_id % 10_000, "event": "push", "head_branch": "main",
            "head_sha": format!("{:040x}", run_id as u128 * 0x9E37_79B9_7F4A_7C15),
            "html_url": format!("https://github.com/{full_name}/actions/runs/{run_id}"),
            "logs_url": format!("https://api.github.com/repos/{full_name}/actions/runs/{run_id}/logs"),
            "created_at": (completed - chrono::Duration::minutes(7)).to_rfc3339(),
            "updated_at": completed.to_rfc3339(),
            "actor": {"login": "octocat", "id": 1},
        },
        "repository": {"full_name": full_name, "name": run.repo, "id": 500_000 + index % 1_000,
                       "owner": {"login": LEECH_OWNER, "id": 5}},
        "organization": {"login": LEECH_OWNER, "id": 5},
        "installation": {"id": run.installation},
        "sender": {"login": "octocat", "id": 1},
    });
    json!({
        "headers": {
            "X-GitHub-Delivery": guid(0x1eec, index),
            "X-GitHub-Event": "workflow_run",
            "X-GitHub-Hook-ID": "1",
        },
        "received": completed.to_rfc3339(),
        "payload": payload,
    })
}

/// The leech benchmark's runs, loaded into the fake: (runs, bytes of zips, generated bytes).
fn load_runs(gh: &FakeGitHub, args: &Args) -> Result<(Vec<BenchRun>, u64, u64)> {
    let mut rng = Rng(args.seed ^ 0x1eec);
    let pool = step_pool(&mut rng)?;
    let mut pool = zip::ZipArchive::new(std::io::Cursor::new(pool.as_slice()))?;
    let repos = args.repos.max(1);
    let mut runs = Vec::new();
    let mut zip_bytes = 0;
    for i in 0..args.workflow_runs {
        let run = BenchRun {
            repo: format!("repo-{}", i % repos),
            run_id: 7_000_000_000 + i * 13,
            attempt: if i % 5 == 4 { 2 } else { 1 },
            installation: 77_001 + (i % repos) % 4,
        };
        let zip = run_zip(&mut pool, &mut rng, &run, args.zip_bytes)?;
        zip_bytes += zip.len() as u64;
        gh.add_workflow_run(
            LEECH_OWNER,
            &run.repo,
            run.run_id,
            run.attempt,
            Logs::zip(zip),
        );
        runs.push(run);
    }
    let mut generated = 0;
    if let Some(gib) = args.generated_gib {
        ensure!(gib > 0.0 && gib <= 3.0, "--generated-gib must be in (0, 3]");
        generated = (gib * (1u64 << 30) as f64).round() as u64;
        let run = BenchRun {
            repo: "repo-big".into(),
            run_id: 8_000_000_001,
            attempt: 1,
            installation: 77_001,
        };
        gh.add_workflow_run(
            LEECH_OWNER,
            &run.repo,
            run.run_id,
            run.attempt,
            Logs::Generated { bytes: generated },
        );
        runs.push(run);
    }
    Ok((runs, zip_bytes, generated))
}

fn write_runs_ndjson(path: &Path, runs: &[BenchRun]) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    // Completed over the last few hours, oldest first (well inside the logs' retention).
    let start = Utc::now() - chrono::Duration::hours(3);
    for (i, run) in runs.iter().enumerate() {
        let completed = start + chrono::Duration::seconds(i as i64);
        writeln!(out, "{}", run_event_line(run, i as u64, completed))?;
    }
    out.flush()?;
    Ok(())
}

/// Writes `key<TAB>URL` per run, signed now (valid one minute), atomically.
fn write_archive_urls(gh: &FakeGitHub, path: Option<&Path>, runs: &[BenchRun]) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let mut text = String::with_capacity(runs.len() * 200);
    for run in runs {
        let url = gh
            .signed_archive_url(LEECH_OWNER, &run.repo, run.run_id, run.attempt)
            .with_context(|| format!("no archive URL for {}", run.key()))?;
        text.push_str(&run.key());
        text.push('\t');
        text.push_str(&url);
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// What the fake served so far, in leech mode.
fn leech_stats(gh: &FakeGitHub) -> Value {
    json!({
        "api_calls": gh.calls(Route::Any),
        "access_tokens": gh.calls(Route::AccessTokens),
        "run_logs": gh.calls(Route::RunLogs),
        "workflow_run_calls": gh.calls(Route::WorkflowRun),
        "archive_downloads": gh.archive_downloads(),
        "archive_auth_refusals": gh.archive_auth_refusals(),
    })
}

/// What the fake served so far (retry mode).
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
    let gh;
    let mut failed_ids: Vec<i64> = Vec::new();
    let mut runs: Vec<BenchRun> = Vec::new();
    let ready = if args.leech_mode() {
        gh = FakeGitHub::start().await;
        let (loaded, zip_bytes, generated) = load_runs(&gh, &args)?;
        runs = loaded;
        if let Some(path) = &args.runs_ndjson {
            write_runs_ndjson(path, &runs)?;
        }
        write_archive_urls(&gh, args.archive_urls.as_deref(), &runs)?;
        json!({
            "GITHUB_API_URL": gh.url(),
            "GITHUB_APP_ID": FakeGitHub::APP_ID.to_string(),
            "workflow_runs": args.workflow_runs,
            "zip_bytes_total": zip_bytes,
            "generated_bytes": generated,
            "runs": runs.len(),
            "seed": args.seed,
        })
    } else {
        let (deliveries, failed) = backlog(&args)?;
        let landed = match &args.landed_ndjson {
            Some(path) => Some(write_landed(path, &deliveries)?),
            None => None,
        };
        gh = FakeGitHub::start().await;
        let ids = gh.add_deliveries(HookRef::App, deliveries);
        failed_ids = failed.iter().map(|&i| ids[i]).collect();
        let pages = ids.len().div_ceil(100);
        json!({
            "GITHUB_API_URL": gh.url(),
            "GITHUB_APP_ID": FakeGitHub::APP_ID.to_string(),
            "deliveries": ids.len(),
            "failures": failed_ids.len(),
            "pages": pages,
            "landed_lines": landed,
            "seed": args.seed,
        })
    };
    let leech = args.leech_mode();
    let snapshot = |gh: &FakeGitHub| {
        if leech {
            leech_stats(gh)
        } else {
            stats(gh, &failed_ids)
        }
    };
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{ready}")?;
        stdout.flush()?;
    }

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("installing the SIGUSR1 handler")?;
    let mut usr2 = signal(SignalKind::user_defined2()).context("installing the SIGUSR2 handler")?;
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
            _ = usr1.recv() => write_stats(args.stats_file.as_deref(), &snapshot(&gh))?,
            _ = usr2.recv() => write_archive_urls(&gh, args.archive_urls.as_deref(), &runs)?,
        }
    }
    // Let requests still being answered finish recording.
    tokio::time::sleep(Duration::from_millis(50)).await;
    write_stats(args.stats_file.as_deref(), &snapshot(&gh))?;
    Ok(())
}
