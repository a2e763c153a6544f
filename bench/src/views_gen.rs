//! Writes the input of the views benchmark: NDJSON files in GMA's BigQuery export shape
//! (`delivery_id`, `signature`, `received`, `event`, `payload` as a JSON string) that tell the
//! stories of thousands of pull requests across a few dozen repositories, so the analyst views
//! (`pull_requests`, `pr_cycle_time`, `workflow_runs`, ...) have many rows to compute.
//!
//! ```sh
//! gma-views-gen --out /tmp/views-input --events 200000
//! ```
//!
//! Every payload is a fixture of `testdata/webhooks` (so its size is a real payload's: a few KB
//! to about 30 KB) with its ids, numbers, timestamps, branch names, repository, organization
//! and users rewritten. One pull request's story:
//!
//! - a `create` of its head branch, then 1 to 4 `push`es to it (the first before the pull
//!   request is opened, with 1 to 5 commits whose author times precede the push), each push
//!   followed by a `workflow_run` (requested, in_progress, completed; one in ten fails and is
//!   re-run as attempt 2), a `workflow_job`, a `check_suite` and a `check_run` completed;
//! - `pull_request` opened (15% as drafts, later `ready_for_review`), `synchronize` for every
//!   later push, 1 to 3 `pull_request_review`s by other users (commented, changes_requested,
//!   approved), sometimes a `pull_request_review_comment` and an `issue_comment`;
//! - closed: 80% merged (then a `push` to the base branch with its own workflow run, a
//!   `deployment` with `deployment_status` in_progress and success or failure, and a `delete`
//!   of the head branch), 10% closed without merging, 10% left open;
//! - between stories: an `issues` event for every third pull request, a `release` every fifty.
//!
//! Stories start evenly over `--days` days from 2026-01-01; the lines are written in `received`
//! order (as a server would have received them) into `--files` files, and generation stops at
//! exactly `--events` lines (the last stories are cut short: pull requests still open). Prints
//! one JSON line with what it wrote, counts per event type included.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value, json};

mod export;
use export::{chrono_like, civil_from_days, delivery_id, mix, signature};

/// Generates linked GitHub webhook events in GMA's export shape for the views benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Directory to write `part-NNN.ndjson` files to (created).
    #[arg(long)]
    out: PathBuf,
    /// Number of events (lines) to write.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Number of files.
    #[arg(long, default_value_t = 8)]
    files: u64,
    /// Days over which the pull requests are opened, from 2026-01-01.
    #[arg(long, default_value_t = 60)]
    days: u64,
    /// Repositories of the organization the events come from.
    #[arg(long, default_value_t = 40)]
    repos: u64,
    /// Users who author and review.
    #[arg(long, default_value_t = 120)]
    users: u64,
    /// Directory of `<event>/<name>.payload.json` fixtures.
    #[arg(long, default_value = "testdata/webhooks")]
    payloads: PathBuf,
    /// Seed of everything random, so two runs with the same seed write the same files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// When the first story starts, in seconds since the Unix epoch (default 2026-01-01): a later
    /// start gives events of days after an earlier run's, such as new arrivals.
    #[arg(long, default_value_t = START)]
    start_unix: i64,
}

/// Seconds of 2026-01-01T00:00:00Z.
const START: i64 = 1_767_225_600;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
/// How far before its opening a story's first event may be (its first push); lines older than
/// the newest story's start minus this are final and written.
const LOOK_BACK: i64 = 3 * DAY;
const ORG: &str = "bench-org";
const ORG_ID: i64 = 90_000_001;

/// A small deterministic random source (splitmix64 over a counter).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix(self.0)
    }
    /// A value in `lo..hi` (`lo` when the range is empty).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next() % (hi - lo) as u64) as i64
    }
    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn sha(&mut self) -> String {
        format!(
            "{:016x}{:016x}{:08x}",
            self.next(),
            self.next(),
            self.next() >> 32
        )
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, GitHub's form, of seconds since the epoch.
fn iso(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(DAY));
    let rem = secs.rem_euclid(DAY);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Sets the value at JSON pointer `at` if the fixture has that place (its parent exists).
fn set(doc: &mut Value, at: &str, value: impl Into<Value>) {
    let (parent, key) = at.rsplit_once('/').unwrap_or(("", at));
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(key.to_owned(), value.into());
        }
        Some(Value::Array(items)) => {
            if let Some(slot) = key.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *slot = value.into();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Copy)]
