//! `gma retry`, the binary, against the fake GitHub API: GitHub redelivers the failed events to
//! a running `gma serve`; and on Google Cloud's stand-ins (bqemulator, fake-gcs-server) with
//! GMA's variable names, fetching the events into BigQuery.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use gma_pipeline::testing::emulator_config;
use gma_pipeline::warehouse::bigquery::BigQueryWarehouse;
use gma_pipeline::warehouse::bigquery::event_sink::{BigQueryEventSink, BigQueryEventSinkConfig};
use gma_pipeline::warehouse::{Params, Warehouse};
use gma_store::event_sink::EventSink;
use gma_store::testing::EventBuilder;
use gma_testkit::GmaServer;
use gma_testkit::emulators::{gcs_bucket, gcs_object_names};
use gma_testkit::github::{FakeGitHub, HookRef, NewDelivery};

use crate::support::{ArgsAndEnv, gma, query_dir};

const SECRET: &str = "retry-secret";

/// Runs `gma retry` with the fake's App credentials in GMA's variables (asynchronously: the
/// fake answers from this test's runtime).
async fn retry(gh: &FakeGitHub, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(gma());
    command
        .arg("retry")
        .args(args)
        .env("GITHUB_API_URL", gh.url())
        .env("GITHUB_APP_ID", FakeGitHub::APP_ID.to_string())
        .env("GITHUB_PRIVATE_KEY", FakeGitHub::private_key_pem())
        .env("GMA_LOG_FORMAT", "json")
        .env("GMA_GITHUB_MUTATIONS_PER_MINUTE", "0");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().await.expect("gma runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn failed_deliveries(gh: &FakeGitHub) -> Vec<String> {
    let fixtures = gma_testkit::fixtures();
    let mut failed = Vec::new();
    for (i, fixture) in fixtures.iter().take(6).enumerate() {
        let guid = format!("retry-it-{i}");
        let payload: serde_json::Value = serde_json::from_slice(&fixture.body).unwrap();
        let status = if i % 2 == 0 { 502 } else { 200 };
        gh.add_delivery(
            HookRef::App,
            NewDelivery {
                payload,
                delivered_at: chrono::Utc::now() - chrono::Duration::minutes(60 - i as i64),
                ..NewDelivery::new(&guid, &fixture.event, status)
            },
        );
        if status != 200 {
            failed.push(guid);
        }
    }
    failed
}

#[tokio::test]
async fn github_redelivers_the_failed_events_to_gma_serve() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = GmaServer::start(gma(), &data, SECRET, &[]).await;
    let gh = FakeGitHub::start().await;
    gh.set_redelivery_target(&format!("{}/webhook", server.base_url), SECRET);
    let failed = failed_deliveries(&gh);
    let data_arg = data.display().to_string();

    let output = retry(&gh, &["--data-dir", &data_arg], &[]).await;
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("recovered 3"), "{text}");
    assert!(text.contains("events queries 1"), "{text}");

    // The redeliveries went through ingest: signed, verified, landed.
    let deadline = Instant::now() + Duration::from_secs(15);
    let landed = loop {
        let rows = query_dir(
            &data,
            "SELECT delivery_id FROM events WHERE delivery_id LIKE 'retry-it-%' ORDER BY delivery_id",
        )
        .await;
        let ids: Vec<String> = rows
            .iter()
            .map(|r| r["delivery_id"].as_str().unwrap().to_owned())
            .collect();
        if ids.len() >= failed.len() || Instant::now() > deadline {
            break ids;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(landed, failed, "{}", server.log());

    // The second run finds them delivered; the checkpoint holds.
    let again = retry(&gh, &["--data-dir", &data_arg], &[]).await;
    let text = stdout(&again);
    assert!(again.status.success(), "{text}");
    assert!(text.contains("failed events 0"), "{text}");
    let checkpoints = query_dir(&data, "SELECT COUNT(*) AS n FROM checkpoint").await;
    assert_eq!(checkpoints[0]["n"], 2);
    let locks =
        gma_pipeline::blob::open_blob_store(&data.join("locks").display().to_string()).unwrap();
    assert!(
        locks.list("").await.unwrap().is_empty(),
        "the lock is released"
    );

    // Without App credentials the run says what to set.
    let output = std::process::Command::new(gma())
        .args(["retry", "--data-dir", &data_arg])
        .env_remove("GITHUB_APP_ID")
        .env_remove("GITHUB_PRIVATE_KEY")
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(error.contains("GITHUB_APP_ID"), "{error}");
}

#[tokio::test]
async fn fetch_lands_in_bigquery_with_the_lock_in_gcs_under_gma_s_variable_names() {
    let config = emulator_config("retry");
    let bucket = gcs_bucket("gma-retry-lock").await;
    let gh = FakeGitHub::start().await;
    let failed = failed_deliveries(&gh);
    let dir = tempfile::tempdir().unwrap();

    // One failed event landed anyway (a later delivery by another path).
    let sink = BigQueryEventSink::connect(BigQueryEventSinkConfig {
        warehouse: config.clone(),
        events_table: "events".into(),
        spool_dir: dir.path().join("spool"),
        blobs: None,
    })
    .await
    .unwrap();
    let landed_before = EventBuilder::new(&failed[0], r#"{"action":"opened"}"#)
        .event("issues")
        .received_now()
        .build();
    sink.land(&landed_before, None).await.unwrap();

    let endpoint = config.endpoint.clone().unwrap();
    let data_arg = dir.path().join("data").display().to_string();
    let output = retry(
        &gh,
        &[
            "--sink",
            "bigquery",
            "--mode",
            "fetch",
            "--bigquery-endpoint",
            &endpoint,
            "--data-dir",
            &data_arg,
        ],
        &[
            ("PROJECT_ID", &config.project),
            ("DATASET_ID", &config.dataset),
            ("EVENTS_TABLE_ID", "events"),
            ("CHECKPOINT_TABLE_ID", "retry_checkpoint"),
            ("BUCKET_NAME", &bucket),
        ],
    )
    .await;
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("already landed 1, recovered 2"), "{text}");

    let warehouse = BigQueryWarehouse::connect(config).unwrap();
    let result = warehouse
        .query(
            "SELECT delivery_id FROM `${dataset}events` ORDER BY delivery_id",
            &Params::new(),
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    for batch in &result.batches {
        ids.extend(
            batch
                .column(0)
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_owned),
        );
    }
    assert_eq!(ids, failed);
    let checkpoints = warehouse
        .query(
            "SELECT hook, github_instance_url FROM `${dataset}retry_checkpoint`",
            &Params::new(),
        )
        .await
        .unwrap();
    assert_eq!(checkpoints.num_rows(), 1);
    assert!(
        gcs_object_names(&bucket).await.is_empty(),
        "the lock object is released"
    );
}

/// The stderr of `gma retry` with `args` and only the variables `env` (so no BigQuery project),
/// which must fail.
fn retry_without_project(data: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = std::process::Command::new(gma())
        .arg("retry")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "gma retry {args:?} {env:?} succeeded"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_warehouse_is_named_by_warehouse_its_alias_sink_gma_warehouse_or_gma_sink() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let asks_for_bigquery: [ArgsAndEnv; 5] = [
        (&["--warehouse", "bigquery"], &[]),
        (&["--sink", "bigquery"], &[]),
        (&[], &[("GMA_WAREHOUSE", "bigquery")]),
        (&[], &[("GMA_SINK", "bigquery")]),
        (&["--warehouse", "bigquery"], &[("GMA_SINK", "local")]),
    ];
    for (args, env) in asks_for_bigquery {
        let error = retry_without_project(&data, args, env);
        assert!(
            error.contains("BigQuery needs the project"),
            "{args:?} {env:?}: {error}"
        );
    }
    // A warehouse neither flag nor variable knows is refused, as clap refuses a bad value.
    let error = retry_without_project(
        &data,
        &["--warehouse", "bogus"],
        &[("GMA_SINK", "bigquery")],
    );
    assert!(error.contains("invalid value 'bogus'"), "{error}");
    let error = retry_without_project(&data, &[], &[("GMA_SINK", "bogus")]);
    assert!(
        error.contains("GMA_SINK=\"bogus\" names no warehouse"),
        "{error}"
    );
}
