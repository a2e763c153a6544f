//! The analyst views of the repository's `views/` folder: one BigQuery-dialect SELECT per file,
//! applied to BigQuery as views (`gma views apply`, terraform) and registered in DataFusion
//! whenever a local query names one.
//!
//! Views read tables and other views as `` `${dataset}name` ``, which each backend resolves
//! like the tables of `sql/`. Three more placeholders carry a deployment's settings
//! ([`ViewSettings`]): `${events_table}` (GMA's `EVENTS_TABLE_ID`), `${incident_labels}` and
//! `${production_environments}` (BigQuery array literals of strings).
//!
//! [`VIEWS`] lists every file in dependency order, in five [`Layer`]s: each view reads only
//! tables and views of earlier layers, so applying them in order never names a view that does
//! not exist yet.

use std::fmt;
use std::sync::OnceLock;

mod typed;

pub use typed::{EventViews, typed_views};

/// Where a view sits in the dependency order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    /// `unique_events`: the events table with redeliveries removed.
    Base,
    /// One view per event type, its payload's columns extracted.
    Events,
    /// One row per object (pull request, deployment, run, ...) in its newest state.
    LatestState,
    /// Engineering metrics per pull request and workflow (cycle time, review latency,
    /// reliability).
    Metrics,
    /// DORA's four keys, some of which build on the metrics before.
    Dora,
}

impl Layer {
    /// The layer's name as `gma views list` and the terraform module call it.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Base => "base",
            Layer::Events => "events",
            Layer::LatestState => "latest_state",
            Layer::Metrics => "metrics",
            Layer::Dora => "dora",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One view: its name, its layer and its SELECT (with placeholders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewDef {
    /// The view's name, which is its file's name without `.sql`.
    pub name: &'static str,
    /// Its place in the dependency order.
    pub layer: Layer,
    /// The file's text: a leading comment saying what it computes, then one SELECT.
    pub sql: &'static str,
}

impl ViewDef {
    /// The first paragraph of the file's leading comment, without the view's name: what the
    /// view is, for listings.
    pub fn summary(&self) -> String {
        let paragraph: Vec<&str> = self
            .sql
            .lines()
            .map_while(|line| line.strip_prefix("--"))
            .map(str::trim)
            .take_while(|line| !line.is_empty())
            .collect();
        let text = paragraph.join(" ");
        text.strip_prefix(self.name)
            .and_then(|rest| rest.strip_prefix(':'))
            .unwrap_or(&text)
            .trim()
            .to_owned()
    }

    /// The views (of [`VIEWS`]) this one reads, in [`VIEWS`] order. Found in the SQL once per
    /// process: every local query that names a view asks.
    pub fn dependencies(&self) -> Vec<&'static ViewDef> {
        static READS: OnceLock<Vec<Vec<&'static ViewDef>>> = OnceLock::new();
        let reads = READS.get_or_init(|| VIEWS.iter().map(|view| view.reads()).collect());
        match VIEWS.iter().position(|view| view == self) {
            Some(at) => reads[at].clone(),
            None => self.reads(),
        }
    }

    /// The views of [`VIEWS`] named as `${dataset}name` in this view's SQL.
    fn reads(&self) -> Vec<&'static ViewDef> {
        VIEWS
            .iter()
            .filter(|other| {
                self.sql
                    .match_indices(&format!("${{dataset}}{}", other.name))
                    .any(|(at, found)| {
                        let rest = &self.sql[at + found.len()..];
                        !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                    })
            })
            .collect()
    }
}

macro_rules! views {
    ($($layer:ident: [$($name:literal),* $(,)?]),* $(,)?) => {
        /// Every view, in dependency order (layer by layer).
        pub const VIEWS: &[ViewDef] = &[$($(ViewDef {
            name: $name,
            layer: Layer::$layer,
            sql: include_str!(concat!("../../views/", $name, ".sql")),
        },)*)*];
    };
}

views! {
    Base: ["unique_events"],
    Events: [
        "check_run_events",
        "check_suite_events",
        "create_events",
        "delete_events",
        "deployment_events",
        "deployment_status_events",
        "issue_comment_events",
        "issue_events",
        "pull_request_events",
        "pull_request_review_comment_events",
        "pull_request_review_events",
        "push_events",
        "release_events",
        "team_events",
        "workflow_job_events",
        "workflow_run_events",
    ],
    LatestState: [
        "check_runs",
        "deployment_outcomes",
        "deployment_statuses",
        "deployments",
        "issue_comments",
        "issues",
        "pull_request_review_comments",
        "pull_request_reviews",
        "pull_requests",
        "releases",
        "teams",
        "workflow_jobs",
        "workflow_runs",
    ],
    Metrics: ["pr_cycle_time", "review_latency", "workflow_reliability"],
    Dora: [
        "dora_deployment_frequency",
        "dora_lead_time",
        "dora_change_failure_rate",
        "dora_time_to_restore",
    ],
}

