//! The metrics and DORA views over hand-built scenarios: webhook events in the shapes GitHub
//! sends, received at chosen instants, with every duration asserted to the second, on DataFusion
//! and (the same events) on BigQuery's emulator, whose rows must be the same.
//!
//! The scenario (repository acme/widgets, UTC, Monday 2026-03-02 is day 1):
//! - Pull request #1 (alice) from `feature`: commits authored 08:00 (written +02:00) and 08:30
//!   pushed at 09:00, opened as a draft at 10:00, a commit of 10:45 pushed at 11:00, ready for
//!   review at 12:00, bob requested at 12:05 (and again at 15:00), carol at 12:06, team core
//!   at 12:07; alice comments on her own pull request at 12:30 (left out), bob requests changes
//!   at 14:00, dave (never requested) comments at 14:30, bob approves at 16:30; squash-merged at
//!   17:00 as a new commit. A push to `main` (07:00 commit) and one to `feature` of another repository
//!   (06:00 commit) must not count; the branch is deleted after the merge.
//! - Pull request #2 (alice) from the same branch `feature` on day 2: a commit of 08:50 pushed
//!   at 09:00, opened at 09:10, carol comments at 09:20, merged at 09:40 without approval.
//! - Pull request #3 from `hotfix` on day 3 (no push seen): opened ready for review at 10:00,
//!   converted to a draft at 10:30 and ready again at 11:00, approved by dave at 11:30, merged
//!   at 12:00. Pull request #4 from `rename`: a commit of 10:40 pushed day 2 at 10:50, opened
//!   10:55, merged 11:05 (across the rename below). carol comments on #1 after its merge.
//! - Deployments of `main`: staging #5000 succeeds day 1 17:20 (not production); production
//!   #5001 queued 17:30:05, in_progress 17:31, success 17:40, inactive day 2 11:10; production
//!   #5007, created day 2 09:35 (before #2 was merged), succeeds 09:45; production #5002 fails
//!   day 2 10:05 (inactive 11:10); staging #5005 fails day 2 10:30; production #5003 succeeds
//!   day 2 11:10; `Prod` #5004 succeeds day 3 09:05; `live` #5006 (production only in the
//!   settings test), created day 3 12:00, succeeds 12:04; `eu-west` #5008, which GitHub flags
//!   production_environment, ends in `error` day 3 13:10.
//! - Issues: #10 labelled `Incident` and `sev1`, opened day 2 10:10, closed 12:40; #11
//!   labelled `bug`, opened and closed; #12 labelled `sev1`, open.
//! - Workflow `CI` (id 300): ten completed runs in the week of day 1 lasting 100..1000 s
//!   (one failure, one cancelled, one re-run whose attempt 2 replaces a failed attempt 1, the
//!   last one starting Sunday 23:59 under the new name `Build`), one still running; two runs in
//!   the next week (success 120 s from Monday 00:00, timed_out 240 s). Workflow `Lint` (301):
//!   one success of 30 s.
//! - acme/widgets (id 99) is renamed acme/gizmos on day 2 at 11:00: every event received from
//!   then on names it so; views keyed by repository keep one row per repository id.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};

use bytes::Bytes;
use chrono::DateTime;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::local_tests::{same_value, view_rows};
use super::*;
use crate::event::{DeliveryHeaders, Event, Payload, lift};
use crate::store::{EventStore, StoreOptions};
use crate::testing::{emulator_config, events_batch, with_dataset};
use crate::warehouse::crosscheck_tests::rows;
use crate::warehouse::local::LocalWarehouse;
use crate::warehouse::{Params, QueryResult, Warehouse};

/// The views checked (the metrics and DORA views, with the latest-state view the DORA views
/// build on), each with the columns that name one of its rows: a golden file's rows are sorted
/// by them, and a difference names its row by them.
const METRICS_VIEWS: &[(&str, &[&str])] = &[
    ("pr_cycle_time", &["id"]),
    ("review_latency", &["pull_request_id", "reviewer"]),
    (
        "workflow_reliability",
        &["repository_id", "workflow_id", "week"],
    ),
    ("deployment_outcomes", &["deployment_id"]),
    (
        "dora_deployment_frequency",
        &["repository_id", "environment", "day"],
    ),
    ("dora_lead_time", &["pull_request_id"]),
    (
        "dora_change_failure_rate",
        &["repository_id", "environment", "day"],
    ),
    (
        "dora_time_to_restore",
        &["source", "repository_id", "deployment_id", "issue_number"],
    ),
];

/// The views of pull requests.
const PULL_REQUEST_VIEWS: &[&str] = &["pr_cycle_time", "review_latency"];
/// The views of deployments and incidents.
const DEPLOYMENT_VIEWS: &[&str] = &[
    "deployment_outcomes",
    "dora_deployment_frequency",
    "dora_lead_time",
    "dora_change_failure_rate",
    "dora_time_to_restore",
];
/// The views of workflow runs.
const WORKFLOW_VIEWS: &[&str] = &["workflow_reliability"];

/// Set to `1` to rewrite the golden files from the views instead of comparing.
const BLESS: &str = "GMA_BLESS";

/// A settings case: the folder of its golden files under `expected/`, and its settings.
#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    settings: fn() -> ViewSettings,
}

/// The default settings.
const DEFAULT: Case = Case {
    name: "default",
    settings: ViewSettings::default,
};
/// Incident labels `sev1` and `incident`, production environment `live`: [`sev1_and_live`].
const SETTINGS: Case = Case {
    name: "settings",
    settings: sev1_and_live,
};
const CASES: [Case; 2] = [DEFAULT, SETTINGS];

/// Microseconds since the epoch of an RFC 3339 instant.
fn micros(at: &str) -> i64 {
    DateTime::parse_from_rfc3339(at)
        .unwrap_or_else(|e| panic!("{at}: {e}"))
        .timestamp_micros()
}

fn user(login: &str) -> Value {
    let id = match login {
        "alice" => 1,
        "bob" => 2,
        "carol" => 3,
        "dave" => 4,
        "deploy-bot" => 9,
        _ => 99,
    };
    json!({
        "login": login,
        "id": id,
        "node_id": format!("U_{id}"),
        "type": if login.ends_with("-bot") { "Bot" } else { "User" },
        "site_admin": false,
        "html_url": format!("https://github.com/{login}"),
    })
}

fn repository(name: &str, id: i64) -> Value {
    json!({
        "id": id,
        "node_id": format!("R_{id}"),
        "name": name,
        "full_name": format!("acme/{name}"),
        "private": true,
        "visibility": "private",
        "owner": {"login": "acme", "id": 42, "type": "Organization"},
        "html_url": format!("https://github.com/acme/{name}"),
        "default_branch": "main",
    })
}

/// Webhook events in the order they were built, each received at a chosen instant.
#[derive(Default)]
struct Scenario {
    events: Vec<Event>,
    payloads: Vec<String>,
}

impl Scenario {
    /// Adds an `event` delivery received at `received` with `payload` plus the repository,
    /// organization and `sender` every delivery carries.
    fn add(&mut self, event: &str, received: &str, sender: &str, payload: Value) {
        self.add_to(event, received, sender, ("widgets", 99), payload);
    }

    fn add_to(
        &mut self,
        event: &str,
        received: &str,
        sender: &str,
        (repo, repo_id): (&str, i64),
        mut payload: Value,
    ) {
        // acme/widgets is renamed acme/gizmos on day 2 at 11:00.
        let repo = match repo {
            "widgets" if micros(received) >= micros(RENAMED_AT) => "gizmos",
            other => other,
        };
        let object = payload.as_object_mut().unwrap();
        object.insert("repository".into(), repository(repo, repo_id));
        object.insert(
            "organization".into(),
            json!({"login": "acme", "id": 42, "node_id": "O_42"}),
        );
        object.insert("sender".into(), user(sender));
        object.insert("installation".into(), json!({"id": 77, "node_id": "I_77"}));
        if event == "push" {
            // Push payloads give the repository's times in Unix seconds; pushed_at is this push.
            object["repository"]["pushed_at"] = json!(micros(received) / 1_000_000);
            object["repository"]["created_at"] = json!(1_700_000_000);
        }
        let text = payload.to_string();
        let n = self.events.len();
        self.events.push(Event {
            headers: DeliveryHeaders {
                delivery_id: format!("{:08x}-metrics-{n:04}", n * 7919),
                event: event.into(),
                signature: format!("sha256={n:064x}"),
                hook_id: Some(7),
                target_type: Some("organization".into()),
                target_id: Some(42),
            },
            received_micros: micros(received),
            lifted: lift(text.as_bytes()).unwrap(),
            payload: Payload::Inline(bytes::Bytes::from(text.clone())),
            payload_size: text.len() as u64,
        });
        self.payloads.push(text);
    }

