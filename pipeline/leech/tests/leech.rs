//! `gma leech` against the fake GitHub API over HTTP on loopback (logs behind a 302 to an
//! archive host that refuses tokens), with the real local warehouse and event store, and both a
//! local blob directory and fake-gcs-server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use gma_leech::{LeechJob, LeechOptions, LeechSummary, LeechTables};
use gma_pipeline::blob::{BlobKey, BlobStore, open_blob_store};
use gma_pipeline::flow::Shard;
use gma_pipeline::github::GitHubClient;
use gma_pipeline::testing::{LocalSite, github_app, github_client};
use gma_pipeline::warehouse::{Params, Warehouse};
use gma_store::event::Event;
use gma_store::testing::EventBuilder;
use gma_testkit::github::{FakeGitHub, Fault, Logs, Route, logs_zip, workflow_run_completed};

const INSTALLATION: i64 = 77;

/// A client of the fake trying each call twice.
fn client(gh: &FakeGitHub) -> GitHubClient {
    github_client(gh.url(), 2)
}

/// A `workflow_run` completed event for `run_id`, as GitHub sends it.
fn run_event(
    delivery: &str,
    repo: &str,
    run_id: i64,
    attempt: i64,
    completed_days_ago: i64,
) -> Event {
    let completed = Utc::now() - chrono::Duration::days(completed_days_ago);
    let payload = workflow_run_completed(repo, run_id, attempt, completed, INSTALLATION);
    EventBuilder::new(delivery, payload.to_string())
        .event("workflow_run")
        .received_now()
        .build()
}

fn zip_for(run_id: i64) -> Vec<u8> {
    let ok = format!("2026-11-28T10:00:00.0000000Z building run {run_id}\nline two\n");
    let fail = "2026-11-28T10:00:01.0000000Z step\n2026-11-28T10:00:02.0000000Z ##[error]Process completed with exit code 1.\n";
    logs_zip(&[
        ("build", &[("Set up job", ok.as_str()), ("Run tests", fail)]),
        ("lint", &[("Run clippy", "clean\n")]),
    ])
}

/// A data directory with its store and warehouse, and where the logs go.
struct Site {
    local: LocalSite,
    logs: Arc<dyn BlobStore>,
}

impl Site {
    async fn new(logs: Option<Arc<dyn BlobStore>>) -> Self {
        let local = LocalSite::new().await;
        let logs = logs.unwrap_or_else(|| {
            open_blob_store(&local.dir.path().join("logs").display().to_string()).unwrap()
        });
        Self { local, logs }
    }

    async fn land(&self, event: Event) {
        self.local.store.append(&event).await.unwrap();
    }

    fn job(&self, gh: &FakeGitHub) -> LeechJob {
        LeechJob {
            github: client(gh),
            app: github_app(),
            warehouse: self.local.warehouse.clone(),
            tables: LeechTables::default(),
            logs: self.logs.clone(),
            options: LeechOptions {
                retry_backoff: Duration::ZERO,
                ..LeechOptions::default()
            },
        }
    }

    async fn run(&self, gh: &FakeGitHub) -> LeechSummary {
        self.job(gh).run().await.unwrap()
    }

    /// Status rows by run id: (status, attempts, error).
    async fn statuses(&self) -> BTreeMap<i64, Vec<(String, i64, String)>> {
        let mut out: BTreeMap<i64, Vec<(String, i64, String)>> = BTreeMap::new();
        for row in self
            .local
            .rows("SELECT run_id, status, attempts, error FROM leech_status ORDER BY run_id, attempts")
            .await
        {
            out.entry(row["run_id"].as_i64().unwrap()).or_default().push((
                row["status"].as_str().unwrap().to_owned(),
                row["attempts"].as_i64().unwrap(),
                row.get("error").and_then(|e| e.as_str()).unwrap_or("").to_owned(),
            ));
        }
        out
    }
}

