//! The rows the leech job reads and writes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::index::LogFile;

/// One completed run attempt to archive, as the source query (`sql/leech_source.sql`) gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RunRow {
    /// The `workflow_run` event the run was found in (the first copy, if redelivered).
    pub delivery_id: String,
    /// When that event was received.
    pub received: DateTime<Utc>,
    /// `workflow_run.id`.
    pub run_id: i64,
    /// `workflow_run.run_attempt`.
    pub run_attempt: i64,
    /// `repository.id`.
    pub repository_id: Option<i64>,
    /// `installation.id`: whose token reads the logs.
    pub installation_id: Option<i64>,
    /// `owner/name`.
    pub repository_slug: String,
    /// The workflow's name.
    pub workflow_name: String,
    /// The run's page on GitHub.
    pub workflow_uri: String,
    /// Who triggered the run.
    pub github_actor: String,
    /// When the run completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// Tries so far.
    pub attempts: i64,
}

impl RunRow {
    /// The repository's owner and name, when both are plain path segments.
    pub fn owner_and_repo(&self) -> Option<(&str, &str)> {
        let (owner, repo) = self.repository_slug.split_once('/')?;
        let plain = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && !s.contains(['/', '\\'])
                && !s.chars().any(char::is_control)
        };
        (plain(owner) && plain(repo)).then_some((owner, repo))
    }
}

/// Whether a try archived the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Archived and indexed.
    Success,
    /// GitHub no longer has the logs: final.
    NotFound,
    /// Failed; retried by a later run until the attempt cap.
    Failure,
}

/// One row of `leech_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusRow {
    /// The event the run was found in.
    pub delivery_id: String,
    /// When the try ended.
    pub processed_at: DateTime<Utc>,
    /// How it went.
    pub status: Status,
    /// The run's page.
    pub workflow_uri: String,
    /// Where the zip is (or would be).
    pub logs_uri: String,
    /// Who triggered the run.
    pub github_actor: String,
    /// The repository's owner.
    pub organization_name: String,
    /// The repository's name.
    pub repository_name: String,
    /// `owner/name`.
    pub repository_slug: String,
    /// The workflow's name.
    pub job_name: String,
    /// The run.
    pub run_id: i64,
    /// The run attempt.
    pub run_attempt: i64,
    /// Tries so far, this one included.
    pub attempts: i64,
    /// The zip's size, when archived.
    pub bytes: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
}

impl StatusRow {
    /// The row for a try of `run` that ended in `status`.
    pub fn new(run: &RunRow, status: Status, logs_uri: String) -> Self {
        let (owner, repo) = run
            .repository_slug
            .split_once('/')
            .unwrap_or(("", run.repository_slug.as_str()));
        Self {
            delivery_id: run.delivery_id.clone(),
            processed_at: Utc::now(),
            status,
            workflow_uri: run.workflow_uri.clone(),
            logs_uri,
            github_actor: run.github_actor.clone(),
            organization_name: owner.to_owned(),
            repository_name: repo.to_owned(),
            repository_slug: run.repository_slug.clone(),
            job_name: run.workflow_name.clone(),
            run_id: run.run_id,
            run_attempt: run.run_attempt,
            attempts: run.attempts + 1,
            bytes: None,
            error: None,
        }
    }
}

/// One row of `workflow_logs`: a file of an archived zip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogRow {
    /// The run.
    pub run_id: i64,
    /// The run attempt.
    pub run_attempt: i64,
    /// `owner/name`.
    pub repository_slug: String,
    /// The file: path, job, step, size, lines, first error.
    #[serde(flatten)]
    pub file: LogFile,
    /// The archive.
    pub logs_uri: String,
    /// When it was indexed.
    pub indexed_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(slug: &str) -> RunRow {
        RunRow {
            delivery_id: "d".into(),
            received: Utc::now(),
            run_id: 1,
            run_attempt: 1,
            repository_id: None,
            installation_id: None,
            repository_slug: slug.into(),
            workflow_name: String::new(),
            workflow_uri: String::new(),
            github_actor: String::new(),
            completed_at: None,
            attempts: 0,
        }
    }

    #[test]
    fn a_slug_that_would_escape_the_prefix_is_refused() {
        assert_eq!(
            run("acme/widgets").owner_and_repo(),
            Some(("acme", "widgets"))
        );
        for bad in [
            "acme", "../x", "acme/..", "acme/a/b", "/x", "acme/", "a\\b/c", "a/\n",
        ] {
            assert_eq!(run(bad).owner_and_repo(), None, "{bad:?}");
        }
    }
}