/// The view named `name`, if there is one.
pub fn find(name: &str) -> Option<&'static ViewDef> {
    VIEWS
        .iter()
        .find(|view| view.name.eq_ignore_ascii_case(name))
}

/// `views` and every view they read, directly or not, in [`VIEWS`] order.
pub fn with_dependencies<'a>(
    views: impl IntoIterator<Item = &'a ViewDef>,
) -> Vec<&'static ViewDef> {
    with_dependencies_until(views, |_| false)
}

/// `views` and every view they read, directly or not, in [`VIEWS`] order, except that a view
/// `is_table` names is read as a table: neither it nor what it reads is added for its sake.
pub fn with_dependencies_until<'a>(
    views: impl IntoIterator<Item = &'a ViewDef>,
    is_table: impl Fn(&str) -> bool,
) -> Vec<&'static ViewDef> {
    let mut needed: Vec<&'static str> = views
        .into_iter()
        .map(|view| view.name)
        .filter(|name| !is_table(name))
        .collect();
    let mut i = 0;
    while i < needed.len() {
        if let Some(view) = find(needed[i]) {
            for dependency in view.dependencies() {
                if !needed.contains(&dependency.name) && !is_table(dependency.name) {
                    needed.push(dependency.name);
                }
            }
        }
        i += 1;
    }
    VIEWS
        .iter()
        .filter(|view| needed.contains(&view.name))
        .collect()
}

/// A deployment's settings that views read: which table holds the events, and the definitions
/// the DORA views take from the team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewSettings {
    /// The events table's name (GMA's `EVENTS_TABLE_ID`; `events` by default).
    pub events_table: String,
    /// Issue labels that mark an incident (`dora_time_to_restore`), compared without case.
    pub incident_labels: Vec<String>,
    /// Deployment environments that count as production, compared without case, besides
    /// those whose deployments GitHub marks `production_environment`.
    pub production_environments: Vec<String>,
    /// Whether the event views are read from their typed tables (the default) or computed from
    /// payloads at every query.
    pub event_views: EventViews,
}

impl Default for ViewSettings {
    fn default() -> Self {
        Self {
            events_table: "events".to_owned(),
            incident_labels: vec!["incident".to_owned()],
            production_environments: vec!["production".to_owned(), "prod".to_owned()],
            event_views: EventViews::Typed,
        }
    }
}

impl ViewSettings {
    /// `view`'s SELECT with the settings' placeholders filled in; `${dataset}` is left for the
    /// warehouse to resolve.
    ///
    /// # Errors
    /// [`ViewError::Setting`] when a setting cannot be written into SQL safely.
    pub fn render(&self, view: &ViewDef) -> Result<String, ViewError> {
        let events_table = self.events_table.trim();
        if events_table.is_empty()
            || !events_table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ViewError::Setting {
                setting: "events table",
                reason: format!(
                    "{events_table:?} is not a table name (letters, digits, underscores)"
                ),
            });
        }
        Ok(crate::sql::name_tables(
            view.sql,
            &[
                ("events_table", events_table),
                (
                    "incident_labels",
                    &array_literal("incident label", &self.incident_labels)?,
                ),
                (
                    "production_environments",
                    &array_literal("production environment", &self.production_environments)?,
                ),
            ],
        ))
    }

    /// `CREATE OR REPLACE VIEW` of `view` with these settings; `${dataset}` is left for the
    /// warehouse to resolve.
    ///
    /// # Errors
    /// As [`ViewSettings::render`].
    pub fn create_statement(&self, view: &ViewDef) -> Result<String, ViewError> {
        let query = self.render(view)?;
        Ok(crate::sql::name_tables(
            crate::sql::CREATE_VIEW,
            &[("view", view.name), ("query", query.trim_end())],
        ))
    }
}

/// `['a', 'b']`: lowercased values as a BigQuery array literal of strings.
fn array_literal(setting: &'static str, values: &[String]) -> Result<String, ViewError> {
    let mut items = Vec::with_capacity(values.len());
    for value in values {
        let value = value.trim();
        if value.is_empty() || value.contains(['\'', '\\', '\n', '\r']) {
            return Err(ViewError::Setting {
                setting,
                reason: format!(
                    "{value:?} must be non-empty and hold no quote, backslash or line break"
                ),
            });
        }
        items.push(format!("'{}'", value.to_lowercase()));
    }
    Ok(format!("[{}]", items.join(", ")))
}

/// Why a view could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// A setting's value cannot be written into a view.
    #[error("the {setting} setting: {reason}")]
    Setting {
        /// Which setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A view does not have the shape its layer needs (a bug caught by the views' tests).
    #[error("the view {view}: {reason}")]
    Shape {
        /// The view.
        view: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

#[cfg(test)]
mod bigquery_tests;
#[cfg(test)]
mod local_tests;
#[cfg(test)]
mod metrics_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod typed_tests;
