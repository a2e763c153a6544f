//! The lock against every real store: a local directory, memory, and fake-gcs-server
//! (`STORAGE_EMULATOR_HOST`, started by `.ci/emulators`).
//!
//! Each case is an `async fn(Arc<dyn BlobStore>)`; `per_store!` makes one `#[tokio::test]` per
//! store, named `lock_<case>_<store>`, so `cargo test -p gma-pipeline --lib lock` runs them all.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::blob::fs::LocalBlobStore;
use crate::blob::gcs::{GcsBlobStore, GcsConfig};
use crate::blob::memory::MemoryBlobStore;

/// A store of one kind; the temporary directory lives as long as the store is used.
struct Fixture {
    store: Arc<dyn BlobStore>,
    _dir: Option<tempfile::TempDir>,
}

async fn local() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path().join("blobs")).unwrap();
    Fixture {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

async fn memory() -> Fixture {
    Fixture {
        store: Arc::new(MemoryBlobStore::named("lock-test")),
        _dir: None,
    }
}

/// A fresh bucket on fake-gcs-server, or a failure that says how to start it.
async fn gcs() -> Fixture {
    let host = gma_testkit::emulators::gcs_host();
    let bucket = gma_testkit::emulators::gcs_bucket("gma-lock").await;
    let config = GcsConfig::new(bucket, "locks").with_emulator(&host);
    Fixture {
        store: Arc::new(GcsBlobStore::new(config).unwrap()),
        _dir: None,
    }
}

macro_rules! per_store {
    ($($case:ident),* $(,)?) => {
        mod lock_local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let f = super::local().await;
                super::$case(f.store.clone()).await;
            })*
        }
        mod lock_memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let f = super::memory().await;
                super::$case(f.store.clone()).await;
            })*
        }
        mod lock_gcs {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let f = super::gcs().await;
                super::$case(f.store.clone()).await;
            })*
        }
    };
}

per_store!(
    one_of_eight_concurrent_acquirers_wins,
    second_acquire_is_busy_with_holder_and_expiry,
    expired_lock_is_taken_over,
    one_of_eight_takers_of_an_expired_lock_wins,
    release_removes_the_object,
    release_after_takeover_leaves_the_new_holders_object,
    renewal_keeps_a_short_lock_held,
    overwritten_lock_cancels_lost,
    lock_expired_by_less_than_the_skew_is_busy,
    unreadable_object_expires_at_its_write_time_plus_ttl,
    dropped_lock_is_released_in_the_background,
);

fn key() -> BlobKey {
    BlobKey::new("jobs/retry-lock.json").unwrap()
}

fn options(holder: &str, ttl_ms: u64) -> LockOptions {
    LockOptions::new(Duration::from_millis(ttl_ms))
        .with_clock_skew(Duration::ZERO)
        .with_holder(holder)
}

/// The lock object's record as stored.
async fn stored(store: &Arc<dyn BlobStore>) -> LockRecord {
    let body = store.get(&key()).await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// Writes a lock record as a crashed holder would have left it, expired `ago` before now.
async fn put_expired(store: &Arc<dyn BlobStore>, holder: &str, ago: TimeDelta) -> DateTime<Utc> {
    let expires_at = Utc::now() - ago;
    let record = LockRecord {
        holder: holder.to_owned(),
        acquired_at: expires_at - TimeDelta::minutes(5),
        expires_at,
    };
    store
        .put(&key(), record.to_bytes(), CONTENT_TYPE)
        .await
        .unwrap();
    expires_at
}

fn held(acquired: Acquired) -> HeldLock {
    match acquired {
        Acquired::Held(lock) => lock,
        Acquired::Busy { holder, until } => {
            panic!("expected to hold the lock, but {holder} holds it until {until}")
        }
    }
}

fn busy(acquired: Acquired) -> (String, DateTime<Utc>) {
    match acquired {
        Acquired::Busy { holder, until } => (holder, until),
        Acquired::Held(lock) => panic!("expected Busy, but {} got the lock", lock.holder()),
    }
}

/// Runs `n` acquirers at once; returns the held locks and the busy answers.
async fn race(
    store: &Arc<dyn BlobStore>,
    n: usize,
    ttl_ms: u64,
) -> (Vec<HeldLock>, Vec<(String, DateTime<Utc>)>) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                acquire(store, key(), options(&format!("racer-{i}"), ttl_ms)).await
            })
        })
        .collect();
    let (mut won, mut lost) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Acquired::Held(lock) => won.push(lock),
            Acquired::Busy { holder, until } => lost.push((holder, until)),
        }
    }
    (won, lost)
}