async fn archives_a_batch_byte_identical_and_indexes_it(site: Site) {
    let gh = FakeGitHub::start().await;
    let mut zips = BTreeMap::new();
    for run_id in 100..110 {
        let zip = zip_for(run_id);
        gh.add_workflow_run("acme", "widgets", run_id as u64, 1, Logs::zip(zip.clone()));
        zips.insert(run_id, zip);
        site.land(run_event(
            &format!("d-{run_id}"),
            "acme/widgets",
            run_id,
            1,
            1,
        ))
        .await;
    }
    // A redelivered copy of one event is the same job.
    site.land(run_event("d-100-again", "acme/widgets", 100, 1, 1))
        .await;

    let summary = site.run(&gh).await;
    assert_eq!(summary.archived, 10, "{summary}");
    assert_eq!(
        gh.archive_auth_refusals(),
        0,
        "the storage host never saw the token"
    );
    assert_eq!(
        gh.tokens_issued(INSTALLATION as u64),
        1,
        "one token per installation"
    );
    for (run_id, zip) in &zips {
        let key = BlobKey::new(format!("acme/widgets/{run_id}/1/logs.zip")).unwrap();
        assert_eq!(site.logs.get(&key).await.unwrap(), Bytes::from(zip.clone()));
        assert_eq!(
            site.logs.head(&key).await.unwrap().content_type,
            "application/zip"
        );
    }
    let statuses = site.statuses().await;
    assert_eq!(statuses.len(), 10);
    assert!(
        statuses
            .values()
            .all(|rows| rows.len() == 1 && rows[0].0 == "SUCCESS")
    );
    let files = site
        .local
        .rows(
            "SELECT path, job_name, step_number, step_name, lines, first_error, uncompressed_bytes \
             FROM workflow_logs WHERE run_id = 104 ORDER BY path",
        )
        .await;
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "1_build.txt",
            "2_lint.txt",
            "build/1_Set up job.txt",
            "build/2_Run tests.txt",
            "lint/1_Run clippy.txt"
        ]
    );
    let tests = &files[3];
    assert_eq!(tests["job_name"], "build");
    assert_eq!(tests["step_number"], 2);
    assert_eq!(tests["step_name"], "Run tests");
    assert_eq!(tests["lines"], 2);
    assert_eq!(
        tests["first_error"],
        "##[error]Process completed with exit code 1."
    );
    assert!(files[2].get("first_error").is_none_or(|e| e.is_null()));

    // A second run over the same events does nothing.
    let downloads = gh.archive_downloads();
    let again = site.run(&gh).await;
    assert_eq!(
        again.archived + again.failed + again.not_found,
        0,
        "{again}"
    );
    assert_eq!(gh.archive_downloads(), downloads);
    assert_eq!(
        site.local.rows("SELECT * FROM leech_status").await.len(),
        10
    );
}

#[tokio::test]
async fn archives_a_batch_to_a_local_directory() {
    archives_a_batch_byte_identical_and_indexes_it(Site::new(None).await).await;
}

#[tokio::test]
async fn archives_a_batch_to_gcs() {
    let bucket = gma_testkit::emulators::gcs_bucket("gma-leech").await;
    let store = open_blob_store(&format!("gs://{bucket}/logs")).unwrap();
    archives_a_batch_byte_identical_and_indexes_it(Site::new(Some(store)).await).await;
}

#[tokio::test]
async fn gone_logs_are_final_and_failures_are_retried_until_they_succeed() {
    let gh = FakeGitHub::start().await;
    let site = Site::new(None).await;
    let cases = [
        (1, Logs::Status(410), 1),
        (2, Logs::Status(404), 120),
        (3, Logs::Status(404), 1),
        (4, Logs::Status(500), 1),
        (
            5,
            Logs::zip(b"PK\x03\x04 this is not a zip at all".to_vec()),
            1,
        ),
        (6, Logs::InProgress, 0),
    ];
    for (run_id, logs, days) in cases {
        gh.add_workflow_run("acme", "widgets", run_id as u64, 1, logs);
        site.land(run_event(
            &format!("d-{run_id}"),
            "acme/widgets",
            run_id,
            1,
            days,
        ))
        .await;
    }
    let first = site.run(&gh).await;
    assert_eq!(
        (first.not_found, first.failed, first.skipped),
        (2, 3, 1),
        "{first}"
    );
    let statuses = site.statuses().await;
    assert_eq!(statuses[&1][0].0, "NOT_FOUND");
    assert_eq!(statuses[&2][0].0, "NOT_FOUND");
    assert!(
        statuses[&2][0].2.contains("retention"),
        "{:?}",
        statuses[&2]
    );
    assert_eq!(statuses[&3][0].0, "FAILURE");
    assert_eq!(statuses[&4][0].0, "FAILURE");
    assert!(statuses[&4][0].2.contains("500"), "{:?}", statuses[&4]);
    assert_eq!(statuses[&5][0].0, "FAILURE");
    assert!(statuses[&5][0].2.contains("zip"), "{:?}", statuses[&5]);
    assert!(
        !statuses.contains_key(&6),
        "a run in progress is not marked"
    );
    let broken = BlobKey::new("acme/widgets/5/1/logs.zip").unwrap();
    assert!(
        site.logs.head(&broken).await.is_err(),
        "a broken zip is not kept"
    );

    // GitHub recovers: the failures are retried and succeed, with the attempts counted; the
    // final NOT_FOUNDs are not asked again.
    for run_id in [3, 4, 5, 6] {
        gh.add_workflow_run(
            "acme",
            "widgets",
            run_id,
            1,
            Logs::zip(zip_for(run_id as i64)),
        );
    }
    let second = site.run(&gh).await;
    assert_eq!(
        (second.archived, second.not_found, second.failed),
        (4, 0, 0),
        "{second}"
    );
    let statuses = site.statuses().await;
    for run_id in [3, 4, 5] {
        assert_eq!(
            statuses[&run_id]
                .iter()
                .map(|r| (r.0.as_str(), r.1))
                .collect::<Vec<_>>(),
            [("FAILURE", 1), ("SUCCESS", 2)]
        );
    }
    assert_eq!(statuses[&6], [("SUCCESS".to_owned(), 1, String::new())]);
    assert_eq!(statuses[&1].len(), 1);
}

