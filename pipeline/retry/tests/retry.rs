//! `gma retry` against a fake GitHub API over HTTP on loopback, with the real local warehouse
//! (DataFusion over Parquet), the real event store, and a real blob-store lock.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use gma_pipeline::blob::{BlobKey, BlobStore, open_blob_store};
use gma_pipeline::github::{GitHubClient, GitHubConfig, HookRef, Secret};
use gma_pipeline::lock::LockOptions;
use gma_pipeline::testing::{LocalSite, fake_github_client, github_app};
use gma_pipeline::warehouse::{
    BatchStream, Params, QueryResult, TableDef, Warehouse, WarehouseError,
};
use gma_retry::job::RetryLock;
use gma_retry::{RecoveryMode, RetryError, RetryJob, RetryOptions, RetryOutcome, RetryTables};
use gma_store::event::Event;
use gma_store::event_sink::EventSink;
use gma_store::testing::EventBuilder;
use gma_testkit::github::{self as fake, FakeGitHub, Fault, NewDelivery, Route};
use serde_json::json;

/// An event as ingest stores it, for pre-landing.
fn event(guid: &str) -> Event {
    let payload = format!(r#"{{"action":"opened","number":1,"guid":"{guid}"}}"#);
    EventBuilder::new(guid, payload)
        .event("issues")
        .hook_id(FakeGitHub::APP_HOOK_ID)
        .received_now()
        .build()
}

/// A warehouse that counts the queries naming the events table, around the real one.
struct Counting {
    inner: Arc<dyn Warehouse>,
    events_queries: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl Warehouse for Counting {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn query(&self, sql: &str, params: &Params) -> Result<QueryResult, WarehouseError> {
        if sql.contains("events`") && sql.contains("guids") {
            self.events_queries
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.query(sql, params).await
    }
    async fn query_stream(
        &self,
        sql: &str,
        params: &Params,
    ) -> Result<BatchStream, WarehouseError> {
        self.inner.query_stream(sql, params).await
    }
    async fn ensure_table(&self, table: &TableDef) -> Result<(), WarehouseError> {
        self.inner.ensure_table(table).await
    }
    async fn append(
        &self,
        table: &TableDef,
        batch: arrow::array::RecordBatch,
    ) -> Result<(), WarehouseError> {
        self.inner.append(table, batch).await
    }
}

/// A data directory with its store open: the warehouse reads it (counting its queries of
/// `events`), fetch mode lands in it; and a lock folder.
struct Site {
    local: LocalSite,
    warehouse: Arc<Counting>,
    locks: Arc<dyn BlobStore>,
}

impl Site {
    async fn new() -> Self {
        let local = LocalSite::new().await;
        let locks = open_blob_store(&local.dir.path().join("locks").display().to_string()).unwrap();
        Self {
            warehouse: Arc::new(Counting {
                inner: local.warehouse.clone(),
                events_queries: 0.into(),
            }),
            locks,
            local,
        }
    }

    fn job(&self, gh: &FakeGitHub, mode: RecoveryMode) -> RetryJob {
        RetryJob {
            github: fake_github_client(gh),
            app: Some(github_app()),
            token: Some(Secret::new(FakeGitHub::PAT)),
            warehouse: self.warehouse.clone(),
            tables: RetryTables::default(),
            lander: Some(self.local.store.clone() as Arc<dyn EventSink>),
            lock: Some(RetryLock {
                store: self.locks.clone(),
                key: BlobKey::new("retry-lock").unwrap(),
                options: LockOptions::new(Duration::from_secs(5)),
            }),
            options: RetryOptions {
                per_page: 20,
                mode,
                ..RetryOptions::default()
            },
        }
    }

    async fn stored_guids(&self) -> BTreeSet<String> {
        let result = self
            .warehouse
            .query("SELECT delivery_id FROM events", &Params::new())
            .await
            .unwrap();
        let mut out = BTreeSet::new();
        for batch in &result.batches {
            let column = arrow::array::AsArray::as_string::<i32>(batch.column(0));
            out.extend(column.iter().flatten().map(str::to_owned));
        }
        out
    }

    /// Brings the data directory's typed event tables up to date.
    async fn refresh_typed_tables(&self) {
        let warehouse: Arc<dyn Warehouse> = self.local.warehouse.clone();
        gma_refresh::refresh(
            warehouse,
            &gma_pipeline::views::ViewSettings::default(),
            &gma_refresh::RefreshOptions::default(),
        )
        .await
        .unwrap();
    }

    async fn count(&self, sql: &str) -> i64 {
        let result = self.warehouse.query(sql, &Params::new()).await.unwrap();
        let batch = &result.batches[0];
        arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(batch.column(0)).value(0)
    }
}

fn done(outcome: RetryOutcome) -> gma_retry::RetrySummary {
    match outcome {
        RetryOutcome::Done(summary) => summary,
        RetryOutcome::Busy { holder, until } => panic!("busy: {holder} until {until}"),
    }
}

fn payload(guid: &str) -> serde_json::Value {
    json!({"action": "opened", "guid": guid, "repository": {"full_name": "acme/widgets", "id": 9}})
}

/// The backlog of the issue: over several pages, successes, failures, a failure redelivered
/// successfully later, and failures already in `events`. Returns the GUIDs that need recovery
/// with the attempt id that should be recovered.
struct Backlog {
    expected: BTreeSet<String>,
    recover_ids: Vec<i64>,
    prelanded: Vec<String>,
}

fn backlog(gh: &FakeGitHub) -> Backlog {
    let old = Utc::now() - chrono::Duration::hours(30);
    let mut expected = BTreeSet::new();
    let mut recover_ids = Vec::new();
    let mut prelanded = Vec::new();
    for i in 0..90 {
        let at = old + chrono::Duration::minutes(i);
        let guid = format!("g-{i:03}");
        let delivery = |status: u16, redelivery: bool| NewDelivery {
            delivered_at: at,
            redelivery,
            payload: payload(&guid),
            action: Some("opened".into()),
            ..NewDelivery::new(&guid, "issues", status)
        };
        match i % 6 {
            // Failed and never recovered: must be recovered.
            0 => {
                recover_ids.push(gh.add_delivery(fake::HookRef::App, delivery(502, false)));
                expected.insert(guid);
            }
            // Timed out twice (status 0), never recovered: recover the newest attempt.
            1 => {
                gh.add_delivery(fake::HookRef::App, delivery(0, false));
                recover_ids.push(gh.add_delivery(fake::HookRef::App, delivery(0, true)));
                expected.insert(guid);
            }
            // Failed, then redelivered successfully by someone: nothing to do.
            2 => {
                gh.add_delivery(fake::HookRef::App, delivery(500, false));
                gh.add_delivery(fake::HookRef::App, delivery(200, true));
            }
            // Failed at GitHub's end but landed anyway: nothing to do.
            3 => {
                gh.add_delivery(fake::HookRef::App, delivery(504, false));
                prelanded.push(guid);
            }
            // Plain successes.
            _ => {
                gh.add_delivery(fake::HookRef::App, delivery(200, false));
            }
        }
    }
    Backlog {
        expected,
        recover_ids,
        prelanded,
    }
}

async fn prelanded(site: &Site, backlog: &Backlog) {
    for guid in &backlog.prelanded {
        site.local.store.append(&event(guid)).await.unwrap();
    }
}

#[tokio::test]
async fn redeliver_recovers_exactly_the_failed_events_once_and_a_second_run_only_reads_the_first_page()
 {
    let gh = FakeGitHub::start().await;
    let site = Site::new().await;
    let backlog = backlog(&gh);
    prelanded(&site, &backlog).await;

    let summary = done(site.job(&gh, RecoveryMode::Redeliver).run().await.unwrap());
    assert_eq!(
        summary.recovered as usize,
        backlog.expected.len(),
        "{summary}"
    );
    assert_eq!(summary.already_landed as usize, backlog.prelanded.len());
    assert_eq!(
        summary.failed_events as usize,
        backlog.expected.len() + backlog.prelanded.len()
    );
    assert_eq!(summary.deliveries_scanned, 120);
    for id in &backlog.recover_ids {
        assert_eq!(
            gh.redelivery_requests(*id),
            1,
            "attempt {id} redelivered once"
        );
    }
    assert_eq!(gh.redelivery_requests_total(), backlog.expected.len());
    assert_eq!(summary.events_queries, 1);
    assert_eq!(
        site.warehouse
            .events_queries
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "ONE query of the events table per run"
    );
    let pages = gh.calls(Route::ListDeliveries);
    assert_eq!(pages, 6, "120 deliveries at 20 a page");
    assert_eq!(
        summary.github_requests as usize,
        pages + backlog.expected.len(),
        "GitHub calls are pages + recoveries"
    );
    let newest = gh.deliveries(&fake::HookRef::App).last().unwrap().id;
    assert_eq!(
        summary.hooks[0].checkpoint_after,
        Some(newest - backlog.expected.len() as i64)
    );
    assert!(summary.oldest_unrecovered.is_none());
    assert_eq!(
        site.count("SELECT COUNT(*) FROM checkpoint").await,
        1,
        "one checkpoint row per run"
    );

    // The 30 redeliveries the fake appended succeeded; a second run finds nothing to do and
    // stops on the first page, at the checkpoint.
    let before = gh.calls(Route::ListDeliveries);
    let mut job = site.job(&gh, RecoveryMode::Redeliver);
    job.options.per_page = 100;
    let second = done(job.run().await.unwrap());
    assert_eq!(second.deliveries_scanned, 30);
    assert_eq!(gh.calls(Route::ListDeliveries) - before, 1, "{second}");
    assert_eq!(second.recovered, 0);
    assert_eq!(second.failed_events, 0);
    assert_eq!(gh.redelivery_requests_total(), backlog.expected.len());
    assert_eq!(second.events_queries, 0, "no failure, no query");
    assert!(
        site.locks.list("").await.unwrap().is_empty(),
        "the lock is released"
    );
}

#[tokio::test]
async fn fetch_lands_exactly_the_failed_events_with_their_payloads() {
    let gh = FakeGitHub::start().await;
    let site = Site::new().await;
    let backlog = backlog(&gh);
    prelanded(&site, &backlog).await;
    // The typed tables are current before the recovery.
    site.refresh_typed_tables().await;

    let summary = done(site.job(&gh, RecoveryMode::Fetch).run().await.unwrap());
    assert_eq!(
        summary.recovered as usize,
        backlog.expected.len(),
        "{summary}"
    );
    assert_eq!(
        gh.redelivery_requests_total(),
        0,
        "fetch asks GitHub for nothing new"
    );
    assert_eq!(gh.calls(Route::GetDelivery), backlog.expected.len());
    let mut want: BTreeSet<String> = backlog.expected.clone();
    want.extend(backlog.prelanded.iter().cloned());
    assert_eq!(site.stored_guids().await, want);

    // The payload landed is GitHub's, with the columns ingest lifts.
    let result = site
        .warehouse
        .query(
            "SELECT payload, repository, action, event FROM events WHERE delivery_id = 'g-000'",
            &Params::new(),
        )
        .await
        .unwrap();
    let batch = &result.batches[0];
    let text = |i: usize| {
        arrow::array::AsArray::as_string::<i32>(batch.column(i))
            .value(0)
            .to_owned()
    };
    let stored: serde_json::Value = serde_json::from_str(&text(0)).unwrap();
    assert_eq!(stored, payload("g-000"));
    assert_eq!(text(1), "acme/widgets");
    assert_eq!(text(2), "opened");
    assert_eq!(text(3), "issues");

    // Nothing is stored twice by a second run.
    let second = done(site.job(&gh, RecoveryMode::Fetch).run().await.unwrap());
    assert_eq!(second.recovered, 0, "{second}");
    assert_eq!(
        site.count("SELECT COUNT(*) FROM events").await as usize,
        want.len()
    );

    // The recovered events reach the typed table of their type with the next refresh, once.
    site.refresh_typed_tables().await;
    assert_eq!(
        site.count("SELECT COUNT(DISTINCT delivery_id) FROM issue_events")
            .await as usize,
        want.len()
    );
    assert_eq!(
        site.count("SELECT COUNT(*) FROM issue_events").await as usize,
        want.len()
    );
}

#[tokio::test]
async fn a_run_that_dies_midway_leaves_the_rest_to_the_next_run_and_none_twice() {
    let gh = FakeGitHub::start().await;
    let site = Site::new().await;
    let backlog = backlog(&gh);
    prelanded(&site, &backlog).await;
    // GitHub breaks after 6 redeliveries, for good.
    gh.inject(
        Route::Redeliver,
        Fault::After {
            ok_calls: 6,
            then: Box::new(Fault::Always { code: 502 }),
        },
    );
    let mut job = site.job(&gh, RecoveryMode::Redeliver);
    job.options.concurrency = 1;
    let error = job.run().await.unwrap_err();
    assert!(
        matches!(error, RetryError::Unavailable { recovered: 6, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("next run"), "{error}");
    let checkpoint = site
        .count("SELECT MAX(CAST(delivery_id AS INT64)) FROM checkpoint")
        .await;
    // Oldest first: the checkpoint sits just below the 7th failed event's first attempt.
    let seventh_group_oldest = gh
        .deliveries(&fake::HookRef::App)
        .iter()
        .filter(|d| d.guid == *backlog.expected.iter().nth(6).unwrap())
        .map(|d| d.id)
        .min()
        .unwrap();
    assert_eq!(checkpoint, seventh_group_oldest - 1);
    assert!(
        site.locks.list("").await.unwrap().is_empty(),
        "released on error too"
    );

    gh.clear_faults();
    let summary = done(site.job(&gh, RecoveryMode::Redeliver).run().await.unwrap());
    assert_eq!(
        summary.recovered as usize,
        backlog.expected.len() - 6,
        "{summary}"
    );
    for id in &backlog.recover_ids {
        assert_eq!(
            gh.redelivery_requests(*id),
            1,
            "attempt {id} redelivered exactly once"
        );
    }
}

#[tokio::test]
async fn the_lock_lets_one_run_work_and_is_taken_over_once_expired() {
    let gh = FakeGitHub::start().await;
    let site = Site::new().await;
    backlog(&gh);
    // Slow GitHub down so the two runs overlap.
    gh.inject(
        Route::ListDeliveries,
        Fault::RateLimited {
            status: 429,
            retry_after_secs: 1,
            times: 1,
        },
    );
    let (a, b) = tokio::join!(
        site.job(&gh, RecoveryMode::Redeliver).run(),
        site.job(&gh, RecoveryMode::Redeliver).run()
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    let busy = outcomes
        .iter()
        .filter(|o| matches!(o, RetryOutcome::Busy { .. }))
        .count();
    assert_eq!(busy, 1, "exactly one run works: {outcomes:?}");
    assert!(site.locks.list("").await.unwrap().is_empty());

    // A crashed holder's expired lock is taken over.
    let key = BlobKey::new("retry-lock").unwrap();
    let stale = json!({"holder": "crashed:1:dead", "acquired_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-01T00:05:00Z"});
    site.locks
        .put(&key, Bytes::from(stale.to_string()), "application/json")
        .await
        .unwrap();
    let outcome = site.job(&gh, RecoveryMode::Redeliver).run().await.unwrap();
    assert!(matches!(outcome, RetryOutcome::Done(_)), "{outcome:?}");
    assert!(site.locks.list("").await.unwrap().is_empty());

    // A live one is respected.
    let until = Utc::now() + chrono::Duration::minutes(3);
    let live = json!({"holder": "other:2:beef", "acquired_at": Utc::now().to_rfc3339(),
        "expires_at": until.to_rfc3339()});
    site.locks
        .put(&key, Bytes::from(live.to_string()), "application/json")
        .await
        .unwrap();
    match site.job(&gh, RecoveryMode::Redeliver).run().await.unwrap() {
        RetryOutcome::Busy { holder, .. } => assert_eq!(holder, "other:2:beef"),
        other => panic!("expected busy, got {other:?}"),
    }
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_waited_out_and_a_dead_github_fails_the_run() {
    let gh = FakeGitHub::start().await;
    let site = Site::new().await;
    let backlog = backlog(&gh);
    gh.inject(
        Route::ListDeliveries,
        Fault::Status {
            code: 502,
            times: 2,
        },
    );
    gh.inject(
        Route::Redeliver,
        Fault::RateLimited {
            status: 403,
            retry_after_secs: 1,
            times: 1,
        },
    );
    let started = std::time::Instant::now();
    let summary = done(site.job(&gh, RecoveryMode::Redeliver).run().await.unwrap());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(
        summary.recovered as usize,
        backlog.expected.len() + backlog.prelanded.len()
    );

    // Now GitHub is down for good: the run fails, says so, and the checkpoint stays.
    let newer = gh.add_delivery(fake::HookRef::App, NewDelivery::new("late", "push", 500));
    gh.inject(Route::ListDeliveries, Fault::Always { code: 503 });
    let error = site
        .job(&gh, RecoveryMode::Redeliver)
        .run()
        .await
        .unwrap_err();
    let text = gma_pipeline::error::error_chain(&error);
    assert!(text.contains("503") && text.contains("hook app"), "{text}");
    let checkpoint = site
        .count("SELECT MAX(CAST(delivery_id AS INT64)) FROM checkpoint")
        .await;
    assert!(
        checkpoint < newer,
        "the checkpoint did not pass the unseen delivery"
    );
}

#[tokio::test]
async fn poison_events_are_given_up_after_the_limit_and_recorded() {
    let gh = FakeGitHub::start().await;
    let site = Site::new().await;
    // Every redelivery fails at the receiver.
    gh.set_redelivery_outcome(500);
    let id = gh.add_delivery(
        fake::HookRef::App,
        NewDelivery {
            delivered_at: Utc::now() - chrono::Duration::hours(1),
            ..NewDelivery::new("poison", "push", 500)
        },
    );
    let run = |limit| {
        let mut job = site.job(&gh, RecoveryMode::Redeliver);
        job.options.give_up_after = limit;
        job.run()
    };
    // Run 1 redelivers; runs 2 and 3 see the failed redelivery, record it, redeliver again
    // until the limit of 3 failed recoveries is reached in run 4.
    for expected_requests in 1..=3 {
        let summary = done(run(3).await.unwrap());
        assert_eq!(summary.recovered, 1, "{summary}");
        assert_eq!(gh.redelivery_requests_total(), expected_requests);
    }
    let summary = done(run(3).await.unwrap());
    assert_eq!((summary.recovered, summary.given_up), (0, 1), "{summary}");
    assert_eq!(gh.redelivery_requests_total(), 3);
    assert_eq!(gh.redelivery_requests(id), 1);
    assert_eq!(
        site.count("SELECT COUNT(*) FROM failure_events WHERE delivery_id = 'poison' AND given_up")
            .await,
        1
    );
    assert_eq!(
        site.count(
            "SELECT COUNT(*) FROM failure_events WHERE delivery_id = 'poison' AND NOT given_up"
        )
        .await,
        2,
        "runs 2 and 3 each recorded the failed redelivery they saw; run 4 gave up"
    );
    // Given up: never redelivered again, and no longer holding the checkpoint back.
    let after = done(run(3).await.unwrap());
    assert_eq!(after.given_up_before + after.given_up, 0, "{after}");
    assert_eq!(gh.redelivery_requests_total(), 3);
}

#[tokio::test]
async fn a_dry_run_lists_what_it_would_recover_and_changes_nothing() {
    let gh = FakeGitHub::start().await;
    let site = Site::new().await;
    let backlog = backlog(&gh);
    prelanded(&site, &backlog).await;
    let mut job = site.job(&gh, RecoveryMode::Redeliver);
    job.options.dry_run = true;
    let summary = done(job.run().await.unwrap());
    let planned: BTreeSet<String> = summary.planned.iter().map(|p| p.guid.clone()).collect();
    assert_eq!(planned, backlog.expected);
    assert!(
        summary.to_string().contains("would recover g-000"),
        "{summary}"
    );
    assert_eq!(gh.redelivery_requests_total(), 0);
    assert_eq!(site.count("SELECT COUNT(*) FROM checkpoint").await, 0);
    assert_eq!(summary.hooks[0].checkpoint_after, None);
}

#[tokio::test]
async fn a_spent_time_budget_stops_recovery_and_the_next_run_continues() {
    let gh = FakeGitHub::start().await;
    let site = Site::new().await;
    let backlog = backlog(&gh);
    let mut job = site.job(&gh, RecoveryMode::Redeliver);
    // 600 mutations a minute: one every 100 ms, so a 1 s budget covers about ten.
    let mut config = GitHubConfig::new(gh.url());
    config.mutations_per_minute = 600;
    job.github = GitHubClient::new(config).unwrap();
    job.options.max_duration = Some(Duration::from_secs(1));
    let first = done(job.run().await.unwrap());
    assert!(first.recovered > 0 && first.not_attempted > 0, "{first}");
    assert!(
        first
            .stopped
            .as_deref()
            .unwrap_or("")
            .contains("time budget"),
        "{first}"
    );
    let second = done(site.job(&gh, RecoveryMode::Redeliver).run().await.unwrap());
    let total = backlog.expected.len() + backlog.prelanded.len();
    assert_eq!(
        (first.recovered + second.recovered) as usize,
        total,
        "{second}"
    );
    for id in &backlog.recover_ids {
        assert_eq!(gh.redelivery_requests(*id), 1);
    }
}

#[tokio::test]
async fn repository_and_organization_hooks_are_listed_with_a_token() {
    let gh = FakeGitHub::start().await;
    let site = Site::new().await;
    let repo = fake::HookRef::repo("acme", "widgets", 11);
    let org = fake::HookRef::org("acme", 12);
    let r = gh.add_delivery(repo.clone(), NewDelivery::new("repo-fail", "push", 500));
    gh.add_delivery(repo, NewDelivery::new("repo-ok", "push", 200));
    let o = gh.add_delivery(org, NewDelivery::new("org-fail", "member", 0));
    let mut job = site.job(&gh, RecoveryMode::Redeliver);
    job.options.hooks = vec![
        HookRef::App,
        "repos/acme/widgets/hooks/11".parse().unwrap(),
        "orgs/acme/hooks/12".parse().unwrap(),
    ];
    let summary = done(job.run().await.unwrap());
    assert_eq!(summary.recovered, 2, "{summary}");
    assert_eq!(
        (gh.redelivery_requests(r), gh.redelivery_requests(o)),
        (1, 1)
    );
    let hooks: HashSet<&str> = summary
        .hooks
        .iter()
        .filter(|h| h.checkpoint_after.is_some())
        .map(|h| h.hook.as_str())
        .collect();
    assert_eq!(
        hooks.len(),
        2,
        "app has no deliveries; the two hooks moved: {summary}"
    );
    let rows = site
        .count("SELECT COUNT(DISTINCT hook) FROM checkpoint")
        .await;
    assert_eq!(rows, 2);

    // Without a token the run refuses to start, saying what to set.
    let mut job = site.job(&gh, RecoveryMode::Redeliver);
    job.token = None;
    job.options.hooks = vec!["orgs/acme/hooks/12".parse().unwrap()];
    let error = job.run().await.unwrap_err().to_string();
    assert!(error.contains("GITHUB_TOKEN"), "{error}");
}