    /// A push of `commits` (sha, author time) to `git_ref`.
    fn push(
        &mut self,
        received: &str,
        repo: (&str, i64),
        git_ref: &str,
        before: &str,
        commits: &[(&str, &str)],
    ) {
        let commits: Vec<Value> = commits
            .iter()
            .map(|(sha, at)| {
                json!({
                    "id": sha,
                    "tree_id": format!("tree{sha}"),
                    "distinct": true,
                    "message": format!("change {sha}"),
                    "timestamp": at,
                    "url": format!("https://github.com/acme/widgets/commit/{sha}"),
                    "author": {"name": "Alice", "email": "alice@example.com", "username": "alice"},
                    "committer": {"name": "Alice", "email": "alice@example.com", "username": "alice"},
                    "added": [], "removed": [], "modified": ["src/lib.rs"],
                })
            })
            .collect();
        let after = commits
            .last()
            .map_or("0000000000000000000000000000000000000000", |c| {
                c["id"].as_str().unwrap()
            })
            .to_owned();
        let deleted = commits.is_empty();
        self.add_to(
            "push",
            received,
            "alice",
            repo,
            json!({
                "ref": git_ref,
                "before": before,
                "after": after,
                "created": before.starts_with("0000"),
                "deleted": deleted,
                "forced": false,
                "base_ref": null,
                "compare": format!("https://github.com/acme/widgets/compare/{before}...{after}"),
                "head_commit": commits.last().cloned(),
                "commits": commits,
                "pusher": {"name": "alice", "email": "alice@example.com"},
            }),
        );
    }
}

/// A pull request's fixed fields, from which each event's `pull_request` object is built.
struct PullRequest {
    id: i64,
    number: i64,
    head_ref: &'static str,
    head_sha: &'static str,
    created_at: &'static str,
}

impl PullRequest {
    /// The `pull_request` object as of `updated_at`; `closed` is (closed_at, merge commit) once
    /// merged.
    fn object(&self, updated_at: &str, draft: bool, merged: Option<(&str, &str)>) -> Value {
        let repo = if micros(updated_at) >= micros(RENAMED_AT) {
            "gizmos"
        } else {
            "widgets"
        };
        json!({
            "url": format!("https://api.github.com/repos/acme/widgets/pulls/{}", self.number),
            "id": self.id,
            "node_id": format!("PR_{}", self.id),
            "html_url": format!("https://github.com/acme/widgets/pull/{}", self.number),
            "number": self.number,
            "state": if merged.is_some() { "closed" } else { "open" },
            "locked": false,
            "title": format!("Feature, part {}", self.number),
            "user": user("alice"),
            "body": "Adds the feature.",
            "created_at": self.created_at,
            "updated_at": updated_at,
            "closed_at": merged.map(|(at, _)| at),
            "merged_at": merged.map(|(at, _)| at),
            "merge_commit_sha": merged.map_or("e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0", |(_, sha)| sha),
            "assignee": null,
            "requested_reviewers": [],
            "requested_teams": [],
            "labels": [],
            "draft": draft,
            "head": {
                "label": format!("acme:{}", self.head_ref),
                "ref": self.head_ref,
                "sha": self.head_sha,
                "user": {"login": "acme", "id": 42},
                "repo": repository(repo, 99),
            },
            "base": {
                "label": "acme:main",
                "ref": "main",
                "sha": "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0",
                "user": {"login": "acme", "id": 42},
                "repo": repository(repo, 99),
            },
            "author_association": "MEMBER",
            "merged": merged.is_some(),
            "mergeable": null,
            "mergeable_state": "unknown",
            "merged_by": merged.map(|_| user("alice")),
            "comments": 0,
            "review_comments": 0,
            "maintainer_can_modify": false,
            "commits": 2,
            "additions": 40,
            "deletions": 5,
            "changed_files": 3,
        })
    }
}

fn pull_request_event(
    scenario: &mut Scenario,
    pr: &PullRequest,
    action: &str,
    at: &str,
    draft: bool,
    merged: Option<(&str, &str)>,
    extra: Value,
) {
    let mut payload = json!({
        "action": action,
        "number": pr.number,
        "pull_request": pr.object(at, draft, merged),
    });
    if let (Some(payload), Value::Object(extra)) = (payload.as_object_mut(), extra) {
        payload.extend(extra);
    }
    scenario.add("pull_request", at, "alice", payload);
}

fn review(
    scenario: &mut Scenario,
    pr: &PullRequest,
    id: i64,
    reviewer: &str,
    state: &str,
    at: &str,
) {
    scenario.add(
        "pull_request_review",
        at,
        reviewer,
        json!({
            "action": "submitted",
            "review": {
                "id": id,
                "node_id": format!("PRR_{id}"),
                "user": user(reviewer),
                "body": null,
                "commit_id": pr.head_sha,
                "submitted_at": at,
                "state": state,
                "html_url": format!("https://github.com/acme/widgets/pull/{}#pullrequestreview-{id}", pr.number),
                "author_association": "MEMBER",
            },
            "pull_request": pr.object(at, false, None),
        }),
    );
}

/// One `deployment_status` event: deployment `id` to `environment` is in `state` since `at`.
fn deployment_status(
    scenario: &mut Scenario,
    (id, environment, created_at): (i64, &str, &str),
    status_id: i64,
    state: &str,
    at: &str,
) {
    let mut deployment = json!({
        "url": format!("https://api.github.com/repos/acme/widgets/deployments/{id}"),
        "id": id,
        "node_id": format!("DE_{id}"),
        "sha": format!("{id:0>40}"),
        "ref": "main",
        "task": "deploy",
        "payload": {},
        "original_environment": environment,
        "environment": environment,
        "description": null,
        "creator": user("deploy-bot"),
        "created_at": created_at,
        "updated_at": at,
        "transient_environment": false,
    });
    if id == 5001 {
        // The squash merge of pull request #1, deployed by its new commit.
        deployment["sha"] = json!("5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a");
    }
    match environment {
        "staging" => deployment["production_environment"] = json!(false),
        // GitHub's flag alone makes it production, whatever its name.
        "eu-west" => deployment["production_environment"] = json!(true),
        _ => {}
    }
    scenario.add(
        "deployment_status",
        at,
        "deploy-bot",
        json!({
            "action": "created",
            "deployment_status": {
                "url": format!("https://api.github.com/repos/acme/widgets/deployments/{id}/statuses/{status_id}"),
                "id": status_id,
                "node_id": format!("DES_{status_id}"),
                "state": state,
                "creator": user("deploy-bot"),
                "description": "",
                "environment": environment,
                "target_url": "",
                "created_at": at,
                "updated_at": at,
                "deployment_url": format!("https://api.github.com/repos/acme/widgets/deployments/{id}"),
            },
            "deployment": deployment,
        }),
    );
}

/// One `issues` event of issue `number` carrying `labels`.
fn issue_event(
    scenario: &mut Scenario,
    number: i64,
    action: &str,
    labels: &[&str],
    (created_at, at, closed): (&str, &str, bool),
) {
    let labels: Vec<Value> = labels
        .iter()
        .enumerate()
        .map(|(i, name)| json!({"id": 800 + i, "name": name, "color": "d73a4a", "default": false, "description": null}))
        .collect();
    let mut payload = json!({
        "action": action,
        "issue": {
            "url": format!("https://api.github.com/repos/acme/widgets/issues/{number}"),
            "html_url": format!("https://github.com/acme/widgets/issues/{number}"),
            "id": 7000 + number,
            "node_id": format!("I_{number}"),
            "number": number,
            "title": format!("Issue {number}"),
            "user": user("carol"),
            "labels": labels.clone(),
            "state": if closed { "closed" } else { "open" },
            "locked": false,
            "assignee": null,
            "assignees": [],
            "comments": 0,
            "created_at": created_at,
            "updated_at": at,
            "closed_at": if closed { Some(at) } else { None },
            "author_association": "MEMBER",
            "state_reason": if closed { Some("completed") } else { None },
            "body": "Something broke.",
        },
    });
    if action == "labeled" {
        payload["label"] = labels.last().cloned().unwrap();
    }
    scenario.add("issues", at, "carol", payload);
}

/// One `workflow_run` event of run `id` (attempt `attempt`) of workflow `workflow_id`.
#[allow(clippy::too_many_arguments)]
fn workflow_run(
    scenario: &mut Scenario,
    repo: (&str, i64),
    (workflow_id, name): (i64, &str),
    id: i64,
    attempt: i64,
    started: &str,
    seconds: Option<i64>,
    conclusion: Option<&str>,
) {
    let started_at = DateTime::parse_from_rfc3339(started).unwrap();
    let updated_at = started_at + chrono::Duration::seconds(seconds.unwrap_or(5));
    let updated = updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (action, status) = match conclusion {
        Some(_) => ("completed", "completed"),
        None => ("in_progress", "in_progress"),
    };
    scenario.add_to(
        "workflow_run",
        &updated,
        "alice",
        repo,
        json!({
            "action": action,
            "workflow_run": {
                "id": id,
                "name": name,
                "node_id": format!("WFR_{id}"),
                "head_branch": "main",
                "head_sha": "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1",
                "path": ".github/workflows/ci.yml",
                "display_title": "CI",
                "run_number": id - 400,
                "event": "push",
                "status": status,
                "conclusion": conclusion,
                "workflow_id": workflow_id,
                "check_suite_id": id * 10,
                "html_url": format!("https://github.com/acme/widgets/actions/runs/{id}"),
                "pull_requests": [],
                "created_at": "2026-03-02T00:00:00Z",
                "updated_at": updated,
                "actor": user("alice"),
                "triggering_actor": user("alice"),
                "run_attempt": attempt,
                "run_started_at": started,
            },
            "workflow": {
                "id": workflow_id,
                "node_id": format!("W_{workflow_id}"),
                "name": name,
                "path": ".github/workflows/ci.yml",
                "state": "active",
                "html_url": format!("https://github.com/acme/widgets/actions/workflows/{workflow_id}"),
            },
        }),
    );
}