struct Repo {
    index: u64,
    id: i64,
}

impl Repo {
    fn name(self) -> String {
        format!("service-{:02}", self.index)
    }
    fn full_name(self) -> String {
        format!("{ORG}/{}", self.name())
    }
}

#[derive(Clone, Copy)]
struct User {
    index: u64,
    id: i64,
}

impl User {
    fn login(self) -> String {
        format!("dev-{:03}", self.index)
    }
}

/// One event waiting to be written, ordered by `received`.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    received_micros: i64,
    sequence: u64,
    event: &'static str,
    payload: String,
}

/// Builds payloads from the fixtures and queues them until they are old enough to write.
struct Generator {
    fixtures: HashMap<&'static str, Value>,
    rng: Rng,
    pending: BinaryHeap<Reverse<Pending>>,
    sequence: u64,
    next_id: i64,
    repos: Vec<Repo>,
    users: Vec<User>,
    pr_numbers: Vec<i64>,
    run_numbers: Vec<i64>,
}

/// The fixture file each event type is built from.
const FIXTURES: &[(&str, &str)] = &[
    (
        "check_run",
        "check_run/completed.with-organization.payload.json",
    ),
    (
        "check_suite",
        "check_suite/completed.with-organization.payload.json",
    ),
    ("create", "create/with-installation.payload.json"),
    ("delete", "delete/with-organization.payload.json"),
    ("deployment", "deployment/with-installation.payload.json"),
    (
        "deployment_status",
        "deployment_status/with-installation.payload.json",
    ),
    (
        "issue_comment",
        "issue_comment/created.with-installation.payload.json",
    ),
    ("issues", "issues/assigned.with-organization.payload.json"),
    (
        "pull_request",
        "pull_request/assigned.with-organization.payload.json",
    ),
    (
        "pull_request_review",
        "pull_request_review/submitted.with-organization.payload.json",
    ),
    (
        "pull_request_review_comment",
        "pull_request_review_comment/created.with-organization.payload.json",
    ),
    ("push", "push/with-installation.payload.json"),
    ("release", "release/created.with-installation.payload.json"),
    (
        "workflow_job",
        "workflow_job/completed.success.with-organization.payload.json",
    ),
    (
        "workflow_run",
        "workflow_run/completed.with-pull-requests.payload.json",
    ),
];

fn load_fixtures(dir: &Path) -> Result<HashMap<&'static str, Value>> {
    let mut fixtures = HashMap::new();
    for (event, file) in FIXTURES {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let value: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        fixtures.insert(*event, value);
    }
    Ok(fixtures)
}

/// What a pull request's later events need to know about it.
struct Pr {
    id: i64,
    number: i64,
    repo: Repo,
    author: User,
    branch: String,
    created: i64,
    draft: bool,
    title: String,
    additions: i64,
    deletions: i64,
    commits: i64,
    head_sha: String,
}

impl Generator {
    fn id(&mut self) -> i64 {
        self.next_id += 1 + (self.rng.next() % 7) as i64;
        self.next_id
    }

    fn repo(&mut self) -> Repo {
        self.repos[(self.rng.next() % self.repos.len() as u64) as usize]
    }

    fn user(&mut self) -> User {
        self.users[(self.rng.next() % self.users.len() as u64) as usize]
    }

    fn other_user(&mut self, than: User) -> User {
        loop {
            let user = self.user();
            if user.index != than.index {
                return user;
            }
        }
    }