async fn one_of_eight_concurrent_acquirers_wins(store: Arc<dyn BlobStore>) {
    let (won, lost) = race(&store, 8, 60_000).await;
    assert_eq!(won.len(), 1, "exactly one acquirer must win");
    assert_eq!(lost.len(), 7);
    let winner = &won[0];
    for (holder, until) in &lost {
        assert_eq!(holder, winner.holder());
        assert_eq!(*until, stored(&store).await.expires_at);
    }
    assert_eq!(stored(&store).await.holder, winner.holder());
    for lock in won {
        lock.release().await.unwrap();
    }
}

async fn second_acquire_is_busy_with_holder_and_expiry(store: Arc<dyn BlobStore>) {
    let before = Utc::now();
    let first = held(
        acquire(store.clone(), key(), options("first", 60_000))
            .await
            .unwrap(),
    );
    let after = Utc::now();
    assert!(first.expires_at() >= before + TimeDelta::seconds(60));
    assert!(first.expires_at() <= after + TimeDelta::seconds(60));

    let (holder, until) = busy(
        acquire(store.clone(), key(), options("second", 60_000))
            .await
            .unwrap(),
    );
    assert_eq!(holder, "first");
    assert_eq!(until, first.expires_at());

    // The object is the documented JSON, with content type application/json (the local
    // store derives it from the `.json` extension).
    let meta = store.head(&key()).await.unwrap();
    assert_eq!(meta.content_type, "application/json");
    let body: serde_json::Value =
        serde_json::from_slice(&store.get(&key()).await.unwrap()).unwrap();
    assert_eq!(body["holder"], "first");
    for field in ["acquired_at", "expires_at"] {
        let text = body[field].as_str().unwrap();
        DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{field} {text:?}: {e}"));
    }
    first.release().await.unwrap();
}

async fn expired_lock_is_taken_over(store: Arc<dyn BlobStore>) {
    put_expired(&store, "crashed", TimeDelta::seconds(1)).await;
    let lock = held(
        acquire(store.clone(), key(), options("taker", 60_000))
            .await
            .unwrap(),
    );
    let record = stored(&store).await;
    assert_eq!(record.holder, "taker");
    assert_eq!(record.expires_at, lock.expires_at());
    assert!(!lock.lost().is_cancelled());
    lock.release().await.unwrap();
}

async fn one_of_eight_takers_of_an_expired_lock_wins(store: Arc<dyn BlobStore>) {
    put_expired(&store, "crashed", TimeDelta::seconds(1)).await;
    let (won, lost) = race(&store, 8, 60_000).await;
    assert_eq!(won.len(), 1, "exactly one taker must win");
    assert_eq!(lost.len(), 7);
    for (holder, _) in &lost {
        assert_eq!(holder, won[0].holder(), "a loser must report the winner");
    }
    assert_eq!(stored(&store).await.holder, won[0].holder());
    for lock in won {
        lock.release().await.unwrap();
    }
}

async fn release_removes_the_object(store: Arc<dyn BlobStore>) {
    let lock = held(
        acquire(store.clone(), key(), options("a", 60_000))
            .await
            .unwrap(),
    );
    lock.release().await.unwrap();
    assert!(store.head(&key()).await.unwrap_err().is_not_found());
    // And the next acquirer gets it at once.
    let next = held(
        acquire(store.clone(), key(), options("b", 60_000))
            .await
            .unwrap(),
    );
    next.release().await.unwrap();
}

async fn release_after_takeover_leaves_the_new_holders_object(store: Arc<dyn BlobStore>) {
    let old = held(
        acquire(store.clone(), key(), options("old", 60_000))
            .await
            .unwrap(),
    );
    // Someone takes it over (as if the old holder had stalled past its expiry).
    let generation = store.head(&key()).await.unwrap().generation;
    let now = Utc::now();
    let theirs = LockRecord {
        holder: "new".to_owned(),
        acquired_at: now,
        expires_at: now + TimeDelta::minutes(1),
    };
    store
        .replace_if_generation(&key(), theirs.to_bytes(), CONTENT_TYPE, generation)
        .await
        .unwrap();
    old.release().await.unwrap();
    assert_eq!(
        stored(&store).await,
        theirs,
        "the new holder's lock must stay"
    );
}