/// When acme/widgets (id 99) became acme/gizmos.
const RENAMED_AT: &str = "2026-03-03T11:00:00Z";
const NO_SHA: &str = "0000000000000000000000000000000000000000";
const SQUASH: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const MERGE_2: &str = "3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e";
const MERGE_3: &str = "4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e";
const MERGE_4: &str = "6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e";

/// The scenario of the module's documentation.
fn scenario() -> Scenario {
    let mut s = Scenario::default();
    let widgets = ("widgets", 99);

    // Pull request #1, squash-merged.
    let pr1 = PullRequest {
        id: 1001,
        number: 1,
        head_ref: "feature",
        head_sha: "a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3",
        created_at: "2026-03-02T10:00:00Z",
    };
    // Pushes that are not to the pull request's branch in its repository.
    s.push(
        "2026-03-02T07:30:00Z",
        widgets,
        "refs/heads/main",
        "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0",
        &[(
            "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0",
            "2026-03-02T07:00:00Z",
        )],
    );
    s.push(
        "2026-03-02T06:30:00Z",
        ("gadgets", 98),
        "refs/heads/feature",
        NO_SHA,
        &[(
            "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0",
            "2026-03-02T06:00:00Z",
        )],
    );
    s.push(
        "2026-03-02T09:00:00Z",
        widgets,
        "refs/heads/feature",
        NO_SHA,
        &[
            // 08:00 UTC, written in the author's zone.
            (
                "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
                "2026-03-02T10:00:00+02:00",
            ),
            (
                "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2",
                "2026-03-02T08:30:00Z",
            ),
        ],
    );
    pull_request_event(
        &mut s,
        &pr1,
        "opened",
        "2026-03-02T10:00:00Z",
        true,
        None,
        json!({}),
    );
    s.push(
        "2026-03-02T11:00:00Z",
        widgets,
        "refs/heads/feature",
        "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2",
        &[(
            "a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3",
            "2026-03-02T10:45:00Z",
        )],
    );
    pull_request_event(
        &mut s,
        &pr1,
        "ready_for_review",
        "2026-03-02T12:00:00Z",
        false,
        None,
        json!({}),
    );
    for (reviewer, at) in [
        ("bob", "2026-03-02T12:05:00Z"),
        ("carol", "2026-03-02T12:06:00Z"),
        ("bob", "2026-03-02T15:00:00Z"),
    ] {
        pull_request_event(
            &mut s,
            &pr1,
            "review_requested",
            at,
            false,
            None,
            json!({"requested_reviewer": user(reviewer)}),
        );
    }
    // A team's review request is no person's: no row of its own.
    pull_request_event(
        &mut s,
        &pr1,
        "review_requested",
        "2026-03-02T12:07:00Z",
        false,
        None,
        json!({"requested_team": {"id": 5, "name": "Core", "slug": "core"}}),
    );
    review(
        &mut s,
        &pr1,
        9001,
        "alice",
        "commented",
        "2026-03-02T12:30:00Z",
    );
    review(
        &mut s,
        &pr1,
        9002,
        "bob",
        "changes_requested",
        "2026-03-02T14:00:00Z",
    );
    review(
        &mut s,
        &pr1,
        9003,
        "dave",
        "commented",
        "2026-03-02T14:30:00Z",
    );
    review(
        &mut s,
        &pr1,
        9004,
        "bob",
        "approved",
        "2026-03-02T16:30:00Z",
    );
    pull_request_event(
        &mut s,
        &pr1,
        "closed",
        "2026-03-02T17:00:00Z",
        false,
        Some(("2026-03-02T17:00:00Z", SQUASH)),
        json!({}),
    );
    // carol comments after the merge: not a review of the merged change.
    review(
        &mut s,
        &pr1,
        9007,
        "carol",
        "commented",
        "2026-03-02T18:00:00Z",
    );
    // The merged branch is deleted (a push with no commits).
    s.push(
        "2026-03-02T17:00:30Z",
        widgets,
        "refs/heads/feature",
        "a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3",
        &[],
    );

    // Pull request #2, from a branch of the same name, merged the next day without approval.
    let pr2 = PullRequest {
        id: 1002,
        number: 2,
        head_ref: "feature",
        head_sha: "b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4",
        created_at: "2026-03-03T09:10:00Z",
    };
    s.push(
        "2026-03-03T09:00:00Z",
        widgets,
        "refs/heads/feature",
        NO_SHA,
        &[(pr2.head_sha, "2026-03-03T08:50:00Z")],
    );
    pull_request_event(
        &mut s,
        &pr2,
        "opened",
        "2026-03-03T09:10:00Z",
        false,
        None,
        json!({}),
    );
    review(
        &mut s,
        &pr2,
        9005,
        "carol",
        "commented",
        "2026-03-03T09:20:00Z",
    );
    pull_request_event(
        &mut s,
        &pr2,
        "closed",
        "2026-03-03T09:40:00Z",
        false,
        Some(("2026-03-03T09:40:00Z", MERGE_2)),
        json!({}),
    );

    // Pull request #3 from `hotfix` (no push seen), opened ready for review, turned into a
    // draft and back (it was ready from its opening), approved by dave, merged at the very
    // second `live` is created.
    let pr3 = PullRequest {
        id: 1003,
        number: 3,
        head_ref: "hotfix",
        head_sha: "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3",
        created_at: "2026-03-04T10:00:00Z",
    };
    pull_request_event(
        &mut s,
        &pr3,
        "opened",
        "2026-03-04T10:00:00Z",
        false,
        None,
        json!({}),
    );
    pull_request_event(
        &mut s,
        &pr3,
        "converted_to_draft",
        "2026-03-04T10:30:00Z",
        true,
        None,
        json!({}),
    );
    pull_request_event(
        &mut s,
        &pr3,
        "ready_for_review",
        "2026-03-04T11:00:00Z",
        false,
        None,
        json!({}),
    );
    review(
        &mut s,
        &pr3,
        9006,
        "dave",
        "approved",
        "2026-03-04T11:30:00Z",
    );
    pull_request_event(
        &mut s,
        &pr3,
        "closed",
        "2026-03-04T12:00:00Z",
        false,
        Some(("2026-03-04T12:00:00Z", MERGE_3)),
        json!({}),
    );

    // Pull request #4 from `rename`: a commit of 10:40 pushed at 10:50 on day 2, opened at
    // 10:55, merged at 11:05, after the repository was renamed at 11:00 (its pushes and its
    // newest state name the repository differently).
    let pr4 = PullRequest {
        id: 1004,
        number: 4,
        head_ref: "rename",
        head_sha: "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4",
        created_at: "2026-03-03T10:55:00Z",
    };
    s.push(
        "2026-03-03T10:50:00Z",
        widgets,
        "refs/heads/rename",
        NO_SHA,
        &[(pr4.head_sha, "2026-03-03T10:40:00Z")],
    );
    pull_request_event(
        &mut s,
        &pr4,
        "opened",
        "2026-03-03T10:55:00Z",
        false,
        None,
        json!({}),
    );
    pull_request_event(
        &mut s,
        &pr4,
        "closed",
        "2026-03-03T11:05:00Z",
        false,
        Some(("2026-03-03T11:05:00Z", MERGE_4)),
        json!({}),
    );

    // Deployments.
    let staging = (5000, "staging", "2026-03-02T17:15:00Z");
    deployment_status(&mut s, staging, 1, "success", "2026-03-02T17:20:00Z");
    let d1 = (5001, "production", "2026-03-02T17:30:00Z");
    deployment_status(&mut s, d1, 2, "queued", "2026-03-02T17:30:05Z");
    deployment_status(&mut s, d1, 3, "in_progress", "2026-03-02T17:31:00Z");
    deployment_status(&mut s, d1, 4, "success", "2026-03-02T17:40:00Z");
    // Created before #2 was merged, succeeded after: it cannot hold #2.
    let d7 = (5007, "production", "2026-03-03T09:35:00Z");
    deployment_status(&mut s, d7, 15, "success", "2026-03-03T09:45:00Z");
    let d2 = (5002, "production", "2026-03-03T10:00:00Z");
    deployment_status(&mut s, d2, 5, "in_progress", "2026-03-03T10:00:10Z");
    deployment_status(&mut s, d2, 6, "failure", "2026-03-03T10:05:00Z");
    let staging_failed = (5005, "staging", "2026-03-03T10:20:00Z");
    deployment_status(&mut s, staging_failed, 7, "failure", "2026-03-03T10:30:00Z");
    let d3 = (5003, "production", "2026-03-03T11:00:00Z");
    deployment_status(&mut s, d3, 8, "queued", "2026-03-03T11:00:01Z");
    deployment_status(&mut s, d3, 9, "success", "2026-03-03T11:10:00Z");
    deployment_status(&mut s, d1, 10, "inactive", "2026-03-03T11:10:00Z");
    deployment_status(&mut s, d2, 11, "inactive", "2026-03-03T11:10:00Z");
    let d4 = (5004, "Prod", "2026-03-04T09:00:00Z");
    deployment_status(&mut s, d4, 12, "in_progress", "2026-03-04T09:00:30Z");
    deployment_status(&mut s, d4, 13, "success", "2026-03-04T09:05:00Z");
    // Created at the second #3 was merged.
    let live = (5006, "live", "2026-03-04T12:00:00Z");
    deployment_status(&mut s, live, 14, "success", "2026-03-04T12:04:00Z");
    // Flagged production_environment by GitHub; ends in `error`, never restored.
    let eu = (5008, "eu-west", "2026-03-04T13:00:00Z");
    deployment_status(&mut s, eu, 16, "in_progress", "2026-03-04T13:01:00Z");
    deployment_status(&mut s, eu, 17, "error", "2026-03-04T13:10:00Z");

    // Issues.
    let incident = ("2026-03-03T10:10:00Z", false);
    issue_event(
        &mut s,
        10,
        "opened",
        &[],
        ("2026-03-03T10:10:00Z", "2026-03-03T10:10:00Z", incident.1),
    );
    issue_event(
        &mut s,
        10,
        "labeled",
        &["Incident"],
        (incident.0, "2026-03-03T10:11:00Z", false),
    );
    issue_event(
        &mut s,
        10,
        "labeled",
        &["Incident", "sev1"],
        (incident.0, "2026-03-03T10:12:00Z", false),
    );
    issue_event(
        &mut s,
        10,
        "closed",
        &["Incident", "sev1"],
        (incident.0, "2026-03-03T12:40:00Z", true),
    );
    let bug = "2026-03-03T13:00:00Z";
    issue_event(&mut s, 11, "opened", &["bug"], (bug, bug, false));
    issue_event(
        &mut s,
        11,
        "closed",
        &["bug"],
        (bug, "2026-03-03T14:00:00Z", true),
    );
    let sev = "2026-03-04T08:00:00Z";
    issue_event(&mut s, 12, "opened", &["sev1"], (sev, sev, false));

    // Workflow runs: CI in the week of Monday 2026-03-02.
    let ci = (300, "CI");
    for (id, started, seconds, conclusion) in [
        (401, "2026-03-02T01:00:00Z", 300, "success"),
        (402, "2026-03-02T02:00:00Z", 100, "success"),
        (403, "2026-03-03T01:00:00Z", 1000, "success"),
        (404, "2026-03-03T02:00:00Z", 200, "failure"),
        (405, "2026-03-04T01:00:00Z", 700, "success"),
        (406, "2026-03-04T02:00:00Z", 400, "cancelled"),
        (407, "2026-03-05T01:00:00Z", 900, "success"),
        (408, "2026-03-06T01:00:00Z", 600, "success"),
    ] {
        workflow_run(&mut s, widgets, ci, id, 1, started, Some(seconds / 2), None);
        workflow_run(
            &mut s,
            widgets,
            ci,
            id,
            1,
            started,
            Some(seconds),
            Some(conclusion),
        );
    }
    // Re-run: attempt 1 failed after 50 s, attempt 2 succeeded after 500 s.
    workflow_run(
        &mut s,
        widgets,
        ci,
        409,
        1,
        "2026-03-06T02:00:00Z",
        Some(50),
        Some("failure"),
    );
    workflow_run(
        &mut s,
        widgets,
        ci,
        409,
        2,
        "2026-03-06T03:00:00Z",
        Some(500),
        Some("success"),
    );
    // The last run of the week starts on Sunday before midnight, under a new name.
    workflow_run(
        &mut s,
        widgets,
        (300, "Build"),
        410,
        1,
        "2026-03-08T23:59:00Z",
        Some(800),
        Some("success"),
    );
    // Still running: not counted.
    workflow_run(
        &mut s,
        widgets,
        ci,
        411,
        1,
        "2026-03-07T01:00:00Z",
        Some(60),
        None,
    );
    // The next week, from Monday 00:00 UTC.
    workflow_run(
        &mut s,
        widgets,
        ci,
        412,
        1,
        "2026-03-09T00:00:00Z",
        Some(120),
        Some("success"),
    );
    workflow_run(
        &mut s,
        widgets,
        ci,
        413,
        1,
        "2026-03-10T00:00:00Z",
        Some(240),
        Some("timed_out"),
    );
    workflow_run(
        &mut s,
        widgets,
        (301, "Lint"),
        414,
        1,
        "2026-03-04T05:00:00Z",
        Some(30),
        Some("success"),
    );
    s
}