#[tokio::test]
async fn failures_stop_at_the_attempt_cap() {
    let gh = FakeGitHub::start().await;
    let site = Site::new(None).await;
    gh.add_workflow_run("acme", "widgets", 7, 1, Logs::Status(500));
    site.land(run_event("d-7", "acme/widgets", 7, 1, 1)).await;
    for _ in 0..4 {
        let mut job = site.job(&gh);
        job.options.max_attempts = 2;
        job.run().await.unwrap();
    }
    assert_eq!(site.statuses().await[&7].len(), 2, "two tries, then final");
}

#[tokio::test]
async fn a_truncated_download_stores_nothing_and_fails_clearly() {
    let gh = FakeGitHub::start().await;
    let site = Site::new(None).await;
    gh.add_workflow_run("acme", "widgets", 8, 1, Logs::zip(zip_for(8)));
    gh.inject(Route::ArchiveDownload, Fault::TruncatedBody { times: 10 });
    site.land(run_event("d-8", "acme/widgets", 8, 1, 1)).await;
    let summary = site.run(&gh).await;
    assert_eq!(summary.failed, 1, "{summary}");
    assert!(
        site.logs.list("").await.unwrap().is_empty(),
        "no half object"
    );
    let statuses = site.statuses().await;
    assert_eq!(statuses[&8][0].0, "FAILURE");
}

#[tokio::test]
async fn two_shards_archive_every_run_exactly_once() {
    let gh = FakeGitHub::start().await;
    let site = Site::new(None).await;
    for run_id in 200..240 {
        gh.add_workflow_run(
            "acme",
            "widgets",
            run_id as u64,
            1,
            Logs::zip(zip_for(run_id)),
        );
        site.land(run_event(
            &format!("d-{run_id}"),
            "acme/widgets",
            run_id,
            1,
            1,
        ))
        .await;
    }
    let shard = |s: &str| {
        let mut job = site.job(&gh);
        job.options.shard = s.parse::<Shard>().unwrap();
        job.run()
    };
    let (a, b) = tokio::join!(shard("0/2"), shard("1/2"));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.archived + b.archived, 40, "{a}\n{b}");
    assert!(a.archived > 0 && b.archived > 0);
    assert_eq!(gh.archive_downloads(), 40);
    let statuses = site.statuses().await;
    assert_eq!(statuses.len(), 40);
    assert!(statuses.values().all(|rows| rows.len() == 1));
}

#[tokio::test]
async fn backfill_filters_and_limit() {
    let gh = FakeGitHub::start().await;
    let site = Site::new(None).await;
    for (run_id, repo, days) in [
        (300, "acme/widgets", 1),
        (301, "acme/gadgets", 1),
        (302, "acme/widgets", 10),
        (303, "acme/widgets", 2),
    ] {
        let (owner, name) = repo.split_once('/').unwrap();
        gh.add_workflow_run(owner, name, run_id as u64, 1, Logs::zip(zip_for(run_id)));
        site.land(run_event(&format!("d-{run_id}"), repo, run_id, 1, days))
            .await;
    }
    let mut job = site.job(&gh);
    job.options.repo = Some("ACME/Widgets".into());
    job.options.since = Some(Utc::now() - chrono::Duration::days(5));
    let summary = job.run().await.unwrap();
    assert_eq!(summary.archived, 2, "{summary}");
    let mut job = site.job(&gh);
    job.options.limit = Some(1);
    let summary = job.run().await.unwrap();
    assert_eq!(summary.archived, 1, "{summary}");
    assert_eq!(site.statuses().await.len(), 3);
}

