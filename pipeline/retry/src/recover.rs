//! Recovering one failed event: GitHub redelivers it, or gma fetches and lands it.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gma_pipeline::error::{Transient, error_chain};
use gma_pipeline::flow::{BoxError, DoFn};
use gma_pipeline::github::{Auth, GitHubClient, GitHubError};
use gma_store::event_sink::EventSink;
use gma_store::{AppendOutcome, StoreError};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::candidates::Candidate;
use crate::fetch::event_from;
use crate::options::RecoveryMode;

/// How recovering one event went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// GitHub accepted the redelivery, or the fetched event landed.
    Recovered,
    /// Fetch found the event already stored.
    AlreadyLanded,
    /// It failed for a reason a later run may not fix by itself (counted towards giving up).
    Failed {
        /// What failed.
        reason: String,
    },
    /// GitHub or the events sink stopped answering: the run stops, the event stays for the
    /// next run.
    Stopped {
        /// What failed.
        reason: String,
    },
    /// The run stopped (time budget, shutdown, lost lock) before this event's turn.
    NotStarted,
}

impl Outcome {
    /// Whether the event needs nothing more from later runs.
    pub fn is_handled(&self) -> bool {
        matches!(self, Self::Recovered | Self::AlreadyLanded)
    }
}

/// One event and how its recovery went.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The event.
    pub candidate: Candidate,
    /// How it went.
    pub outcome: Outcome,
}

/// A row of the `failure_events` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureRow {
    /// The event's GUID.
    pub delivery_id: String,
    /// When it was recorded.
    pub created: DateTime<Utc>,
    /// The webhook.
    pub hook: String,
    /// The attempt the recovery started from.
    pub hook_delivery_id: i64,
    /// The event type.
    pub event: String,
    /// The event's action.
    pub action: Option<String>,
    /// The run.
    pub run_id: String,
    /// What failed.
    pub reason: String,
    /// Whether the run gave up on the event.
    pub given_up: bool,
}

impl FailureRow {
    /// A row about `candidate` saying `reason`.
    pub fn new(candidate: &Candidate, run_id: &str, reason: String, given_up: bool) -> Self {
        let group = &candidate.group;
        Self {
            delivery_id: group.guid.clone(),
            created: Utc::now(),
            hook: group.hook.to_string(),
            hook_delivery_id: group.newest_id(),
            event: group.event.clone(),
            action: group.action.clone(),
            run_id: run_id.to_owned(),
            reason,
            given_up,
        }
    }
}

impl Recovery {
    /// The failure row this recovery leaves, if any: a failed recovery, or this run's evidence
    /// that an earlier one did not take (a failed redelivery in the listing).
    pub fn failure_row(&self, run_id: &str) -> Option<FailureRow> {
        let earlier = self
            .candidate
            .group
            .failed_redelivery()
            .map(|a| format!("redelivery {} failed with HTTP {}", a.id, a.status_code));
        let reason = match (&self.outcome, earlier) {
            (Outcome::Failed { reason }, Some(earlier)) => format!("{earlier}; then {reason}"),
            (Outcome::Failed { reason }, None) => reason.clone(),
            (Outcome::Recovered, Some(earlier)) => {
                format!("{earlier}; recovered again by run {run_id}")
            }
            _ => return None,
        };
        Some(FailureRow::new(&self.candidate, run_id, reason, false))
    }
}

/// The recovery step of the pipeline.
pub struct Recover {
    /// GitHub.
    pub github: GitHubClient,
    /// Auth for the App's hook.
    pub app_auth: Option<Auth>,
    /// Auth for repository and organization hooks.
    pub token_auth: Option<Auth>,
    /// Redeliver or fetch.
    pub mode: RecoveryMode,
    /// Where fetched events land.
    pub lander: Option<Arc<dyn EventSink>>,
    /// Cancelled to stop the run; cancelled by this step when GitHub stops answering.
    pub stop: CancellationToken,
}

impl Recover {
    fn auth(&self, candidate: &Candidate) -> Option<&Auth> {
        if candidate.group.hook.is_app() {
            self.app_auth.as_ref()
        } else {
            self.token_auth.as_ref()
        }
    }

    async fn recover(&self, candidate: &Candidate, auth: &Auth) -> Outcome {
        let group = &candidate.group;
        let id = group.newest_id();
        let github_failed = |error: GitHubError| {
            if error.is_transient() {
                Outcome::Stopped {
                    reason: error_chain(&error),
                }
            } else {
                Outcome::Failed {
                    reason: error_chain(&error),
                }
            }
        };
        match self.mode {
            RecoveryMode::Redeliver => match self.github.redeliver(&group.hook, auth, id).await {
                Ok(()) => Outcome::Recovered,
                Err(error) => github_failed(error),
            },
            RecoveryMode::Fetch => {
                let detail = match self.github.get_delivery(&group.hook, auth, id).await {
                    Ok(detail) => detail,
                    Err(error) => return github_failed(error),
                };
                let event = match event_from(&detail) {
                    Ok(event) => event,
                    Err(error) => {
                        return Outcome::Failed {
                            reason: error_chain(&error),
                        };
                    }
                };
                let Some(lander) = &self.lander else {
                    return Outcome::Stopped {
                        reason: "fetch mode has no events sink to land into".into(),
                    };
                };
                match lander.land(&event, None).await {
                    Ok(AppendOutcome::Landed) => Outcome::Recovered,
                    Ok(AppendOutcome::Duplicate) => Outcome::AlreadyLanded,
                    Err(error @ (StoreError::Unavailable { .. } | StoreError::Closed)) => {
                        Outcome::Stopped {
                            reason: format!("landing the fetched event: {}", error_chain(&error)),
                        }
                    }
                    Err(error) => Outcome::Failed {
                        reason: format!("landing the fetched event: {}", error_chain(&error)),
                    },
                }
            }
        }
    }
}

#[async_trait]
impl DoFn for Recover {
    type In = Candidate;
    type Out = Recovery;

    async fn process(&self, candidate: Candidate) -> Result<Vec<Recovery>, BoxError> {
        let outcome = if self.stop.is_cancelled() {
            Outcome::NotStarted
        } else {
            match self.auth(&candidate) {
                Some(auth) => self.recover(&candidate, auth).await,
                None => Outcome::Failed {
                    reason: format!("no credentials for hook {}", candidate.group.hook),
                },
            }
        };
        if let Outcome::Stopped { reason } = &outcome {
            tracing::error!(guid = %candidate.group.guid, %reason, "Recovery stopped.");
            self.stop.cancel();
        }
        Ok(vec![Recovery { candidate, outcome }])
    }

    fn describe(&self, candidate: &Candidate) -> String {
        candidate.group.guid.clone()
    }
}
