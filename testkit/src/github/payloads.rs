//! Webhook payloads shaped like GitHub's, for events the tests land before a job runs.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The payload of a `workflow_run` `completed` event: run `run_id`, attempt `attempt` of
/// `repo` (`owner/name`), finished successfully at `completed`, sent to installation
/// `installation`.
///
/// # Panics
/// When `repo` is not `owner/name`.
pub fn workflow_run_completed(
    repo: &str,
    run_id: i64,
    attempt: i64,
    completed: DateTime<Utc>,
    installation: i64,
) -> Value {
    let (owner, name) = repo
        .split_once('/')
        .unwrap_or_else(|| panic!("{repo} is not owner/name"));
    json!({
        "action": "completed",
        "workflow_run": {
            "id": run_id, "run_attempt": attempt, "name": "CI", "status": "completed",
            "conclusion": "success",
            "html_url": format!("https://github.com/{repo}/actions/runs/{run_id}"),
            "logs_url": format!("https://api.github.com/repos/{repo}/actions/runs/{run_id}/logs"),
            "updated_at": completed.to_rfc3339(),
            "actor": {"login": "octocat", "id": 1}
        },
        "repository": {"full_name": repo, "name": name, "id": 9, "owner": {"login": owner}},
        "organization": {"login": owner, "id": 5},
        "installation": {"id": installation},
        "sender": {"login": "octocat", "id": 1}
    })
}