/// The rows of `rows` whose columns hold `key`'s values.
fn rows_where<'a>(
    rows: &'a [Map<String, Value>],
    key: &[(&str, Value)],
) -> Vec<&'a Map<String, Value>> {
    rows.iter()
        .filter(|row| key.iter().all(|(c, v)| same_value(row.get(*c), Some(v))))
        .collect()
}

/// Asserts that `view` has exactly one row matching `key` and that it holds `expected`.
fn assert_row(
    view: &str,
    rows: &[Map<String, Value>],
    key: &[(&str, Value)],
    expected: &[(&str, Value)],
) {
    let found = rows_where(rows, key);
    assert_eq!(
        found.len(),
        1,
        "{view}: one row with {key:?}, found {found:?} among {rows:?}"
    );
    let row = found[0];
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(column, value)| !same_value(row.get(*column), Some(value)))
        .map(|(column, value)| format!("{column}: expected {value}, got {:?}", row.get(*column)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{view} {key:?}:\n  {}\n  row: {row:?}",
        wrong.join("\n  ")
    );
}

/// Settings that count issues labelled `sev1` or `incident` as incidents (written in another
/// case) and `live` as production.
fn sev1_and_live() -> ViewSettings {
    ViewSettings {
        incident_labels: vec!["SEV1".to_owned(), "Incident".to_owned()],
        production_environments: vec!["live".to_owned()],
        ..ViewSettings::default()
    }
}

/// The folder of the scenario's data: `testdata/views/metrics`.
fn testdata() -> PathBuf {
    gma_testkit::repo_root().join("testdata/views/metrics")
}

/// One line of `events.ndjson`: a delivery's headers, when it was received and its payload,
/// kept byte for byte.
#[derive(Deserialize)]
struct Delivery<'a> {
    delivery_id: String,
    event: String,
    received_at: String,
    signature: String,
    hook_id: Option<i64>,
    target_type: Option<String>,
    target_id: Option<i64>,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// The scenario's events, in the file's order, with their payloads.
fn scenario_events() -> (Vec<Event>, Vec<String>) {
    let path = testdata().join("events.ndjson");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let at = || format!("{}:{}", path.display(), i + 1);
            let delivery: Delivery =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{}: {e}", at()));
            let received_micros = DateTime::parse_from_rfc3339(&delivery.received_at)
                .unwrap_or_else(|e| panic!("{}: received_at: {e}", at()))
                .timestamp_micros();
            let payload = delivery.payload.get().to_owned();
            let headers = DeliveryHeaders {
                delivery_id: delivery.delivery_id,
                event: delivery.event,
                signature: delivery.signature,
                hook_id: delivery.hook_id,
                target_type: delivery.target_type,
                target_id: delivery.target_id,
            };
            let event = Event::inline(headers, received_micros, Bytes::from(payload.clone()))
                .unwrap_or_else(|e| panic!("{}: {e}", at()));
            (event, payload)
        })
        .unzip()
}

/// A local warehouse over the scenario with `settings`.
async fn local_scenario(settings: ViewSettings) -> (tempfile::TempDir, LocalWarehouse, Scenario) {
    let (events, payloads) = scenario_events();
    let s = Scenario { events, payloads };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EventStore::open(dir.path(), StoreOptions::default()).unwrap());
    let warehouse = LocalWarehouse::with_event_store(store)
        .await
        .unwrap()
        .with_view_settings(settings);
    warehouse
        .append(&crate::sql::EVENTS, events_batch(&s.events, &s.payloads))
        .await
        .unwrap();
    (dir, warehouse, s)
}

/// An instant as expected in a view's row (compared as an instant by `same_value`).
fn ts(at: &str) -> Value {
    json!(at)
}

