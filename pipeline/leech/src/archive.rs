//! Archiving one run attempt's logs: token, download, store, index.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use gma_pipeline::blob::{BlobKey, BlobStore};
use gma_pipeline::error::error_chain;
use gma_pipeline::flow::{BoxError, DoFn};
use gma_pipeline::github::{Auth, GitHubClient, GitHubError, InstallationTokens};

use crate::index::{LogFile, index_stream};
use crate::rows::{LogRow, RunRow, Status, StatusRow};

/// What one try produced: a status row (none for a run still in progress) and, on success, the
/// index of the archive.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The run attempt.
    pub run: RunRow,
    /// Its status row.
    pub status: Option<StatusRow>,
    /// The archive's files.
    pub logs: Vec<LogRow>,
}

/// Counts of a run, shared with the summary.
#[derive(Debug, Default)]
pub struct Counters {
    /// Run attempts archived.
    pub archived: AtomicU64,
    /// Of those, found already stored by an earlier, interrupted try.
    pub reused: AtomicU64,
    /// Bytes archived.
    pub bytes: AtomicU64,
    /// Logs GitHub no longer has.
    pub not_found: AtomicU64,
    /// Failed tries.
    pub failed: AtomicU64,
    /// Runs still in progress, left for a later run.
    pub skipped: AtomicU64,
}

/// The archiving step.
pub struct ArchiveLogs {
    /// GitHub.
    pub github: GitHubClient,
    /// Installation tokens, cached per installation.
    pub tokens: InstallationTokens,
    /// Where the zips go.
    pub logs: Arc<dyn BlobStore>,
    /// How long GitHub keeps logs: a 404 on a run completed longer ago is final.
    pub retention: Duration,
    /// Tries per run attempt before a failure is final.
    pub max_attempts: i64,
    /// The run's counts.
    pub counters: Arc<Counters>,
}

/// How one try went, before it becomes rows.
enum Outcome {
    Archived { files: Vec<LogFile>, bytes: u64 },
    NotFound(String),
    Failed(String),
    InProgress,
}

impl ArchiveLogs {
    async fn archive(&self, run: &RunRow, key: &BlobKey, owner: &str, repo: &str) -> Outcome {
        // An earlier try may have stored the zip and died before its status row.
        if let Ok(meta) = self.logs.head(key).await {
            return match self.index(key).await {
                Ok(files) => {
                    self.counters.reused.fetch_add(1, Ordering::Relaxed);
                    Outcome::Archived {
                        files,
                        bytes: meta.size,
                    }
                }
                Err(reason) => Outcome::Failed(reason),
            };
        }
        let Some(installation) = run.installation_id else {
            return Outcome::Failed(
                "the workflow_run event names no installation, so no token can read its logs"
                    .into(),
            );
        };
        let auth = match self.tokens.token(installation).await {
            Ok(token) => Auth::Token(token),
            Err(error) => {
                return Outcome::Failed(format!("installation token: {}", error_chain(&error)));
            }
        };
        let attempt = u32::try_from(run.run_attempt).unwrap_or(0);
        let download = match self
            .github
            .run_logs(owner, repo, run.run_id, attempt, &auth)
            .await
        {
            Ok(download) => download,
            Err(error) => return self.not_downloaded(run, owner, repo, &auth, error).await,
        };
        let meta = match self
            .logs
            .put_stream(key, download.stream, "application/zip")
            .await
        {
            Ok(meta) => meta,
            Err(error) => {
                return Outcome::Failed(format!("storing the logs zip: {}", error_chain(&error)));
            }
        };
        match self.index(key).await {
            Ok(files) => Outcome::Archived {
                files,
                bytes: meta.size,
            },
            Err(reason) => {
                // A broken archive must not be taken for a stored one by the next try.
                if let Err(error) = self.logs.delete(key).await {
                    tracing::warn!(%key, error = %error_chain(&error), "Could not delete a broken logs zip.");
                }
                Outcome::Failed(reason)
            }
        }
    }

