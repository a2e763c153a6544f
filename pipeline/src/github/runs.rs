//! Workflow runs: whether a run has finished, so the leech job can tell "404: the run is still
//! in progress" from "404: its logs are gone".

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;

use super::client::{Auth, GitHubClient, decode};
use super::error::GitHubError;

/// A workflow run as `GET /repos/{owner}/{repo}/actions/runs/{run_id}` describes it (its
/// latest attempt).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WorkflowRun {
    /// The run's id.
    pub id: i64,
    /// `queued`, `in_progress`, `completed`, `waiting`, `requested` or `pending`.
    pub status: String,
    /// `success`, `failure`, `cancelled`, ... once completed; `None` before.
    #[serde(default)]
    pub conclusion: Option<String>,
    /// The latest attempt's number (1 for a run never re-run).
    #[serde(default = "first_attempt")]
    pub run_attempt: u32,
    /// When GitHub last changed the run (for a completed run: about when it completed).
    pub updated_at: DateTime<Utc>,
}

fn first_attempt() -> u32 {
    1
}

impl WorkflowRun {
    /// Whether the run (its latest attempt) has finished, so its logs are final.
    pub fn is_completed(&self) -> bool {
        self.status == "completed"
    }
}

impl GitHubClient {
    /// The workflow run `run_id` of `owner/repo` (`GET /repos/{owner}/{repo}/actions/runs/{id}`;
    /// an installation token with `actions: read`).
    ///
    /// # Errors
    /// [`GitHubError::Config`] for an owner, repository or run id that cannot be a path
    /// segment (checked before any request); otherwise as [`GitHubClient::send`] (404 for an
    /// unknown run or repository) plus [`GitHubError::Decode`].
    pub async fn workflow_run(
        &self,
        owner: &str,
        repo: &str,
        run_id: i64,
        auth: &Auth,
    ) -> Result<WorkflowRun, GitHubError> {
        let path = run_path(owner, repo, run_id)?;
        let response = self.send(Method::GET, &path, auth, None).await?;
        decode(&path, response).await
    }
}

/// `/repos/{owner}/{repo}/actions/runs/{run_id}`, once each part is checked.
pub(crate) fn run_path(owner: &str, repo: &str, run_id: i64) -> Result<String, GitHubError> {
    check_segment("repository owner", owner)?;
    check_segment("repository name", repo)?;
    if run_id <= 0 {
        return Err(GitHubError::Config(format!(
            "workflow run id {run_id} is not a run id (GitHub's are positive)"
        )));
    }
    Ok(format!("/repos/{owner}/{repo}/actions/runs/{run_id}"))
}

/// Checks that `value` (an owner or repository name, from event data) is one path segment
/// GitHub could have made: ASCII letters, digits, `-`, `_` and `.`, not empty, not `.` or `..`.
/// A name that could escape the route (or a blob prefix built from it) is refused.
///
/// # Errors
/// [`GitHubError::Config`] naming what `value` is and why it is refused.
pub fn check_segment(what: &str, value: &str) -> Result<(), GitHubError> {
    let problem = if value.is_empty() {
        Some("is empty")
    } else if value == "." || value == ".." {
        Some("is a relative path segment")
    } else if value.len() > 100 {
        Some("is longer than GitHub's 100 characters")
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Some("has characters GitHub does not allow in names (only letters, digits, '-', '_', '.')")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(GitHubError::Config(format!(
            "{what} {:?} {problem}; refusing to build a GitHub path from it",
            value.chars().take(120).collect::<String>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::installations::test_support::token;
    use crate::testing::fake_github_client;
    use gma_testkit::github::{FakeGitHub, Logs, Route};

    #[test]
    fn segments_that_could_escape_are_refused() {
        for good in ["octo-org", "my_repo", "repo.js", "A1", ".github"] {
            assert!(check_segment("repository name", good).is_ok(), "{good}");
        }
        for bad in [
            "", ".", "..", "a/b", "a%2Fb", "a?x=1", "a b", "a\n", "ü", "a#b",
        ] {
            let error = check_segment("repository name", bad)
                .unwrap_err()
                .to_string();
            assert!(error.contains("repository name"), "{error}");
        }
        assert!(run_path("o", "r", 0).is_err());
        assert_eq!(run_path("o", "r", 7).unwrap(), "/repos/o/r/actions/runs/7");
    }

    #[tokio::test]
    async fn tells_a_run_in_progress_from_a_completed_one_and_an_unknown_one() {
        let gh = FakeGitHub::start().await;
        gh.add_workflow_run("Octo", "Widgets", 11, 1, Logs::InProgress);
        gh.add_workflow_run("octo", "widgets", 12, 1, Logs::Status(410));
        gh.add_workflow_run("octo", "widgets", 12, 2, Logs::zip(vec![1, 2, 3]));
        let old = Utc::now() - chrono::Duration::days(100);
        gh.set_workflow_run_updated_at("octo", "widgets", 12, 2, old);
        let client = fake_github_client(&gh);
        let auth = token(&gh, &client).await;

        let running = client
            .workflow_run("octo", "widgets", 11, &auth)
            .await
            .unwrap();
        assert_eq!(running.id, 11);
        assert!(!running.is_completed());
        assert_eq!(running.status, "in_progress");
        assert_eq!(running.conclusion, None);

        let done = client
            .workflow_run("octo", "widgets", 12, &auth)
            .await
            .unwrap();
        assert!(done.is_completed());
        assert_eq!(done.conclusion.as_deref(), Some("success"));
        assert_eq!(done.run_attempt, 2);
        assert_eq!(done.updated_at.timestamp(), old.timestamp());

        let unknown = client
            .workflow_run("octo", "widgets", 13, &auth)
            .await
            .unwrap_err();
        assert_eq!(unknown.status(), Some(404), "{unknown}");

        let before = gh.calls(Route::WorkflowRun);
        assert!(client.workflow_run("..", "x", 1, &auth).await.is_err());
        assert_eq!(
            gh.calls(Route::WorkflowRun),
            before,
            "refused before any request"
        );
    }
}