#[tokio::test]
async fn follow_mode_archives_runs_as_their_events_land() {
    let gh = FakeGitHub::start().await;
    let site = Site::new(None).await;
    for run_id in [500, 501] {
        gh.add_workflow_run(
            "acme",
            "widgets",
            run_id,
            1,
            Logs::zip(zip_for(run_id as i64)),
        );
    }
    site.land(run_event("d-500", "acme/widgets", 500, 1, 1))
        .await;
    let mut job = site.job(&gh);
    job.options.mode = gma_pipeline::flow::Mode::Follow {
        poll: Duration::from_millis(100),
    };
    let shutdown = job.options.shutdown.clone();
    let running = tokio::spawn(job.run());
    let key = |run: i64| BlobKey::new(format!("acme/widgets/{run}/1/logs.zip")).unwrap();
    let wait_for = |run: i64| {
        let logs = site.logs.clone();
        async move {
            for _ in 0..100 {
                if logs.head(&key(run)).await.is_ok() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }
    };
    assert!(wait_for(500).await, "the backlog is archived");
    // A run whose event lands while the job follows.
    site.land(run_event("d-501", "acme/widgets", 501, 1, 0))
        .await;
    assert!(
        wait_for(501).await,
        "a new run is archived as its event lands"
    );
    shutdown.cancel();
    let summary = running.await.unwrap().unwrap();
    assert_eq!(summary.archived, 2, "{summary}");
    assert!(summary.run.follow);
    let watermark = site
        .local
        .rows("SELECT COUNT(*) AS n FROM watermarks WHERE pipeline = 'leech'")
        .await;
    assert!(
        watermark[0]["n"].as_i64().unwrap() >= 1,
        "the watermark is saved"
    );
}

#[tokio::test]
async fn runs_on_bigquery() {
    use gma_pipeline::warehouse::bigquery::event_sink::{
        BigQueryEventSink, BigQueryEventSinkConfig,
    };
    use gma_pipeline::warehouse::bigquery::{BigQueryConfig, BigQueryWarehouse};
    use gma_store::event_sink::EventSink;

    let config = BigQueryConfig::new(
        gma_testkit::emulators::bigquery_project(),
        gma_testkit::emulators::bigquery_dataset("gma_leech"),
    );
    let dir = tempfile::tempdir().unwrap();
    let sink = BigQueryEventSink::connect(BigQueryEventSinkConfig {
        warehouse: config.clone(),
        events_table: "events".into(),
        spool_dir: dir.path().join("spool"),
        blobs: None,
    })
    .await
    .unwrap();
    let gh = FakeGitHub::start().await;
    for run_id in [600, 601] {
        gh.add_workflow_run(
            "acme",
            "widgets",
            run_id,
            1,
            Logs::zip(zip_for(run_id as i64)),
        );
        sink.land(
            &run_event(&format!("bq-{run_id}"), "acme/widgets", run_id as i64, 1, 1),
            None,
        )
        .await
        .unwrap();
    }
    gh.add_workflow_run("acme", "widgets", 602, 1, Logs::Status(500));
    sink.land(&run_event("bq-602", "acme/widgets", 602, 1, 1), None)
        .await
        .unwrap();
    let warehouse: Arc<dyn Warehouse> = Arc::new(BigQueryWarehouse::connect(config).unwrap());
    let logs = open_blob_store(&dir.path().join("logs").display().to_string()).unwrap();
    let job = |logs: Arc<dyn BlobStore>| LeechJob {
        github: client(&gh),
        app: github_app(),
        warehouse: warehouse.clone(),
        tables: LeechTables::default(),
        logs,
        options: LeechOptions {
            retry_backoff: Duration::ZERO,
            ..LeechOptions::default()
        },
    };
    let first = job(logs.clone()).run().await.unwrap();
    assert_eq!((first.archived, first.failed), (2, 1), "{first}");
    gh.add_workflow_run("acme", "widgets", 602, 1, Logs::zip(zip_for(602)));
    let second = job(logs.clone()).run().await.unwrap();
    assert_eq!((second.archived, second.failed), (1, 0), "{second}");
    let third = job(logs).run().await.unwrap();
    assert_eq!(third.archived + third.failed, 0, "{third}");
    let rows = warehouse
        .query(
            "SELECT status, COUNT(*) AS n FROM `${dataset}leech_status` GROUP BY status ORDER BY status",
            &Params::new(),
        )
        .await
        .unwrap();
    assert_eq!(rows.num_rows(), 2);
    let files = warehouse
        .query(
            "SELECT COUNT(*) AS n FROM `${dataset}workflow_logs`",
            &Params::new(),
        )
        .await
        .unwrap();
    let n = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(
        files.batches[0].column(0),
    )
    .value(0);
    assert_eq!(n, 15, "five files in each of three zips");
}