    async fn index(&self, key: &BlobKey) -> Result<Vec<LogFile>, String> {
        let stream = self
            .logs
            .get_stream(key)
            .await
            .map_err(|e| format!("reading the stored zip: {}", error_chain(&e)))?;
        index_stream(stream)
            .await
            .map_err(|e| format!("indexing the stored zip: {}", error_chain(&e)))
    }

    /// Why GitHub gave no logs: gone for good, not yet, or trouble.
    async fn not_downloaded(
        &self,
        run: &RunRow,
        owner: &str,
        repo: &str,
        auth: &Auth,
        error: GitHubError,
    ) -> Outcome {
        match error.status() {
            Some(410) => Outcome::NotFound("GitHub says the logs are gone (410)".into()),
            Some(404) => {
                let completed = run.completed_at.unwrap_or(run.received);
                let age = (Utc::now() - completed).to_std().unwrap_or_default();
                if age > self.retention {
                    return Outcome::NotFound(format!(
                        "404 on a run completed {} days ago, past the log retention",
                        age.as_secs() / 86_400
                    ));
                }
                match self
                    .github
                    .workflow_run(owner, repo, run.run_id, auth)
                    .await
                {
                    Ok(state) if !state.is_completed() => Outcome::InProgress,
                    Err(e) if e.status() == Some(404) => {
                        Outcome::NotFound("the run no longer exists (404)".into())
                    }
                    _ => Outcome::Failed(format!(
                        "{}; the run is recent, so its logs may not be ready yet",
                        error_chain(&error)
                    )),
                }
            }
            _ => Outcome::Failed(error_chain(&error)),
        }
    }
}

#[async_trait]
impl DoFn for ArchiveLogs {
    type In = RunRow;
    type Out = Processed;

    async fn process(&self, run: RunRow) -> Result<Vec<Processed>, BoxError> {
        let counters = &self.counters;
        let Some((owner, repo)) = run.owner_and_repo() else {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            let mut status = StatusRow::new(&run, Status::Failure, String::new());
            status.error = Some(format!(
                "the repository {:?} is not owner/name; refusing a path outside the archive",
                run.repository_slug
            ));
            // Never retried: no later try can fix the name.
            status.attempts = status.attempts.max(self.max_attempts);
            return Ok(vec![Processed {
                run,
                status: Some(status),
                logs: Vec::new(),
            }]);
        };
        let key = match BlobKey::new(format!(
            "{owner}/{repo}/{}/{}/logs.zip",
            run.run_id, run.run_attempt
        )) {
            Ok(key) => key,
            Err(error) => return Err(error.into()),
        };
        let uri = self.logs.uri(&key);
        let outcome = self.archive(&run, &key, owner, repo).await;
        let (status, logs) = match outcome {
            Outcome::Archived { files, bytes } => {
                counters.archived.fetch_add(1, Ordering::Relaxed);
                counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                let mut status = StatusRow::new(&run, Status::Success, uri.clone());
                status.bytes = i64::try_from(bytes).ok();
                let now = Utc::now();
                let logs = files
                    .into_iter()
                    .map(|file| LogRow {
                        run_id: run.run_id,
                        run_attempt: run.run_attempt,
                        repository_slug: run.repository_slug.clone(),
                        file,
                        logs_uri: uri.clone(),
                        indexed_at: now,
                    })
                    .collect();
                (Some(status), logs)
            }
            Outcome::NotFound(reason) => {
                counters.not_found.fetch_add(1, Ordering::Relaxed);
                let mut status = StatusRow::new(&run, Status::NotFound, uri);
                status.error = Some(reason);
                (Some(status), Vec::new())
            }
            Outcome::Failed(reason) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(run_id = run.run_id, attempt = run.run_attempt, %reason, "Archiving the logs of a run failed.");
                let mut status = StatusRow::new(&run, Status::Failure, uri);
                status.error = Some(reason);
                (Some(status), Vec::new())
            }
            Outcome::InProgress => {
                counters.skipped.fetch_add(1, Ordering::Relaxed);
                (None, Vec::new())
            }
        };
        Ok(vec![Processed { run, status, logs }])
    }

    fn describe(&self, run: &RunRow) -> String {
        format!(
            "{} run {} attempt {}",
            run.repository_slug, run.run_id, run.run_attempt
        )
    }
}