    /// The fixture of `event` with the common parts set: repository, organization, sender,
    /// installation.
    fn base(&mut self, event: &'static str, repo: Repo, sender: User) -> Value {
        let mut doc = self.fixtures[event].clone();
        let (name, full_name) = (repo.name(), repo.full_name());
        set(&mut doc, "/repository/id", repo.id);
        set(&mut doc, "/repository/name", name);
        set(&mut doc, "/repository/full_name", full_name.clone());
        set(
            &mut doc,
            "/repository/html_url",
            format!("https://github.com/{full_name}"),
        );
        set(&mut doc, "/repository/owner/login", ORG);
        set(&mut doc, "/repository/owner/id", ORG_ID);
        set(&mut doc, "/repository/visibility", "private");
        if let Some(map) = doc.as_object_mut() {
            map.insert("organization".into(), json!({"login": ORG, "id": ORG_ID}));
            map.insert(
                "installation".into(),
                json!({"id": 4_200_001, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDIwMDAwMQ=="}),
            );
        }
        self.set_user(&mut doc, "/sender", sender);
        doc
    }

    fn set_user(&self, doc: &mut Value, at: &str, user: User) {
        set(doc, &format!("{at}/login"), user.login());
        set(doc, &format!("{at}/id"), user.id);
        set(
            doc,
            &format!("{at}/html_url"),
            format!("https://github.com/{}", user.login()),
        );
    }

    /// Queues `doc` as an `event` received at `at` plus up to 3 random seconds.
    fn emit(&mut self, event: &'static str, doc: &Value, at: i64) -> Result<()> {
        let micros = (at + self.rng.range(0, 3)) * 1_000_000 + self.rng.range(0, 1_000_000);
        self.sequence += 1;
        self.pending.push(Reverse(Pending {
            received_micros: micros,
            sequence: self.sequence,
            event,
            payload: serde_json::to_string(doc)?,
        }));
        Ok(())
    }

    fn pull_request_doc(&mut self, pr: &Pr, action: &str, at: i64, sender: User) -> Value {
        let mut doc = self.base("pull_request", pr.repo, sender);
        let full_name = pr.repo.full_name();
        set(&mut doc, "/action", action);
        set(&mut doc, "/number", pr.number);
        let p = "/pull_request";
        set(&mut doc, &format!("{p}/id"), pr.id);
        set(&mut doc, &format!("{p}/number"), pr.number);
        set(&mut doc, &format!("{p}/title"), pr.title.clone());
        set(&mut doc, &format!("{p}/state"), "open");
        set(&mut doc, &format!("{p}/draft"), pr.draft);
        set(
            &mut doc,
            &format!("{p}/html_url"),
            format!("https://github.com/{full_name}/pull/{}", pr.number),
        );
        set(&mut doc, &format!("{p}/created_at"), iso(pr.created));
        set(&mut doc, &format!("{p}/updated_at"), iso(at));
        self.set_user(&mut doc, &format!("{p}/user"), pr.author);
        for side in ["head", "base"] {
            set(&mut doc, &format!("{p}/{side}/repo/id"), pr.repo.id);
            set(&mut doc, &format!("{p}/{side}/repo/name"), pr.repo.name());
            set(
                &mut doc,
                &format!("{p}/{side}/repo/full_name"),
                full_name.clone(),
            );
            set(
                &mut doc,
                &format!("{p}/{side}/label"),
                format!("{ORG}:{}", if side == "head" { &pr.branch } else { "main" }),
            );
        }
        set(&mut doc, &format!("{p}/head/ref"), pr.branch.clone());
        set(&mut doc, &format!("{p}/head/sha"), pr.head_sha.clone());
        set(&mut doc, &format!("{p}/base/ref"), "main");
        set(&mut doc, &format!("{p}/additions"), pr.additions);
        set(&mut doc, &format!("{p}/deletions"), pr.deletions);
        set(&mut doc, &format!("{p}/commits"), pr.commits);
        set(
            &mut doc,
            &format!("{p}/changed_files"),
            1 + pr.additions / 40,
        );
        if let Some(map) = doc.as_object_mut() {
            map.remove("assignee");
        }
        doc
    }

    fn push(
        &mut self,
        repo: Repo,
        branch: &str,
        pusher: User,
        at: i64,
        commits: i64,
    ) -> Result<String> {
        let mut doc = self.base("push", repo, pusher);
        let (before, after) = (self.rng.sha(), self.rng.sha());
        let full_name = repo.full_name();
        set(&mut doc, "/ref", format!("refs/heads/{branch}"));
        set(&mut doc, "/before", before.clone());
        set(&mut doc, "/after", after.clone());
        set(&mut doc, "/created", false);
        set(
            &mut doc,
            "/compare",
            format!(
                "https://github.com/{full_name}/compare/{}...{}",
                &before[..12],
                &after[..12]
            ),
        );
        set(&mut doc, "/pusher/name", pusher.login());
        set(
            &mut doc,
            "/pusher/email",
            format!("{}@example.com", pusher.login()),
        );
        set(&mut doc, "/repository/default_branch", "main");
        // In push payloads GitHub sends `repository.pushed_at` as Unix seconds: the push's time.
        set(&mut doc, "/repository/pushed_at", at);
        // Commits oldest first, authored before the push.
        let mut time = at - self.rng.range(10 * 60, 6 * HOUR);
        let mut list = Vec::new();
        for i in 0..commits {
            let sha = if i + 1 == commits {
                after.clone()
            } else {
                self.rng.sha()
            };
            let files = self.rng.range(1, 6);
            list.push(json!({
                "id": sha,
                "tree_id": self.rng.sha(),
                "distinct": true,
                "message": format!("Change {} of {branch}: refactor the handler and update its tests", i + 1),
                "timestamp": iso(time),
                "url": format!("https://github.com/{full_name}/commit/{sha}"),
                "author": {"name": pusher.login(), "email": format!("{}@example.com", pusher.login()), "username": pusher.login()},
                "committer": {"name": pusher.login(), "email": format!("{}@example.com", pusher.login()), "username": pusher.login()},
                "added": [],
                "removed": [],
                "modified": (0..files).map(|f| format!("src/module_{f}/handler.rs")).collect::<Vec<_>>(),
            }));
            time += self.rng.range(60, HOUR).min((at - time).max(1));
        }
        if let Some(map) = doc.as_object_mut() {
            map.insert(
                "head_commit".into(),
                list.last().cloned().unwrap_or(Value::Null),
            );
            map.insert("commits".into(), Value::Array(list));
        }
        self.emit("push", &doc, at)?;
        Ok(after)
    }

    /// A workflow run for a push of `sha` to `branch`: requested, in_progress, completed (and
    /// a second attempt for one in ten that fail), with a job, a check suite and a check run.
    /// Returns when it ended.
    fn workflow_run(
        &mut self,
        repo: Repo,
        branch: &str,
        sha: &str,
        actor: User,
        at: i64,
    ) -> Result<i64> {
        let run_id = self.id();
        let number = {
            let slot = &mut self.run_numbers[repo.index as usize];
            *slot += 1;
            *slot
        };
        let failed_first = self.rng.chance(10);
        let attempts = if failed_first { 2 } else { 1 };
        let mut time = at;
        for attempt in 1..=attempts {
            let started = time + self.rng.range(5, 90);
            let finished = started + self.rng.range(2 * 60, 25 * 60);
            let conclusion = if attempt == 1 && failed_first {
                "failure"
            } else {
                "success"
            };
            for (action, status, updated) in [
                ("requested", "queued", time),
                ("in_progress", "in_progress", started),
                ("completed", "completed", finished),
            ] {
                let mut doc = self.base("workflow_run", repo, actor);
                let w = "/workflow_run";
                set(&mut doc, "/action", action);
                set(&mut doc, &format!("{w}/id"), run_id);
                set(&mut doc, &format!("{w}/run_number"), number);
                set(&mut doc, &format!("{w}/run_attempt"), attempt);
                set(&mut doc, &format!("{w}/name"), "CI");
                set(
                    &mut doc,
                    &format!("{w}/display_title"),
                    format!("CI for {branch}"),
                );
                set(&mut doc, &format!("{w}/path"), ".github/workflows/ci.yml");
                set(&mut doc, &format!("{w}/workflow_id"), 7_000_000 + repo.id);
                set(&mut doc, &format!("{w}/event"), "push");
                set(&mut doc, &format!("{w}/status"), status);
                set(
                    &mut doc,
                    &format!("{w}/conclusion"),
                    if status == "completed" {
                        Value::from(conclusion)
                    } else {
                        Value::Null
                    },
                );
                set(&mut doc, &format!("{w}/head_branch"), branch);
                set(&mut doc, &format!("{w}/head_sha"), sha);
                set(&mut doc, &format!("{w}/created_at"), iso(at));
                set(
                    &mut doc,
                    &format!("{w}/run_started_at"),
                    iso(started.min(updated.max(time))),
                );
                set(&mut doc, &format!("{w}/updated_at"), iso(updated));
                set(
                    &mut doc,
                    &format!("{w}/html_url"),
                    format!(
                        "https://github.com/{}/actions/runs/{run_id}",
                        repo.full_name()
                    ),
                );
                self.set_user(&mut doc, &format!("{w}/actor"), actor);
                self.set_user(&mut doc, &format!("{w}/triggering_actor"), actor);
                set(&mut doc, "/workflow/id", 7_000_000 + repo.id);
                set(&mut doc, "/workflow/name", "CI");
                set(
                    &mut doc,
                    "/workflow/html_url",
                    format!(
                        "https://github.com/{}/actions/workflows/ci.yml",
                        repo.full_name()
                    ),
                );
                self.emit("workflow_run", &doc, updated)?;
            }
            // One job, and the check suite and check run GitHub reports for it.
            let mut job = self.base("workflow_job", repo, actor);
            set(&mut job, "/workflow_job/id", self.id());
            set(&mut job, "/workflow_job/run_id", run_id);
            set(&mut job, "/workflow_job/run_attempt", attempt);
            set(&mut job, "/workflow_job/head_branch", branch);
            set(&mut job, "/workflow_job/head_sha", sha);
            set(&mut job, "/workflow_job/conclusion", conclusion);
            set(&mut job, "/workflow_job/created_at", iso(time));
            set(&mut job, "/workflow_job/started_at", iso(started));
            set(&mut job, "/workflow_job/completed_at", iso(finished));
            self.emit("workflow_job", &job, finished)?;
            let mut suite = self.base("check_suite", repo, actor);
            set(&mut suite, "/check_suite/id", self.id());
            set(&mut suite, "/check_suite/head_branch", branch);
            set(&mut suite, "/check_suite/head_sha", sha);
            set(&mut suite, "/check_suite/conclusion", conclusion);
            set(&mut suite, "/check_suite/created_at", iso(time));
            set(&mut suite, "/check_suite/updated_at", iso(finished));
            self.emit("check_suite", &suite, finished)?;
            let mut check = self.base("check_run", repo, actor);
            set(&mut check, "/check_run/id", self.id());
            set(&mut check, "/check_run/head_sha", sha);
            set(&mut check, "/check_run/conclusion", conclusion);
            set(&mut check, "/check_run/started_at", iso(started));
            set(&mut check, "/check_run/completed_at", iso(finished));
            self.emit("check_run", &check, finished)?;
            time = finished + self.rng.range(5 * 60, 2 * HOUR);
        }
        Ok(time)
    }

    fn review(&mut self, pr: &Pr, reviewer: User, state: &str, at: i64) -> Result<()> {
        let mut doc = self.base("pull_request_review", pr.repo, reviewer);
        let review_id = self.id();
        set(&mut doc, "/action", "submitted");
        set(&mut doc, "/review/id", review_id);
        set(&mut doc, "/review/state", state);
        set(&mut doc, "/review/submitted_at", iso(at));
        set(&mut doc, "/review/commit_id", pr.head_sha.clone());
        set(
            &mut doc,
            "/review/body",
            if state == "approved" {
                "Looks good to me."
            } else {
                "A few comments inline."
            },
        );
        set(
            &mut doc,
            "/review/html_url",
            format!(
                "https://github.com/{}/pull/{}#pullrequestreview-{review_id}",
                pr.repo.full_name(),
                pr.number
            ),
        );
        self.set_user(&mut doc, "/review/user", reviewer);
        let full = self.pull_request_doc(pr, "submitted", at, reviewer);
        if let (Some(map), Some(pull)) = (doc.as_object_mut(), full.get("pull_request")) {
            map.insert("pull_request".into(), pull.clone());
        }
        self.emit("pull_request_review", &doc, at)
    }

    fn comment(&mut self, event: &'static str, pr: &Pr, who: User, at: i64) -> Result<()> {
        let mut doc = self.base(event, pr.repo, who);
        set(&mut doc, "/comment/id", self.id());
        set(&mut doc, "/comment/created_at", iso(at));
        set(&mut doc, "/comment/updated_at", iso(at));
        set(
            &mut doc,
            "/comment/body",
            "Could this handle the empty case too?",
        );
        self.set_user(&mut doc, "/comment/user", who);
        if event == "pull_request_review_comment" {
            let full = self.pull_request_doc(pr, "created", at, who);
            if let (Some(map), Some(pull)) = (doc.as_object_mut(), full.get("pull_request")) {
                map.insert("pull_request".into(), pull.clone());
            }
        } else {
            set(&mut doc, "/issue/id", pr.id + 1);
            set(&mut doc, "/issue/number", pr.number);
            set(&mut doc, "/issue/title", pr.title.clone());
            set(&mut doc, "/issue/created_at", iso(pr.created));
            set(&mut doc, "/issue/updated_at", iso(at));
            self.set_user(&mut doc, "/issue/user", pr.author);
        }
        self.emit(event, &doc, at)
    }

    fn branch_ref(
        &mut self,
        event: &'static str,
        repo: Repo,
        branch: &str,
        who: User,
        at: i64,
    ) -> Result<()> {
        let mut doc = self.base(event, repo, who);
        set(&mut doc, "/ref", branch);
        set(&mut doc, "/ref_type", "branch");
        set(&mut doc, "/master_branch", "main");
        self.emit(event, &doc, at)
    }

    fn deploy(&mut self, repo: Repo, sha: &str, who: User, at: i64) -> Result<()> {
        let deployment_id = self.id();
        let environment = if self.rng.chance(70) {
            "production"
        } else {
            "staging"
        };
        let fill = |doc: &mut Value, at: i64| {
            set(doc, "/deployment/id", deployment_id);
            set(doc, "/deployment/sha", sha);
            set(doc, "/deployment/ref", "main");
            set(doc, "/deployment/environment", environment);
            set(doc, "/deployment/created_at", iso(at));
            set(doc, "/deployment/updated_at", iso(at));
        };
        let mut doc = self.base("deployment", repo, who);
        set(&mut doc, "/action", "created");
        fill(&mut doc, at);
        self.emit("deployment", &doc, at)?;
        let finished = at + self.rng.range(60, 20 * 60);
        let outcome = if self.rng.chance(12) {
            "failure"
        } else {
            "success"
        };
        for (state, time) in [("in_progress", at + 5), (outcome, finished)] {
            let mut doc = self.base("deployment_status", repo, who);
            set(&mut doc, "/action", "created");
            fill(&mut doc, at);
            set(&mut doc, "/deployment_status/id", self.id());
            set(&mut doc, "/deployment_status/state", state);
            set(&mut doc, "/deployment_status/environment", environment);
            set(&mut doc, "/deployment_status/created_at", iso(time));
            set(&mut doc, "/deployment_status/updated_at", iso(time));
            self.emit("deployment_status", &doc, time)?;
        }
        Ok(())
    }

    /// One pull request's whole story, opened at `opened`.
    fn story(&mut self, index: u64, opened: i64) -> Result<()> {
        let repo = self.repo();
        let author = self.user();
        let number = {
            let slot = &mut self.pr_numbers[repo.index as usize];
            *slot += 1;
            *slot
        };
        let branch = format!("{}/change-{index}", author.login());
        let additions =
            [3, 20, 80, 300, 1500][(self.rng.next() % 5) as usize] + self.rng.range(0, 30);
        let deletions = additions / 3;
        // Commits land on the branch before it is opened.
        let first_push = opened - self.rng.range(20 * 60, 2 * DAY);
        self.branch_ref("create", repo, &branch, author, first_push - 30)?;
        let commits = self.rng.range(1, 6);
        let sha = self.push(repo, &branch, author, first_push, commits)?;
        let mut pr = Pr {
            id: 1_000_000_000 + (index as i64) * 10,
            number,
            repo,
            author,
            branch: branch.clone(),
            created: opened,
            draft: self.rng.chance(15),
            title: format!(
                "Change {index}: improve the request handler of {}",
                repo.name()
            ),
            additions,
            deletions,
            commits,
            head_sha: sha.clone(),
        };
        let mut ci_done = self.workflow_run(repo, &branch, &sha, author, first_push + 2)?;
        let doc = self.pull_request_doc(&pr, "opened", opened, author);
        self.emit("pull_request", &doc, opened)?;
        let mut now = opened.max(ci_done);
        if pr.draft {
            now += self.rng.range(HOUR, DAY);
            let doc = self.pull_request_doc(&pr, "ready_for_review", now, author);
            self.emit("pull_request", &doc, now)?;
        }
        // Reviews, each maybe followed by a push that addresses it.
        let reviews = self.rng.range(1, 4);
        let approves = self.rng.chance(75);
        for r in 0..reviews {
            now += self.rng.range(20 * 60, 20 * HOUR);
            let reviewer = self.other_user(author);
            let last = r + 1 == reviews;
            let state = if last && approves {
                "approved"
            } else if self.rng.chance(50) {
                "changes_requested"
            } else {
                "commented"
            };
            self.review(&pr, reviewer, state, now)?;
            if self.rng.chance(40) {
                self.comment("pull_request_review_comment", &pr, reviewer, now + 30)?;
            }
            if !last && self.rng.chance(70) {
                now += self.rng.range(15 * 60, 6 * HOUR);
                let more = self.rng.range(1, 4);
                pr.commits += more;
                pr.head_sha = self.push(repo, &branch, author, now, more)?;
                let doc = self.pull_request_doc(&pr, "synchronize", now + 5, author);
                self.emit("pull_request", &doc, now + 5)?;
                let head = pr.head_sha.clone();
                ci_done = self.workflow_run(repo, &branch, &head, author, now + 3)?;
                now = now.max(ci_done);
            }
        }
        if self.rng.chance(50) {
            let who = self.other_user(author);
            let at = now + self.rng.range(60, HOUR);
            self.comment("issue_comment", &pr, who, at)?;
        }
        // Close it: merged, closed, or left open.
        let fate = self.rng.next() % 10;
        if fate == 9 {
            return Ok(());
        }
        now += self.rng.range(10 * 60, 10 * HOUR);
        let merged = fate < 8;
        let mut doc = self.pull_request_doc(&pr, "closed", now, author);
        set(&mut doc, "/pull_request/state", "closed");
        set(&mut doc, "/pull_request/closed_at", iso(now));
        set(&mut doc, "/pull_request/merged", merged);
        if merged {
            let merge_sha = self.rng.sha();
            let merger = self.other_user(author);
            set(&mut doc, "/pull_request/merged_at", iso(now));
            set(
                &mut doc,
                "/pull_request/merge_commit_sha",
                merge_sha.clone(),
            );
            self.set_user(&mut doc, "/pull_request/merged_by", merger);
            self.emit("pull_request", &doc, now)?;
            let main_sha = self.push(repo, "main", merger, now + 2, 1)?;
            let ci = self.workflow_run(repo, "main", &main_sha, merger, now + 4)?;
            self.deploy(repo, &main_sha, merger, ci + 30)?;
            self.branch_ref("delete", repo, &branch, author, now + 10)?;
        } else {
            self.emit("pull_request", &doc, now)?;
        }
        Ok(())
    }
}

/// The files being written, in `received` order, and what went into them.
struct Output {
    files: Vec<BufWriter<std::fs::File>>,
    events: u64,
    seed: u64,
    written: u64,
    bytes: u64,
    per_event: BTreeMap<&'static str, u64>,
    line: String,
}

impl Output {
    /// Writes the queued events received before `until_micros`, oldest first, up to `events`.
    fn write_until(&mut self, generator: &mut Generator, until_micros: i64) -> Result<()> {
        while self.written < self.events {
            match generator.pending.peek() {
                Some(Reverse(p)) if p.received_micros < until_micros => {}
                _ => break,
            }
            let Some(Reverse(p)) = generator.pending.pop() else {
                break;
            };
            let a = mix(self.seed ^ mix(self.written));
            let b = mix(a);
            let line = &mut self.line;
            line.clear();
            line.push_str("{\"delivery_id\":\"");
            line.push_str(&delivery_id(a, b));
            line.push_str("\",\"signature\":\"");
            line.push_str(&signature(a));
            line.push_str("\",\"received\":\"");
            line.push_str(&chrono_like(p.received_micros));
            line.push_str("\",\"event\":\"");
            line.push_str(p.event);
            line.push_str("\",\"payload\":");
            line.push_str(&serde_json::to_string(&p.payload)?);
            line.push_str("}\n");
            let file = (self.written * self.files.len() as u64 / self.events) as usize;
            self.files[file].write_all(line.as_bytes())?;
            self.bytes += line.len() as u64;
            *self.per_event.entry(p.event).or_default() += 1;
            self.written += 1;
        }
        Ok(())
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.events == 0 || args.files == 0 || args.repos == 0 || args.users < 2 {
        bail!("--events, --files and --repos must be positive and --users at least 2");
    }
    let mut generator = Generator {
        fixtures: load_fixtures(&args.payloads)?,
        rng: Rng(mix(args.seed)),
        pending: BinaryHeap::new(),
        sequence: 0,
        next_id: 5_000_000_000,
        repos: (0..args.repos)
            .map(|index| Repo {
                index,
                id: 600_000_000 + index as i64 * 17,
            })
            .collect(),
        users: (0..args.users)
            .map(|index| User {
                index,
                id: 80_000_000 + index as i64 * 13,
            })
            .collect(),
        pr_numbers: vec![0; args.repos as usize],
        run_numbers: vec![0; args.repos as usize],
    };
    std::fs::create_dir_all(&args.out)?;
    let files = (0..args.files)
        .map(|i| {
            let path = args.out.join(format!("part-{i:03}.ndjson"));
            std::fs::File::create(&path)
                .with_context(|| format!("creating {}", path.display()))
                .map(|f| BufWriter::with_capacity(1 << 20, f))
        })
        .collect::<Result<Vec<_>>>()?;
    // About 28 events per story (measured); the stories' openings are spread evenly over the days.
    let stories_expected = (args.events / 28).max(1);
    let spacing = (args.days as i64 * DAY) / stories_expected as i64;
    let mut out = Output {
        files,
        events: args.events,
        seed: args.seed,
        written: 0,
        bytes: 0,
        per_event: BTreeMap::new(),
        line: String::new(),
    };
    let mut story = 0u64;
    while out.written < args.events {
        let opened = args.start_unix
            + LOOK_BACK
            + story as i64 * spacing
            + generator.rng.range(0, spacing.max(1));
        generator.story(story, opened)?;
        story += 1;
        out.write_until(&mut generator, (opened - LOOK_BACK) * 1_000_000)?;
        if generator.pending.len() as u64 + out.written >= args.events + 20_000 {
            // Enough queued to finish: write the rest in order (the last stories are cut short).
            out.write_until(&mut generator, i64::MAX)?;
        }
    }
    for file in &mut out.files {
        file.flush()?;
    }
    println!(
        "{}",
        json!({"mode": "generate", "files": args.files, "lines": out.written, "bytes": out.bytes,
               "stories": story, "per_event": out.per_event, "out": args.out.display().to_string()})
    );
    Ok(())
}