/// The hand-written asserts of the former test `pr_cycle_time_and_review_latency_of_the_scenario`, over `source`.
async fn old_pull_request_asserts(source: &Source<'_>) {
    let cycle = source.rows("pr_cycle_time").await;
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    assert_row(
        "pr_cycle_time",
        &cycle,
        &[("id", json!(1001))],
        &[
            ("number", json!(1)),
            ("repository_full_name", json!("acme/widgets")),
            ("head_ref", json!("feature")),
            ("merge_commit_sha", json!(SQUASH)),
            ("first_commit_at", ts("2026-03-02T08:00:00Z")),
            ("opened_at", ts("2026-03-02T10:00:00Z")),
            ("ready_at", ts("2026-03-02T12:00:00Z")),
            ("first_review_at", ts("2026-03-02T14:00:00Z")),
            ("approved_at", ts("2026-03-02T16:30:00Z")),
            ("merged_at", ts("2026-03-02T17:00:00Z")),
            ("reviews", json!(3)),
            ("coding_seconds", json!(2 * 3600)),
            ("pickup_seconds", json!(2 * 3600)),
            ("review_seconds", json!(2 * 3600 + 1800)),
            ("merge_seconds", json!(1800)),
            ("first_review_latency_seconds", json!(4 * 3600)),
            ("cycle_seconds", json!(9 * 3600)),
        ],
    );
    assert_row(
        "pr_cycle_time",
        &cycle,
        &[("id", json!(1002))],
        &[
            ("number", json!(2)),
            ("merge_commit_sha", json!(MERGE_2)),
            // Only the pushes since #1 was merged from the same branch.
            ("first_commit_at", ts("2026-03-03T08:50:00Z")),
            ("opened_at", ts("2026-03-03T09:10:00Z")),
            ("ready_at", ts("2026-03-03T09:10:00Z")),
            ("first_review_at", ts("2026-03-03T09:20:00Z")),
            ("approved_at", Value::Null),
            ("merged_at", ts("2026-03-03T09:40:00Z")),
            ("reviews", json!(1)),
            ("coding_seconds", json!(1200)),
            ("pickup_seconds", json!(600)),
            ("review_seconds", json!(1200)),
            ("merge_seconds", Value::Null),
            ("first_review_latency_seconds", json!(600)),
            ("cycle_seconds", json!(3000)),
        ],
    );

    assert_row(
        "pr_cycle_time",
        &cycle,
        &[("id", json!(1003))],
        &[
            ("head_ref", json!("hotfix")),
            ("repository_full_name", json!("acme/gizmos")),
            ("first_commit_at", Value::Null),
            ("opened_at", ts("2026-03-04T10:00:00Z")),
            // Opened ready for review: its return from draft does not move when it was ready.
            ("ready_at", ts("2026-03-04T10:00:00Z")),
            ("first_review_at", ts("2026-03-04T11:30:00Z")),
            ("approved_at", ts("2026-03-04T11:30:00Z")),
            ("reviews", json!(1)),
            ("coding_seconds", Value::Null),
            ("pickup_seconds", json!(5400)),
            ("review_seconds", json!(0)),
            ("merge_seconds", json!(1800)),
            ("first_review_latency_seconds", json!(5400)),
            // No push seen: from its opening.
            ("cycle_seconds", json!(7200)),
        ],
    );

    assert_row(
        "pr_cycle_time",
        &cycle,
        &[("id", json!(1004))],
        &[
            ("repository_full_name", json!("acme/gizmos")),
            ("head_repository_full_name", json!("acme/gizmos")),
            // Pushed to the same repository under its former name.
            ("first_commit_at", ts("2026-03-03T10:40:00Z")),
            ("ready_at", ts("2026-03-03T10:55:00Z")),
            ("first_review_at", Value::Null),
            ("reviews", json!(0)),
            ("coding_seconds", json!(900)),
            ("pickup_seconds", Value::Null),
            ("review_seconds", Value::Null),
            ("merge_seconds", Value::Null),
            ("first_review_latency_seconds", Value::Null),
            ("cycle_seconds", json!(1500)),
        ],
    );

    let latency = source.rows("review_latency").await;
    assert_eq!(
        latency.len(),
        5,
        "the author's own review is left out: {latency:?}"
    );
    let pr1 = ("pull_request_id", json!(1001));
    assert_row(
        "review_latency",
        &latency,
        &[pr1.clone(), ("reviewer", json!("bob"))],
        &[
            ("pull_request_number", json!(1)),
            ("pull_request_author", json!("alice")),
            ("was_requested", json!(true)),
            ("requested_at", ts("2026-03-02T12:05:00Z")),
            ("first_review_at", ts("2026-03-02T14:00:00Z")),
            ("first_review_state", json!("changes_requested")),
            ("latency_seconds", json!(6900)),
        ],
    );
    assert_row(
        "review_latency",
        &latency,
        &[pr1.clone(), ("reviewer", json!("carol"))],
        &[
            ("was_requested", json!(true)),
            ("requested_at", ts("2026-03-02T12:06:00Z")),
            // After the merge: a review all the same.
            ("first_review_at", ts("2026-03-02T18:00:00Z")),
            ("first_review_state", json!("commented")),
            ("latency_seconds", json!(5 * 3600 + 54 * 60)),
        ],
    );
    assert_row(
        "review_latency",
        &latency,
        &[pr1, ("reviewer", json!("dave"))],
        &[
            ("was_requested", json!(false)),
            // Never requested: from when the draft became ready.
            ("requested_at", ts("2026-03-02T12:00:00Z")),
            ("first_review_at", ts("2026-03-02T14:30:00Z")),
            ("first_review_state", json!("commented")),
            ("latency_seconds", json!(9000)),
        ],
    );
    assert_row(
        "review_latency",
        &latency,
        &[
            ("pull_request_id", json!(1002)),
            ("reviewer", json!("carol")),
        ],
        &[
            ("pull_request_number", json!(2)),
            ("was_requested", json!(false)),
            ("requested_at", ts("2026-03-03T09:10:00Z")),
            ("first_review_at", ts("2026-03-03T09:20:00Z")),
            ("first_review_state", json!("commented")),
            ("latency_seconds", json!(600)),
        ],
    );
    assert_row(
        "review_latency",
        &latency,
        &[
            ("pull_request_id", json!(1003)),
            ("reviewer", json!("dave")),
        ],
        &[
            ("was_requested", json!(false)),
            ("requested_at", ts("2026-03-04T10:00:00Z")),
            ("first_review_state", json!("approved")),
            ("latency_seconds", json!(5400)),
        ],
    );
}