async fn renewal_keeps_a_short_lock_held(store: Arc<dyn BlobStore>) {
    let lock = held(
        acquire(store.clone(), key(), options("long-run", 1_000))
            .await
            .unwrap(),
    );
    let first_expiry = lock.expires_at();
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    assert!(!lock.lost().is_cancelled(), "renewal must keep the lock");
    assert!(lock.expires_at() > first_expiry + TimeDelta::seconds(2));
    assert!(lock.expires_at() > Utc::now());
    assert_eq!(stored(&store).await.expires_at, lock.expires_at());
    let (holder, _) = busy(
        acquire(store.clone(), key(), options("other", 1_000))
            .await
            .unwrap(),
    );
    assert_eq!(holder, "long-run");
    lock.release().await.unwrap();
    assert!(store.head(&key()).await.unwrap_err().is_not_found());
}

async fn overwritten_lock_cancels_lost(store: Arc<dyn BlobStore>) {
    let lock = held(
        acquire(store.clone(), key(), options("victim", 300))
            .await
            .unwrap(),
    );
    let lost = lock.lost();
    assert!(!lost.is_cancelled());
    let now = Utc::now();
    let theirs = LockRecord {
        holder: "intruder".to_owned(),
        acquired_at: now,
        expires_at: now + TimeDelta::minutes(1),
    };
    store
        .put(&key(), theirs.to_bytes(), CONTENT_TYPE)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(2), lost.cancelled())
        .await
        .expect("lost() must fire within one renewal interval");
    lock.release().await.unwrap();
    assert_eq!(stored(&store).await, theirs);
}

async fn lock_expired_by_less_than_the_skew_is_busy(store: Arc<dyn BlobStore>) {
    let expired_at = put_expired(&store, "slow-clock", TimeDelta::seconds(2)).await;
    let skewed = |holder: &str, skew_secs| {
        options(holder, 60_000).with_clock_skew(Duration::from_secs(skew_secs))
    };
    let (holder, until) = busy(
        acquire(store.clone(), key(), skewed("taker", 10))
            .await
            .unwrap(),
    );
    assert_eq!(holder, "slow-clock");
    assert_eq!(until, expired_at);
    // Past the skew as well: taken over.
    let lock = held(
        acquire(store.clone(), key(), skewed("taker", 1))
            .await
            .unwrap(),
    );
    assert_eq!(stored(&store).await.holder, "taker");
    lock.release().await.unwrap();
}

async fn unreadable_object_expires_at_its_write_time_plus_ttl(store: Arc<dyn BlobStore>) {
    // GMA's lock object has no body (its expiry is in metadata gma does not read).
    store.put(&key(), Bytes::new(), CONTENT_TYPE).await.unwrap();
    let updated = store.head(&key()).await.unwrap().updated;
    let (holder, until) = busy(
        acquire(store.clone(), key(), options("gma", 60_000))
            .await
            .unwrap(),
    );
    assert!(holder.starts_with("unknown"), "{holder}");
    assert_eq!(until, updated + TimeDelta::seconds(60));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let lock = held(
        acquire(store.clone(), key(), options("gma", 200))
            .await
            .unwrap(),
    );
    assert_eq!(stored(&store).await.holder, "gma");
    lock.release().await.unwrap();
}

async fn dropped_lock_is_released_in_the_background(store: Arc<dyn BlobStore>) {
    let lock = held(
        acquire(store.clone(), key(), options("dropper", 60_000))
            .await
            .unwrap(),
    );
    drop(lock);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while store.head(&key()).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dropped lock was not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn options_below_the_minimum_ttl_are_refused() {
    let error = options("x", 10).checked().unwrap_err();
    assert!(
        error.to_string().contains("shorter than the minimum"),
        "{error}"
    );
    assert!(
        LockOptions::new(DEFAULT_TTL)
            .with_holder(" ")
            .checked()
            .is_err()
    );
}

#[test]
fn default_holders_name_the_host_and_process_and_differ() {
    let (a, b) = (default_holder(), default_holder());
    assert_ne!(a, b);
    assert!(a.contains(&format!(":{}:", std::process::id())), "{a}");
}
