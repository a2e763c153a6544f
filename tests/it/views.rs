//! The analyst views through the binary: `gma query` reads them over an imported data
//! directory (also by their BigQuery names), and `gma views list` names every one.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::import::fixtures;

fn gma(args: &[&str]) -> std::process::Output {
    Command::new(crate::support::gma())
        .args(args)
        .env("GMA_LOG", "warn")
        .output()
        .unwrap()
}

fn query(data: &Path, sql: &str) -> Vec<Value> {
    let out = gma(&[
        "query",
        "--format",
        "json",
        "--data-dir",
        data.to_str().unwrap(),
        sql,
    ]);
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn gma_query_reads_the_views_of_an_imported_data_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut lines = String::new();
    let mut pull_requests = BTreeMap::new();
    for (i, (event, payload)) in fixtures().iter().enumerate() {
        let object: Value = serde_json::from_slice(payload).unwrap();
        if event == "pull_request" {
            let pr = &object["pull_request"];
            pull_requests.insert(
                pr["id"].as_i64().unwrap(),
                (pr["number"].clone(), pr["title"].clone()),
            );
        }
        let line = json!({"headers": {"X-GitHub-Delivery": format!("v-{i}"), "X-GitHub-Event": event},
                          "received": 1_767_225_600 + i, "payload": object});
        lines.push_str(&format!("{line}\n"));
    }
    let file = tmp.path().join("events.ndjson");
    std::fs::write(&file, lines).unwrap();
    let out = gma(&[
        "import",
        "--data-dir",
        data.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // One row per pull request, with the values of its payload.
    let rows = query(
        &data,
        "SELECT id, number, title FROM pull_requests ORDER BY id",
    );
    let got: BTreeMap<i64, (Value, Value)> = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                (r["number"].clone(), r["title"].clone()),
            )
        })
        .collect();
    assert_eq!(got, pull_requests);
    assert_eq!(rows.len(), pull_requests.len());

    // A query written for BigQuery, with a project and dataset, reads the same view.
    let qualified = query(
        &data,
        "SELECT id FROM `my-project.gma.pull_requests` ORDER BY id",
    );
    assert_eq!(qualified.len(), rows.len());

    // Every view answers; views read views.
    let counts = query(
        &data,
        "SELECT (SELECT COUNT(*) FROM unique_events) AS events, \
         (SELECT COUNT(*) FROM workflow_reliability) AS weeks",
    );
    assert_eq!(counts[0]["events"], json!(fixtures().len()));
    assert_eq!(counts[0]["weeks"], json!(1));
}

#[test]
fn views_list_names_every_view_in_dependency_order() {
    let out = gma(&["views", "list"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(names.len(), gma_pipeline::views::VIEWS.len(), "{text}");
    assert_eq!(names.first(), Some(&"unique_events"));
    let position = |name: &str| names.iter().position(|n| *n == name).unwrap();
    assert!(position("pull_request_events") < position("pull_requests"));
    assert!(position("pr_cycle_time") < position("dora_lead_time"));
}

/// `gma views apply --dry-run` for project `p`, dataset `d`, with `extra` flags.
fn dry_run(extra: &[&str]) -> std::process::Output {
    let args = [
        "views",
        "apply",
        "--dry-run",
        "--project",
        "p",
        "--dataset",
        "d",
    ];
    gma(&[&args[..], extra].concat())
}

#[test]
fn views_apply_dry_run_prints_ddl_and_refuses_unknown_views() {
    let out = dry_run(&["--only", "dora_lead_time"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ddl = String::from_utf8(out.stdout).unwrap();
    let creates: Vec<&str> = ddl
        .lines()
        .filter(|l| l.starts_with("CREATE OR REPLACE VIEW"))
        .collect();
    assert_eq!(
        creates.first(),
        Some(&"CREATE OR REPLACE VIEW `p.d.unique_events` AS")
    );
    assert_eq!(
        creates.last(),
        Some(&"CREATE OR REPLACE VIEW `p.d.dora_lead_time` AS")
    );
    assert!(ddl.contains("IN UNNEST(['production', 'prod'])"), "{ddl}");
    // The event views it reads are typed tables, with the refresh's own tables.
    for table in [
        "pull_request_events",
        "deployment_status_events",
        "refresh_requests",
        "watermarks",
    ] {
        assert!(
            ddl.contains(&format!("CREATE TABLE IF NOT EXISTS `p.d.{table}`")),
            "{table}: {ddl}"
        );
    }
    assert!(
        !ddl.contains("CREATE OR REPLACE VIEW `p.d.pull_request_events`"),
        "{ddl}"
    );
    assert!(ddl.contains("gma views refresh"), "{ddl}");
    assert!(!ddl.contains("${"), "a placeholder is left: {ddl}");

    let out = dry_run(&["--only", "pulls"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("gma views list"));
    let out = dry_run(&["--incident-label", "it's"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("incident label"));
}