/// The hand-written asserts of the former test `dora_views_of_the_scenario`, over `source`.
async fn old_dora_asserts(source: &Source<'_>) {
    let outcomes = source.rows("deployment_outcomes").await;
    assert_eq!(outcomes.len(), 9, "{outcomes:?}");
    let (day1, day2, day3) = ("2026-03-02T", "2026-03-03T", "2026-03-04T");
    // (deployment, environment, repository, production, final state, ended, first success)
    for (id, environment, repository, production, state, ended, succeeded) in [
        (5008, "eu-west", "gizmos", true, "error", "13:10:00", None),
        (
            5000,
            "staging",
            "widgets",
            false,
            "success",
            "17:20:00",
            Some(day1),
        ),
        // Marked inactive later: still a success, ended when it succeeded.
        (
            5001,
            "production",
            "widgets",
            true,
            "success",
            "17:40:00",
            Some(day1),
        ),
        (
            5007,
            "production",
            "widgets",
            true,
            "success",
            "09:45:00",
            Some(day2),
        ),
        (
            5002,
            "production",
            "widgets",
            true,
            "failure",
            "10:05:00",
            None,
        ),
        (
            5005, "staging", "widgets", false, "failure", "10:30:00", None,
        ),
        (
            5003,
            "production",
            "gizmos",
            true,
            "success",
            "11:10:00",
            Some(day2),
        ),
        (
            5004,
            "Prod",
            "gizmos",
            true,
            "success",
            "09:05:00",
            Some(day3),
        ),
        (
            5006,
            "live",
            "gizmos",
            false,
            "success",
            "12:04:00",
            Some(day3),
        ),
    ] {
        let day = match id {
            5000 | 5001 => day1,
            5004 | 5006 | 5008 => day3,
            _ => day2,
        };
        let ended = format!("{day}{ended}Z");
        assert_row(
            "deployment_outcomes",
            &outcomes,
            &[("deployment_id", json!(id))],
            &[
                ("environment", json!(environment)),
                ("repository_full_name", json!(format!("acme/{repository}"))),
                ("repository_id", json!(99)),
                ("ref", json!("main")),
                ("is_production", json!(production)),
                ("final_state", json!(state)),
                ("final_state_at", json!(ended)),
                (
                    "first_success_at",
                    succeeded.map_or(Value::Null, |_| json!(ended)),
                ),
            ],
        );
    }

    // One row per repository (by id, under its newest name), environment and day.
    let frequency = source.rows("dora_deployment_frequency").await;
    assert_eq!(frequency.len(), 3, "{frequency:?}");
    for (environment, day, repository, deployments) in [
        ("production", "2026-03-02", "widgets", 1),
        // #5007 and #5003, across the rename.
        ("production", "2026-03-03", "gizmos", 2),
        ("Prod", "2026-03-04", "gizmos", 1),
    ] {
        assert_row(
            "dora_deployment_frequency",
            &frequency,
            &[("environment", json!(environment)), ("day", json!(day))],
            &[
                ("deployments", json!(deployments)),
                ("repository_id", json!(99)),
                ("repository_full_name", json!(format!("acme/{repository}"))),
                ("repository", json!(repository)),
                ("organization", json!("acme")),
            ],
        );
    }

    let failure_rate = source.rows("dora_change_failure_rate").await;
    assert_eq!(failure_rate.len(), 4, "{failure_rate:?}");
    for (environment, day, repository, deployments, failed, rate) in [
        ("eu-west", "2026-03-04", "gizmos", 1, 1, 1.0),
        ("production", "2026-03-02", "widgets", 1, 0, 0.0),
        ("production", "2026-03-03", "gizmos", 3, 1, 1.0 / 3.0),
        ("Prod", "2026-03-04", "gizmos", 1, 0, 0.0),
    ] {
        assert_row(
            "dora_change_failure_rate",
            &failure_rate,
            &[("environment", json!(environment)), ("day", json!(day))],
            &[
                ("repository_full_name", json!(format!("acme/{repository}"))),
                ("deployments", json!(deployments)),
                ("failed_deployments", json!(failed)),
                ("change_failure_rate", json!(rate)),
            ],
        );
    }

    let lead_time = source.rows("dora_lead_time").await;
    assert_eq!(lead_time.len(), 3, "#3 was never deployed: {lead_time:?}");
    assert_row(
        "dora_lead_time",
        &lead_time,
        &[("pull_request_id", json!(1004))],
        &[
            // #5003 was created before the merge: the `Prod` deployment of the next day.
            ("deployment_id", json!(5004)),
            ("environment", json!("Prod")),
            ("first_commit_at", ts("2026-03-03T10:40:00Z")),
            ("deployed_at", ts("2026-03-04T09:05:00Z")),
            ("lead_time_seconds", json!(22 * 3600 + 25 * 60)),
            ("merge_to_deploy_seconds", json!(22 * 3600)),
        ],
    );
    assert_row(
        "dora_lead_time",
        &lead_time,
        &[("pull_request_id", json!(1001))],
        &[
            ("pull_request_number", json!(1)),
            ("merge_commit_sha", json!(SQUASH)),
            ("deployment_id", json!(5001)),
            ("environment", json!("production")),
            ("deployed_sha", json!(SQUASH)),
            ("first_commit_at", ts("2026-03-02T08:00:00Z")),
            ("merged_at", ts("2026-03-02T17:00:00Z")),
            ("deployed_at", ts("2026-03-02T17:40:00Z")),
            ("lead_time_seconds", json!(9 * 3600 + 40 * 60)),
            ("merge_to_deploy_seconds", json!(40 * 60)),
        ],
    );
    assert_row(
        "dora_lead_time",
        &lead_time,
        &[("pull_request_id", json!(1002))],
        &[
            // #5007 succeeded after the merge but was created before it, from an older main;
            // #5002 failed: the next production success after the merge shipped it.
            ("deployment_id", json!(5003)),
            ("first_commit_at", ts("2026-03-03T08:50:00Z")),
            ("deployed_at", ts("2026-03-03T11:10:00Z")),
            ("lead_time_seconds", json!(2 * 3600 + 20 * 60)),
            ("merge_to_deploy_seconds", json!(90 * 60)),
        ],
    );

    let restore = source.rows("dora_time_to_restore").await;
    assert_eq!(restore.len(), 3, "{restore:?}");
    assert_row(
        "dora_time_to_restore",
        &restore,
        &[("deployment_id", json!(5008))],
        &[
            ("source", json!("deployment")),
            ("environment", json!("eu-west")),
            ("started_at", ts("2026-03-04T13:10:00Z")),
            ("restored_at", Value::Null),
            ("restore_seconds", Value::Null),
        ],
    );
    assert_row(
        "dora_time_to_restore",
        &restore,
        &[("deployment_id", json!(5002))],
        &[
            ("deployment_id", json!(5002)),
            ("repository_full_name", json!("acme/widgets")),
            ("environment", json!("production")),
            ("issue_number", Value::Null),
            ("started_at", ts("2026-03-03T10:05:00Z")),
            ("restored_at", ts("2026-03-03T11:10:00Z")),
            ("restore_seconds", json!(3900)),
        ],
    );
    assert_row(
        "dora_time_to_restore",
        &restore,
        &[("source", json!("incident"))],
        &[
            ("issue_number", json!(10)),
            ("repository_full_name", json!("acme/gizmos")),
            ("deployment_id", Value::Null),
            (
                "html_url",
                json!("https://github.com/acme/widgets/issues/10"),
            ),
            ("started_at", ts("2026-03-03T10:10:00Z")),
            ("restored_at", ts("2026-03-03T12:40:00Z")),
            ("restore_seconds", json!(9000)),
        ],
    );
}

/// The hand-written asserts of the former test `workflow_reliability_of_the_scenario`, over `source`.
async fn old_workflow_asserts(source: &Source<'_>) {
    let reliability = source.rows("workflow_reliability").await;
    assert_eq!(reliability.len(), 3, "{reliability:?}");
    assert_row(
        "workflow_reliability",
        &reliability,
        &[
            ("workflow_id", json!(300)),
            ("week", ts("2026-03-02T00:00:00Z")),
        ],
        &[
            // Renamed within the week: one row, under the newest name.
            ("repository_full_name", json!("acme/gizmos")),
            ("repository", json!("gizmos")),
            ("workflow_name", json!("Build")),
            ("runs", json!(10)),
            ("successes", json!(8)),
            ("failures", json!(1)),
            ("cancelled", json!(1)),
            ("success_rate", json!(8.0 / 9.0)),
            // Durations 100, 200, ..., 1000: nearest ranks 5, 9 and 10.
            ("p50_duration_seconds", json!(500)),
            ("p90_duration_seconds", json!(900)),
            ("p95_duration_seconds", json!(1000)),
            ("avg_duration_seconds", json!(550.0)),
        ],
    );
    assert_row(
        "workflow_reliability",
        &reliability,
        &[
            ("workflow_id", json!(300)),
            ("week", ts("2026-03-09T00:00:00Z")),
        ],
        &[
            ("repository_full_name", json!("acme/gizmos")),
            ("repository", json!("gizmos")),
            ("workflow_name", json!("CI")),
            ("runs", json!(2)),
            ("successes", json!(1)),
            ("failures", json!(1)),
            ("cancelled", json!(0)),
            ("success_rate", json!(0.5)),
            ("p50_duration_seconds", json!(120)),
            ("p90_duration_seconds", json!(240)),
            ("p95_duration_seconds", json!(240)),
            ("avg_duration_seconds", json!(180.0)),
        ],
    );
    assert_row(
        "workflow_reliability",
        &reliability,
        &[("workflow_id", json!(301))],
        &[
            ("workflow_name", json!("Lint")),
            ("week", ts("2026-03-02T00:00:00Z")),
            ("runs", json!(1)),
            ("success_rate", json!(1.0)),
            ("p50_duration_seconds", json!(30)),
            ("p95_duration_seconds", json!(30)),
        ],
    );
}

/// The hand-written asserts of the former test `incident_labels_and_production_environments_come_from_the_settings`, over `source`.
async fn old_settings_asserts(source: &Source<'_>) {
    let outcomes = source.rows("deployment_outcomes").await;
    let mut production: Vec<i64> = rows_where(&outcomes, &[("is_production", json!(true))])
        .into_iter()
        .filter_map(|row| row.get("deployment_id").and_then(Value::as_i64))
        .collect();
    production.sort_unstable();
    assert_eq!(production, vec![5006, 5008], "{outcomes:?}");

    let frequency = source.rows("dora_deployment_frequency").await;
    assert_eq!(frequency.len(), 1, "{frequency:?}");
    assert_row(
        "dora_deployment_frequency",
        &frequency,
        &[("environment", json!("live"))],
        &[("day", json!("2026-03-04")), ("deployments", json!(1))],
    );
    let failure_rate = source.rows("dora_change_failure_rate").await;
    assert_eq!(
        failure_rate.len(),
        2,
        "`live` and `eu-west`: {failure_rate:?}"
    );
    assert_row(
        "dora_change_failure_rate",
        &failure_rate,
        &[("environment", json!("live"))],
        &[("deployments", json!(1)), ("failed_deployments", json!(0))],
    );

    let lead_time = source.rows("dora_lead_time").await;
    assert_eq!(lead_time.len(), 4, "{lead_time:?}");
    // `live` was created at the second #3 was merged: it ships #3 too.
    for (pr, seconds) in [
        (1001, 52 * 3600 + 4 * 60),
        (1002, 27 * 3600 + 14 * 60),
        (1003, 2 * 3600 + 4 * 60),
        (1004, 25 * 3600 + 24 * 60),
    ] {
        assert_row(
            "dora_lead_time",
            &lead_time,
            &[("pull_request_id", json!(pr))],
            &[
                ("deployment_id", json!(5006)),
                ("deployed_at", ts("2026-03-04T12:04:00Z")),
                ("lead_time_seconds", json!(seconds)),
            ],
        );
    }

    let restore = source.rows("dora_time_to_restore").await;
    assert_eq!(restore.len(), 3, "{restore:?}");
    assert_row(
        "dora_time_to_restore",
        &restore,
        &[("source", json!("deployment"))],
        &[
            ("deployment_id", json!(5008)),
            ("restore_seconds", Value::Null),
        ],
    );
    assert_row(
        "dora_time_to_restore",
        &restore,
        // Both of its labels are incident labels: one row.
        &[("issue_number", json!(10))],
        &[
            ("source", json!("incident")),
            ("restore_seconds", json!(9000)),
        ],
    );
    assert_row(
        "dora_time_to_restore",
        &restore,
        &[("issue_number", json!(12))],
        &[
            ("source", json!("incident")),
            ("started_at", ts("2026-03-04T08:00:00Z")),
            ("restored_at", Value::Null),
            ("restore_seconds", Value::Null),
        ],
    );
}

