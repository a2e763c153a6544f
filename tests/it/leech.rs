//! `gma leech`, the binary, against the fake GitHub API: the logs of completed runs found in the
//! data directory's events are archived under `DATA_DIR/logs` and indexed.

use gma_store::event::Event;
use gma_store::testing::EventBuilder;
use gma_store::{EventStore, StoreOptions};
use gma_testkit::github::{FakeGitHub, Logs, logs_zip, workflow_run_completed};

use crate::support::{ArgsAndEnv, gma, query_dir};

fn workflow_run(run_id: i64) -> Event {
    let payload = workflow_run_completed("acme/widgets", run_id, 1, chrono::Utc::now(), 5);
    EventBuilder::new(&format!("run-{run_id}"), payload.to_string())
        .event("workflow_run")
        .received_now()
        .build()
}

#[tokio::test]
async fn leech_archives_the_runs_of_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let store = EventStore::open(&data, StoreOptions::default()).unwrap();
        for run_id in [41, 42] {
            store.append(&workflow_run(run_id)).await.unwrap();
        }
        store.close().await;
    }
    let gh = FakeGitHub::start().await;
    let zip = logs_zip(&[("build", &[("Run tests", "ok\n")])]);
    gh.add_workflow_run("acme", "widgets", 41, 1, Logs::zip(zip.clone()));
    gh.add_workflow_run("acme", "widgets", 42, 1, Logs::Status(410));

    let output = tokio::process::Command::new(gma())
        .args(["leech", "--data-dir", &data.display().to_string()])
        .env("GITHUB_API_URL", gh.url())
        .env("GITHUB_APP_ID", FakeGitHub::APP_ID.to_string())
        .env("GITHUB_PRIVATE_KEY", FakeGitHub::private_key_pem())
        .env("GMA_LOG_FORMAT", "json")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("archived 1 run attempts"), "{text}");
    assert!(text.contains("not found 1"), "{text}");
    let stored = std::fs::read(data.join("logs/acme/widgets/41/1/logs.zip")).unwrap();
    assert_eq!(stored, zip);
    let rows = query_dir(
        &data,
        "SELECT run_id, status FROM leech_status ORDER BY run_id",
    )
    .await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["status"], "SUCCESS");
    assert_eq!(rows[1]["status"], "NOT_FOUND");
    let files = query_dir(&data, "SELECT path FROM workflow_logs").await;
    assert_eq!(files.len(), 2, "{files:?}");
}

#[test]
fn warehouse_local_and_gma_warehouse_win_over_gma_sink() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let chooses_local: [ArgsAndEnv; 3] = [
        (&["--warehouse", "local"], &[("GMA_SINK", "bigquery")]),
        (&["--sink", "local"], &[("GMA_SINK", "bigquery")]),
        (&[], &[("GMA_WAREHOUSE", "local"), ("GMA_SINK", "bigquery")]),
    ];
    for (args, env) in chooses_local {
        // No BigQuery project is set: only the data directory's (empty) tables can work, and
        // without runs to archive GitHub is never asked.
        let output = std::process::Command::new(gma())
            .arg("leech")
            .args(args)
            .args(["--data-dir", &data])
            .env_clear()
            .envs(env.iter().copied())
            .env("GITHUB_API_URL", "http://127.0.0.1:9")
            .env("GITHUB_APP_ID", FakeGitHub::APP_ID.to_string())
            .env("GITHUB_PRIVATE_KEY", FakeGitHub::private_key_pem())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{args:?} {env:?}: {text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(text.contains("archived 0 run attempts"), "{text}");
    }
}
