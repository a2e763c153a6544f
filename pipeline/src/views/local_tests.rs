//! Every view on DataFusion over the data directory, its values checked against the payloads.

use serde_json::{Map, Value};

use super::*;
use crate::testing::fixture_events;
use crate::warehouse::local::LocalWarehouse;
use crate::warehouse::{Params, Warehouse};
use gma_store::event::Event;

/// A data directory holding `events`, and a warehouse over it whose event views are computed
/// from payloads (the reference the typed tables are checked against in gma-refresh).
pub(crate) async fn local_with(
    events: &[Event],
    payloads: &[String],
) -> (tempfile::TempDir, LocalWarehouse) {
    crate::testing::local_warehouse_with(
        events,
        payloads,
        ViewSettings::default().reading_payloads(),
    )
    .await
}

/// The rows of `SELECT * FROM view` as JSON objects.
pub(crate) async fn view_rows(warehouse: &dyn Warehouse, view: &str) -> Vec<Map<String, Value>> {
    warehouse
        .query(
            &format!("SELECT * FROM `${{dataset}}{view}`"),
            &Params::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("{view}: {e}"))
        .to_json_rows()
        .unwrap()
}

#[tokio::test]
async fn every_view_runs_over_the_fixtures() {
    let (events, payloads) = fixture_events();
    let (_dir, warehouse) = local_with(&events, &payloads).await;
    let mut failures = Vec::new();
    for view in VIEWS {
        let sql = format!("SELECT * FROM {}", view.name);
        if let Err(e) = warehouse.query(&sql, &Params::new()).await {
            failures.push(format!("{}: {e}", view.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Columns of a view, each with the JSON pointer of the payload value it holds.
type Columns = &'static [(&'static str, &'static str)];

/// Per event view: its event type and columns with the JSON pointer each is read from.
const EVENT_COLUMNS: &[(&str, &str, Columns)] = &[
    (
        "check_run_events",
        "check_run",
        &[
            ("id", "/check_run/id"),
            ("name", "/check_run/name"),
            ("conclusion", "/check_run/conclusion"),
            ("check_suite_id", "/check_run/check_suite/id"),
            ("app", "/check_run/app/slug"),
            ("started_at", "/check_run/started_at"),
            ("completed_at", "/check_run/completed_at"),
        ],
    ),
    (
        "check_suite_events",
        "check_suite",
        &[
            ("id", "/check_suite/id"),
            ("head_sha", "/check_suite/head_sha"),
            ("conclusion", "/check_suite/conclusion"),
            ("created_at", "/check_suite/created_at"),
        ],
    ),
    (
        "create_events",
        "create",
        &[
            ("ref", "/ref"),
            ("ref_type", "/ref_type"),
            ("master_branch", "/master_branch"),
        ],
    ),
    (
        "delete_events",
        "delete",
        &[("ref", "/ref"), ("ref_type", "/ref_type")],
    ),
    (
        "deployment_events",
        "deployment",
        &[
            ("id", "/deployment/id"),
            ("environment", "/deployment/environment"),
            ("sha", "/deployment/sha"),
            ("creator", "/deployment/creator/login"),
            ("created_at", "/deployment/created_at"),
            (
                "production_environment",
                "/deployment/production_environment",
            ),
        ],
    ),
    (
        "deployment_status_events",
        "deployment_status",
        &[
            ("id", "/deployment_status/id"),
            ("state", "/deployment_status/state"),
            ("deployment_id", "/deployment/id"),
            ("deployment_sha", "/deployment/sha"),
            ("creator", "/deployment_status/creator/login"),
            ("created_at", "/deployment_status/created_at"),
        ],
    ),
    (
        "issue_comment_events",
        "issue_comment",
        &[
            ("id", "/comment/id"),
            ("body", "/comment/body"),
            ("commenter", "/comment/user/login"),
            ("issue_number", "/issue/number"),
            ("created_at", "/comment/created_at"),
        ],
    ),
    (
        "issue_events",
        "issues",
        &[
            ("id", "/issue/id"),
            ("number", "/issue/number"),
            ("title", "/issue/title"),
            ("state", "/issue/state"),
            ("author", "/issue/user/login"),
            ("assignee", "/issue/assignee/login"),
            ("created_at", "/issue/created_at"),
        ],
    ),
    (
        "pull_request_events",
        "pull_request",
        &[
            ("id", "/pull_request/id"),
            ("number", "/pull_request/number"),
            ("title", "/pull_request/title"),
            ("author", "/pull_request/user/login"),
            ("head_ref", "/pull_request/head/ref"),
            ("head_repository_id", "/pull_request/head/repo/id"),
            ("base_ref", "/pull_request/base/ref"),
            ("additions", "/pull_request/additions"),
            ("merged", "/pull_request/merged"),
            ("created_at", "/pull_request/created_at"),
            ("merge_commit_sha", "/pull_request/merge_commit_sha"),
        ],
    ),
    (
        "pull_request_review_comment_events",
        "pull_request_review_comment",
        &[
            ("id", "/comment/id"),
            ("path", "/comment/path"),
            ("commit_sha", "/comment/commit_id"),
            ("pull_request_number", "/pull_request/number"),
            ("pull_request_review_id", "/comment/pull_request_review_id"),
        ],
    ),
    (
        "pull_request_review_events",
        "pull_request_review",
        &[
            ("id", "/review/id"),
            ("state", "/review/state"),
            ("reviewer", "/review/user/login"),
            ("submitted_at", "/review/submitted_at"),
            ("pull_request_number", "/pull_request/number"),
            ("pull_request_author", "/pull_request/user/login"),
        ],
    ),
    (
        "push_events",
        "push",
        &[
            ("ref", "/ref"),
            ("before_sha", "/before"),
            ("after_sha", "/after"),
            ("compare_url", "/compare"),
            ("pusher", "/pusher/name"),
            ("forced", "/forced"),
            ("repository_default_branch", "/repository/default_branch"),
        ],
    ),
    (
        "release_events",
        "release",
        &[
            ("id", "/release/id"),
            ("tag_name", "/release/tag_name"),
            ("body", "/release/body"),
            ("author", "/release/author/login"),
            ("created_at", "/release/created_at"),
        ],
    ),
    (
        "team_events",
        "team",
        &[
            ("id", "/team/id"),
            ("name", "/team/name"),
            ("slug", "/team/slug"),
            ("privacy", "/team/privacy"),
        ],
    ),
    (
        "workflow_job_events",
        "workflow_job",
        &[
            ("id", "/workflow_job/id"),
            ("run_id", "/workflow_job/run_id"),
            ("name", "/workflow_job/name"),
            ("conclusion", "/workflow_job/conclusion"),
            ("started_at", "/workflow_job/started_at"),
            ("completed_at", "/workflow_job/completed_at"),
        ],
    ),
    (
        "workflow_run_events",
        "workflow_run",
        &[
            ("id", "/workflow_run/id"),
            ("run_attempt", "/workflow_run/run_attempt"),
            ("workflow_id", "/workflow_run/workflow_id"),
            ("head_sha", "/workflow_run/head_sha"),
            ("conclusion", "/workflow_run/conclusion"),
            ("actor", "/workflow_run/actor/login"),
            ("run_started_at", "/workflow_run/run_started_at"),
        ],
    ),
];

/// The columns every event view shares, with where each comes from.
const COMMON_COLUMNS: &[(&str, &str)] = &[
    ("organization", "/organization/login"),
    ("organization_id", "/organization/id"),
    ("repository_full_name", "/repository/full_name"),
    ("repository", "/repository/name"),
    ("repository_id", "/repository/id"),
    ("repository_visibility", "/repository/visibility"),
    ("sender", "/sender/login"),
    ("sender_id", "/sender/id"),
    ("action", "/action"),
];

/// `cell` (a view's value as arrow's JSON writer gives it) holds the same value as `json`.
pub(super) fn same_value(cell: Option<&Value>, json: Option<&Value>) -> bool {
    match (cell, json) {
        (None | Some(Value::Null), None | Some(Value::Null)) => true,
        (Some(Value::String(cell)), Some(Value::String(json))) => {
            cell == json
                || matches!(
                    (
                        chrono::DateTime::parse_from_rfc3339(json),
                        chrono::DateTime::parse_from_rfc3339(&cell.replace(' ', "T")),
                    ),
                    (Ok(a), Ok(b)) if a == b
                )
        }
        (Some(cell), Some(json)) => cell == json,
        _ => false,
    }
}

#[tokio::test]
async fn event_views_hold_the_payloads_values() {
    let fixtures = gma_testkit::fixtures();
    let (events, payloads) = fixture_events();
    let (_dir, warehouse) = local_with(&events, &payloads).await;
    assert_eq!(
        EVENT_COLUMNS.len(),
        VIEWS.iter().filter(|v| v.layer == Layer::Events).count(),
        "every event view is checked"
    );
    for (view, event, columns) in EVENT_COLUMNS {
        let rows = view_rows(&warehouse, view).await;
        let expected: Vec<(&String, Value)> = events
            .iter()
            .zip(&fixtures)
            .filter(|(e, _)| e.headers.event == *event)
            .map(|(e, f)| {
                (
                    &e.headers.delivery_id,
                    serde_json::from_slice(&f.body).unwrap(),
                )
            })
            .collect();
        assert!(!expected.is_empty(), "testdata has no {event} payload");
        assert_eq!(rows.len(), expected.len(), "{view}");
        let mut compared = 0;
        for (delivery, payload) in expected {
            let row = rows
                .iter()
                .find(|r| r.get("delivery_id") == Some(&Value::String(delivery.clone())))
                .unwrap_or_else(|| panic!("{view} lacks {delivery}"));
            assert_eq!(row.get("event"), Some(&Value::String((*event).to_owned())));
            for (column, pointer) in COMMON_COLUMNS.iter().chain(columns.iter()) {
                compared += usize::from(payload.pointer(pointer).is_some_and(|v| !v.is_null()));
                assert!(
                    same_value(row.get(*column), payload.pointer(pointer)),
                    "{view}.{column}: view has {:?}, the payload's {pointer} is {:?}",
                    row.get(*column),
                    payload.pointer(pointer)
                );
            }
        }
        // Most checks compare real values, not two NULLs (a misspelt column would be NULL).
        assert!(
            compared * 2 >= columns.len() + COMMON_COLUMNS.len(),
            "{view}: {compared}"
        );
    }
}

#[tokio::test]
async fn the_shared_corpus_runs_through_every_view() {
    // The 273 payloads of ../shared/webhook-payloads, when that folder is there.
    let Some(fixtures) = gma_testkit::shared_payloads() else {
        return;
    };
    let (events, payloads) = crate::testing::events_of(&fixtures);
    let (_dir, warehouse) = local_with(&events, &payloads).await;
    for view in VIEWS {
        let rows = view_rows(&warehouse, view.name).await;
        if let Some((_, event, _)) = EVENT_COLUMNS.iter().find(|(name, ..)| *name == view.name) {
            let expected = fixtures.iter().filter(|f| f.event == *event).count();
            assert_eq!(
                rows.len(),
                expected,
                "{}: one row per {event} payload",
                view.name
            );
        }
    }
    let all = view_rows(&warehouse, "unique_events").await;
    assert_eq!(all.len(), fixtures.len());
}