/// Runs the scenario's metrics views with `settings` on DataFusion and on bqemulator (in a
/// dataset named after `test`) and asserts that both give the same rows.
async fn assert_same_rows_on_bigquery(test: &str, settings: ViewSettings) {
    let (_dir, local, mut s) = local_scenario(settings.clone()).await;
    // BigQuery also gets redeliveries a day later (the local store refuses a second copy of a
    // delivery): unique_events keeps the later copy, which must change no metric, even for
    // the first push of #1, now received after #1 was merged.
    let first_push = s
        .payloads
        .iter()
        .position(|p| p.contains("a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"))
        .unwrap();
    let redelivered: Vec<usize> = [first_push]
        .into_iter()
        .chain((0..s.events.len()).filter(|i| i % 5 == 0))
        .collect();
    for i in redelivered {
        let mut copy = s.events[i].clone();
        copy.received_micros += 86_400_000_000;
        s.events.push(copy);
        s.payloads.push(s.payloads[i].clone());
    }
    with_dataset(emulator_config(test), |bigquery| async move {
        bigquery
            .append(&crate::sql::EVENTS, events_batch(&s.events, &s.payloads))
            .await
            .unwrap();
        let views = with_dependencies(METRICS_VIEWS.iter().filter_map(|(name, _)| find(name)));
        settings.apply(&bigquery, &views).await.unwrap();
        let mut differ = Vec::new();
        for (view, _) in METRICS_VIEWS {
            let sql = format!("SELECT * FROM `${{dataset}}{view}`");
            let mut on_bigquery = rows(&bigquery, &sql).await.unwrap();
            let mut on_datafusion = rows(&local, &sql).await.unwrap();
            assert!(!on_datafusion.is_empty(), "{view} has rows");
            on_bigquery.sort_by_key(|row| serde_json::to_string(row).unwrap());
            on_datafusion.sort_by_key(|row| serde_json::to_string(row).unwrap());
            if on_bigquery != on_datafusion {
                differ.push(format!(
                    "{view}:\n  bigquery:   {}\n  datafusion: {}",
                    serde_json::to_string(&on_bigquery).unwrap(),
                    serde_json::to_string(&on_datafusion).unwrap()
                ));
            }
        }
        assert!(differ.is_empty(), "{}", differ.join("\n"));
    })
    .await;
}

#[tokio::test]
async fn metrics_views_give_the_same_rows_on_bigquery_and_datafusion() {
    assert_same_rows_on_bigquery("metrics", ViewSettings::default()).await;
}

#[tokio::test]
async fn metrics_views_with_settings_give_the_same_rows_on_bigquery_and_datafusion() {
    assert_same_rows_on_bigquery("metrics_settings", sev1_and_live()).await;
}

/// The file the builder's events were dumped to holds exactly those events.
#[test]
fn the_events_file_holds_the_builders_events() {
    let s = scenario();
    let (events, payloads) = scenario_events();
    assert_eq!(events.len(), s.events.len());
    for (i, (file, built)) in events.iter().zip(&s.events).enumerate() {
        assert_eq!(file.headers, built.headers, "event {i}");
        assert_eq!(file.received_micros, built.received_micros, "event {i}");
        assert_eq!(file.lifted, built.lifted, "event {i}");
        assert_eq!(file.payload_size, built.payload_size, "event {i}");
        assert_eq!(payloads[i], s.payloads[i], "event {i}");
        match (&file.payload, &built.payload) {
            (Payload::Inline(a), Payload::Inline(b)) => assert_eq!(a, b, "event {i}"),
            _ => panic!("event {i}: not inline"),
        }
    }
}

/// A view's rows in the form of its golden file: its columns in the view's order and, per row,
/// one JSON value per column, rows sorted by the view's key columns.
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

/// The JSON form of a cell: NULL, a boolean, a number (integers and durations as integers,
/// rates and means as floats), a string (a TIMESTAMP in RFC 3339, UTC; a DATE as YYYY-MM-DD) or
/// an array of those.
fn json_cell(column: &dyn Array, row: usize) -> Value {
    if column.is_null(row) {
        return Value::Null;
    }
    let cast = |to: &DataType| {
        arrow::compute::cast(&column.slice(row, 1), to)
            .unwrap_or_else(|e| panic!("{} as {to}: {e}", column.data_type()))
    };
    match column.data_type() {
        DataType::Boolean => json!(column.as_boolean().value(row)),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => json!(cast(&DataType::Int64).as_primitive::<Int64Type>().value(0)),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let value = cast(&DataType::Float64)
                .as_primitive::<Float64Type>()
                .value(0);
            serde_json::Number::from_f64(value)
                .map(Value::Number)
                .unwrap_or_else(|| panic!("{value} has no JSON form"))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            json!(cast(&DataType::Utf8).as_string::<i32>().value(0))
        }
        DataType::Timestamp(unit, _) => {
            let at = match unit {
                TimeUnit::Second => DateTime::from_timestamp(
                    column.as_primitive::<TimestampSecondType>().value(row),
                    0,
                ),
                TimeUnit::Millisecond => DateTime::from_timestamp_millis(
                    column.as_primitive::<TimestampMillisecondType>().value(row),
                ),
                TimeUnit::Microsecond => DateTime::from_timestamp_micros(
                    column.as_primitive::<TimestampMicrosecondType>().value(row),
                ),
                TimeUnit::Nanosecond => Some(DateTime::from_timestamp_nanos(
                    column.as_primitive::<TimestampNanosecondType>().value(row),
                )),
            };
            let at = at.unwrap_or_else(|| panic!("a {} out of range", column.data_type()));
            json!(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }
        DataType::Date32 | DataType::Date64 => {
            let days = cast(&DataType::Date32)
                .as_primitive::<Date32Type>()
                .value(0);
            let date = arrow::temporal_conversions::date32_to_datetime(days)
                .unwrap_or_else(|| panic!("day {days} out of range"))
                .date();
            json!(date.format("%Y-%m-%d").to_string())
        }
        DataType::List(_) => {
            let list = column.as_list::<i32>().value(row);
            Value::Array(
                (0..list.len())
                    .map(|i| json_cell(list.as_ref(), i))
                    .collect(),
            )
        }
        other => panic!("a {other} column has no golden form"),
    }
}

/// Orders JSON values: NULL first, then booleans, numbers, strings and arrays, each by value.
fn order(a: &Value, b: &Value) -> Ordering {
    let rank = |v: &Value| match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    };
    match (a, b) {
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .partial_cmp(&b.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(a), Value::String(b)) => a.cmp(b),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// `result` (rows of `view`) as a [`Table`] sorted by `keys`, then by the whole row.
fn table(view: &str, keys: &[&str], result: &QueryResult) -> Table {
    let columns: Vec<String> = result
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let at: Vec<usize> = keys
        .iter()
        .map(|key| {
            columns
                .iter()
                .position(|c| c == key)
                .unwrap_or_else(|| panic!("{view} has no key column {key}"))
        })
        .collect();
    let mut rows: Vec<Vec<Value>> = result
        .batches
        .iter()
        .flat_map(|batch| {
            (0..batch.num_rows()).map(move |row| {
                batch
                    .columns()
                    .iter()
                    .map(|column| json_cell(column.as_ref(), row))
                    .collect()
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        at.iter()
            .map(|&i| order(&a[i], &b[i]))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| {
                Value::from(a.clone())
                    .to_string()
                    .cmp(&Value::from(b.clone()).to_string())
            })
    });
    Table { columns, rows }
}

/// The golden file's text of `table`: a JSON array with one object per row, every column in
/// the view's order, one column a line.
fn render(table: &Table) -> String {
    if table.rows.is_empty() {
        return "[]\n".to_owned();
    }
    let rows: Vec<String> = table
        .rows
        .iter()
        .map(|row| {
            let cells: Vec<String> = table
                .columns
                .iter()
                .zip(row)
                .map(|(column, value)| format!("    {}: {value}", Value::from(column.as_str())))
                .collect();
            format!("  {{\n{}\n  }}", cells.join(",\n"))
        })
        .collect();
    format!("[\n{}\n]\n", rows.join(",\n"))
}

/// The golden file of `view` in `case`, and its path as written in messages.
fn golden_path(case: &str, view: &str) -> (PathBuf, String) {
    let relative = format!("expected/{case}/{view}.json");
    (
        testdata().join(&relative),
        format!("testdata/views/metrics/{relative}"),
    )
}

/// The rows of a golden file, `None` when it does not exist.
fn read_golden(path: &Path) -> Option<Vec<Map<String, Value>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("reading {}: {e}", path.display()),
    };
    Some(
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not a JSON array of objects: {e}", path.display())),
    )
}

/// The row's name in messages: its key columns and their values.
fn row_name(keys: &[&str], value: impl Fn(&str) -> Value) -> String {
    keys.iter()
        .map(|key| format!("{key}={}", value(key)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How `actual` differs from the golden `expected` rows, one line per difference, each naming
/// the row by its `keys` and the column.
fn differences(keys: &[&str], actual: &Table, expected: &[Map<String, Value>]) -> Vec<String> {
    let mut out = Vec::new();
    let golden_columns: BTreeSet<&str> = expected
        .iter()
        .flat_map(|row| row.keys().map(String::as_str))
        .collect();
    for column in &actual.columns {
        if !expected.is_empty() && !golden_columns.contains(column.as_str()) {
            out.push(format!("column {column}: new, not in the golden file"));
        }
    }
    for column in &golden_columns {
        if !actual.columns.iter().any(|c| c == column) {
            out.push(format!(
                "column {column}: in the golden file, not in the view"
            ));
        }
    }
    let mut by_name: HashMap<String, &Vec<Value>> = HashMap::new();
    for row in &actual.rows {
        let name = row_name(keys, |key| {
            actual
                .columns
                .iter()
                .position(|c| c == key)
                .map_or(Value::Null, |i| row[i].clone())
        });
        if by_name.insert(name.clone(), row).is_some() {
            out.push(format!("row {name}: more than one row has this key"));
        }
    }
    let object = |row: &Vec<Value>| -> Value {
        Value::Object(
            actual
                .columns
                .iter()
                .cloned()
                .zip(row.iter().cloned())
                .collect(),
        )
    };
    let mut seen = BTreeSet::new();
    for golden in expected {
        let name = row_name(keys, |key| golden.get(key).cloned().unwrap_or(Value::Null));
        seen.insert(name.clone());
        let Some(row) = by_name.get(&name) else {
            out.push(format!(
                "row {name}: missing; expected {}",
                Value::from(golden.clone())
            ));
            continue;
        };
        for (column, value) in actual.columns.iter().zip(row.iter()) {
            if let Some(want) = golden.get(column)
                && want != value
            {
                out.push(format!(
                    "row {name}, column {column}: expected {want}, got {value}"
                ));
            }
        }
    }
    for (name, row) in &by_name {
        if !seen.contains(name) {
            out.push(format!(
                "row {name}: not in the golden file: {}",
                object(row)
            ));
        }
    }
    out
}

/// Whether the golden files are to be rewritten ([`BLESS`] set to anything but empty or `0`).
fn blessing() -> bool {
    std::env::var(BLESS).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Runs `views` over the scenario with `case`'s settings on DataFusion and compares each with
/// its golden file, or rewrites the file when [`blessing`].
async fn check_goldens(case: Case, views: &[&str]) {
    let (_dir, warehouse, _) = local_scenario((case.settings)()).await;
    let mut failures = Vec::new();
    for view in views {
        let keys = METRICS_VIEWS
            .iter()
            .find(|(name, _)| name == view)
            .map(|(_, keys)| *keys)
            .unwrap_or_else(|| panic!("{view} is not in METRICS_VIEWS"));
        let result = warehouse
            .query(
                &format!("SELECT * FROM `${{dataset}}{view}`"),
                &Params::new(),
            )
            .await
            .unwrap_or_else(|e| panic!("{view}: {e}"));
        let actual = table(view, keys, &result);
        let (path, shown) = golden_path(case.name, view);
        if blessing() {
            let dir = path.parent().expect("a golden file sits in a folder");
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
            std::fs::write(&path, render(&actual))
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            continue;
        }
        match read_golden(&path) {
            None => failures.push(format!("{view}: no golden file {shown}")),
            Some(expected) => {
                let differ = differences(keys, &actual, &expected);
                if !differ.is_empty() {
                    failures.push(format!(
                        "{view} differs from {shown} ({} settings):\n  {}",
                        case.name,
                        differ.join("\n  ")
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended, rewrite the golden files with \
         `{BLESS}=1 cargo test -p gma-pipeline --lib views::metrics_tests` and review their diff.",
        failures.join("\n\n")
    );
}

#[tokio::test]
async fn pr_cycle_time_and_review_latency_of_the_scenario() {
    check_goldens(DEFAULT, PULL_REQUEST_VIEWS).await;
}

#[tokio::test]
async fn dora_views_of_the_scenario() {
    check_goldens(DEFAULT, DEPLOYMENT_VIEWS).await;
}

#[tokio::test]
async fn workflow_reliability_of_the_scenario() {
    check_goldens(DEFAULT, WORKFLOW_VIEWS).await;
}

#[tokio::test]
async fn incident_labels_and_production_environments_come_from_the_settings() {
    let views: Vec<&str> = METRICS_VIEWS.iter().map(|(name, _)| *name).collect();
    check_goldens(SETTINGS, &views).await;
}

/// Every view has a golden file in every case, each checked by one of the tests above, and no
/// other file sits in `expected/` (when blessing, such files are removed).
#[test]
fn every_golden_file_is_checked() {
    let views: BTreeSet<&str> = METRICS_VIEWS.iter().map(|(name, _)| *name).collect();
    let grouped: Vec<&str> = [PULL_REQUEST_VIEWS, DEPLOYMENT_VIEWS, WORKFLOW_VIEWS].concat();
    assert_eq!(
        grouped.len(),
        views.len(),
        "a view in two groups: {grouped:?}"
    );
    assert_eq!(grouped.into_iter().collect::<BTreeSet<_>>(), views);
    let wanted: BTreeSet<PathBuf> = CASES
        .iter()
        .flat_map(|case| views.iter().map(|view| golden_path(case.name, view).0))
        .collect();
    let expected = testdata().join("expected");
    let mut found = BTreeSet::new();
    for dir in std::fs::read_dir(&expected).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            found.insert(file.path());
        }
        if dir.path().is_file() {
            found.insert(dir.path());
        }
    }
    let stray: Vec<&PathBuf> = found.difference(&wanted).collect();
    if blessing() {
        for path in stray {
            std::fs::remove_file(path)
                .unwrap_or_else(|e| panic!("removing {}: {e}", path.display()));
        }
        return;
    }
    let root = gma_testkit::repo_root();
    let shown = |paths: Vec<&PathBuf>| -> Vec<String> {
        paths
            .into_iter()
            .map(|path| {
                path.strip_prefix(&root)
                    .unwrap_or(path)
                    .display()
                    .to_string()
            })
            .collect()
    };
    let missing = shown(wanted.difference(&found).collect());
    let stray = shown(stray);
    assert!(
        stray.is_empty() && missing.is_empty(),
        "golden files no test checks (remove them, or rewrite with {BLESS}=1): {stray:?}\n\
         missing golden files (write them with {BLESS}=1): {missing:?}"
    );
}

/// Where the old asserts read a view's rows: the views over the scenario, or the golden files
/// of a case.
enum Source<'a> {
    Views(&'a LocalWarehouse),
    Golden(&'static str),
}

impl Source<'_> {
    async fn rows(&self, view: &str) -> Vec<Map<String, Value>> {
        match self {
            Source::Views(warehouse) => view_rows(*warehouse, view).await,
            Source::Golden(case) => {
                let (path, shown) = golden_path(case, view);
                read_golden(&path).unwrap_or_else(|| panic!("no {shown}"))
            }
        }
    }
}

/// Every hand-written assert of the former tests holds on the views' rows and on the golden
/// files' rows: the golden files hold every value they asserted.
#[tokio::test]
async fn the_old_asserts_hold_on_the_views_and_on_the_golden_files() {
    let (_dir, default, _) = local_scenario(ViewSettings::default()).await;
    let (_settings_dir, settings, _) = local_scenario(sev1_and_live()).await;
    for (default, settings) in [
        (Source::Views(&default), Source::Views(&settings)),
        (Source::Golden(DEFAULT.name), Source::Golden(SETTINGS.name)),
    ] {
        old_pull_request_asserts(&default).await;
        old_dora_asserts(&default).await;
        old_workflow_asserts(&default).await;
        old_settings_asserts(&settings).await;
    }
}
