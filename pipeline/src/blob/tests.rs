//! The blob store conformance suite, run against every store: a local directory, memory, and
//! fake-gcs-server (`STORAGE_EMULATOR_HOST`, started by `.ci/emulators`).
//!
//! Each case is an `async fn(&Fixture)`; `conformance!` makes one `#[tokio::test]` per store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use super::fs::LocalBlobStore;
use super::gcs::{GcsBlobStore, GcsConfig};
use super::memory::MemoryBlobStore;
use super::*;

const MIB: usize = 1024 * 1024;

/// Which store a fixture holds, for the few checks that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Local,
    Memory,
    Gcs,
}

/// A fresh, empty store of one kind.
struct Fixture {
    kind: Kind,
    store: Arc<dyn BlobStore>,
    local: Option<LocalBlobStore>,
    gcs: Option<Arc<GcsBlobStore>>,
    _dir: Option<tempfile::TempDir>,
}

fn key(k: &str) -> BlobKey {
    BlobKey::new(k).unwrap()
}

impl Fixture {
    async fn new(kind: Kind) -> Self {
        match kind {
            Kind::Local => {
                let dir = tempfile::tempdir().unwrap();
                let local = LocalBlobStore::open(dir.path().join("blobs")).unwrap();
                Self {
                    kind,
                    store: Arc::new(local.clone()),
                    local: Some(local),
                    gcs: None,
                    _dir: Some(dir),
                }
            }
            Kind::Memory => Self {
                kind,
                store: Arc::new(MemoryBlobStore::named("test")),
                local: None,
                gcs: None,
                _dir: None,
            },
            Kind::Gcs => {
                let host = gma_testkit::emulators::gcs_host();
                let bucket = gma_testkit::emulators::gcs_bucket("gma-blob").await;
                let mut config = GcsConfig::new(bucket, "pre/fix").with_emulator(&host);
                // Small pages and chunks so tests cross page and chunk boundaries.
                config.list_page_size = 7;
                config.upload_chunk_bytes = 4 * MIB;
                let gcs = Arc::new(GcsBlobStore::new(config).unwrap());
                Self {
                    kind,
                    store: gcs.clone(),
                    local: None,
                    gcs: Some(gcs),
                    _dir: None,
                }
            }
        }
    }
}

/// Deterministic pseudo-random bytes: chunk `i` of a generated object.
fn generated_chunk(i: u64, len: usize) -> Bytes {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

async fn sha_of_stream(store: &dyn BlobStore, k: &BlobKey) -> ([u8; 32], u64) {
    let mut stream = store.get_stream(k).await.unwrap();
    let mut hash = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = stream.try_next().await.unwrap() {
        n += chunk.len() as u64;
        hash.update(&chunk);
    }
    (hash.finalize().into(), n)
}

// ---- the cases ----------------------------------------------------------------------------

async fn round_trip(f: &Fixture) {
    let s = &*f.store;
    let k = key("payloads/2026/11/28/delivery-1.json");
    let data = Bytes::from_static(br#"{"hello":"world"}"#);
    let meta = s.put(&k, data.clone(), "application/json").await.unwrap();
    assert_eq!(meta.key, k.as_str());
    assert_eq!(meta.size, data.len() as u64);
    assert!(meta.generation > 0);
    assert_eq!(s.get(&k).await.unwrap(), data);
    let streamed: Vec<Bytes> = s.get_stream(&k).await.unwrap().try_collect().await.unwrap();
    assert_eq!(streamed.concat(), data.to_vec());
    let head = s.head(&k).await.unwrap();
    assert_eq!(head, meta);
    assert_eq!(head.content_type, "application/json");
    assert!((Utc::now() - head.updated).num_seconds().abs() < 120);
    let uri = s.uri(&k);
    match f.kind {
        Kind::Local => {
            let path = f.local.as_ref().unwrap().path(&k);
            assert_eq!(uri, url::Url::from_file_path(&path).unwrap().as_str());
            assert_eq!(std::fs::read(path).unwrap(), data.to_vec());
        }
        Kind::Memory => assert_eq!(uri, "memory://test/payloads/2026/11/28/delivery-1.json"),
        Kind::Gcs => {
            let bucket = &f.gcs.as_ref().unwrap().config().bucket;
            assert_eq!(
                uri,
                format!("gs://{bucket}/pre/fix/payloads/2026/11/28/delivery-1.json")
            );
        }
    }
    // Overwriting gives a new generation and the new content.
    let again = s
        .put(&k, Bytes::from_static(b"{}"), "application/json")
        .await
        .unwrap();
    assert_ne!(again.generation, meta.generation);
    assert_eq!(s.get(&k).await.unwrap(), Bytes::from_static(b"{}"));
    // An empty object is an object.
    let empty = key("empty.bin");
    s.put(&empty, Bytes::new(), DEFAULT_CONTENT_TYPE)
        .await
        .unwrap();
    assert_eq!(s.head(&empty).await.unwrap().size, 0);
    assert!(s.get(&empty).await.unwrap().is_empty());
}

/// 40 MiB streamed from a generator in 1 MiB pieces: the content arrives intact, and the store
/// never holds much more than one upload chunk.
async fn streaming_upload_is_bounded(f: &Fixture) {
    let s = &*f.store;
    let k = key("leech/octo/repo/42/1/logs.zip");
    let total_chunks = 40u64;
    let pulled = Arc::new(AtomicU64::new(0));
    // The local store writes each piece to its temporary file as it comes: when piece `i` is
    // pulled, at least the pieces before the previous one are on disk.
    let temp_dir = f.local.as_ref().map(|l| l.temp_dir().to_owned());
    let lagging = Arc::new(AtomicU64::new(0));
    let (pulled2, lagging2) = (pulled.clone(), lagging.clone());
    let source = futures::stream::iter(0..total_chunks)
        .map(move |i| {
            if let Some(dir) = &temp_dir {
                let on_disk: u64 = std::fs::read_dir(dir)
                    .unwrap()
                    .flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
                    .map(|e| e.metadata().unwrap().len())
                    .sum();
                if on_disk + 2 * (MIB as u64) < pulled2.load(Ordering::SeqCst) {
                    lagging2.fetch_add(1, Ordering::SeqCst);
                }
            }
            pulled2.fetch_add(MIB as u64, Ordering::SeqCst);
            Ok(generated_chunk(i, MIB))
        })
        .boxed();
    let mut expected = Sha256::new();
    for i in 0..total_chunks {
        expected.update(generated_chunk(i, MIB));
    }
    let expected: [u8; 32] = expected.finalize().into();

    let meta = s.put_stream(&k, source, "application/zip").await.unwrap();
    assert_eq!(meta.size, total_chunks * MIB as u64);
    assert_eq!(pulled.load(Ordering::SeqCst), total_chunks * MIB as u64);
    let head = s.head(&k).await.unwrap();
    assert_eq!(head.size, meta.size);
    assert_eq!(head.generation, meta.generation);
    assert_eq!(head.content_type, "application/zip");
    assert_eq!(sha_of_stream(s, &k).await, (expected, meta.size));
    match f.kind {
        Kind::Local => {
            assert_eq!(
                lagging.load(Ordering::SeqCst),
                0,
                "the upload was buffered, not streamed"
            );
            let leftovers: Vec<_> = std::fs::read_dir(f.local.as_ref().unwrap().temp_dir())
                .unwrap()
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
                .collect();
            assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
        }
        Kind::Gcs => {
            let gcs = f.gcs.as_ref().unwrap();
            let peak = gcs.peak_upload_buffer_bytes();
            let bound = (gcs.config().upload_chunk_bytes + MIB) as u64;
            assert!(
                peak > 0 && peak <= bound,
                "peak buffer {peak} > bound {bound}"
            );
        }
        Kind::Memory => {}
    }
}

/// A source that fails midway leaves nothing under the key (and keeps an older object intact).
async fn failed_upload_leaves_no_object(f: &Fixture) {
    let s = &*f.store;
    let failing = || {
        futures::stream::iter(0..10u64)
            .map(|i| {
                if i == 6 {
                    Err(std::io::Error::other("connection to GitHub reset"))
                } else {
                    Ok(generated_chunk(i, MIB))
                }
            })
            .boxed()
    };
    let k = key("leech/octo/repo/43/1/logs.zip");
    let err = s
        .put_stream(&k, failing(), "application/zip")
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Source { .. }), "{err:?}");
    assert!(
        crate::error::error_chain(&err).contains("connection to GitHub reset"),
        "{err:?}"
    );
    assert!(s.head(&k).await.unwrap_err().is_not_found());
    assert!(s.list("leech/").await.unwrap().is_empty());

    let old = s
        .put(&k, Bytes::from_static(b"old"), "application/zip")
        .await
        .unwrap();
    s.put_stream(&k, failing(), "application/zip")
        .await
        .unwrap_err();
    assert_eq!(s.get(&k).await.unwrap(), Bytes::from_static(b"old"));
    assert_eq!(s.head(&k).await.unwrap().generation, old.generation);
    if let Some(local) = &f.local {
        let parts = std::fs::read_dir(local.temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
            .count();
        assert_eq!(parts, 0, "a failed upload left its temporary file");
    }
}

/// 20 concurrent creators of one key: exactly one wins, and its content is what is stored.
async fn create_if_absent_race(f: &Fixture) {
    let k = key("locks/retry.lock");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = f.store.clone();
            let k = k.clone();
            tokio::spawn(async move {
                let body = Bytes::from(format!("owner-{i}"));
                (
                    i,
                    store
                        .create_if_absent(&k, body, "text/plain")
                        .await
                        .unwrap(),
                )
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (i, outcome) = t.await.unwrap();
        if outcome.created() {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let stored = f.store.get(&k).await.unwrap();
    assert_eq!(stored, Bytes::from(format!("owner-{}", winners[0])));
    // And later creators lose too, without touching the object.
    let generation = f.store.head(&k).await.unwrap().generation;
    let again = f
        .store
        .create_if_absent(&k, Bytes::from_static(b"late"), "text/plain")
        .await
        .unwrap();
    assert_eq!(again, CreateOutcome::AlreadyExists);
    assert_eq!(f.store.head(&k).await.unwrap().generation, generation);
}

/// Lock takeover and release: conditional replace and delete by generation.
async fn conditional_by_generation(f: &Fixture) {
    let s = &*f.store;
    let k = key("locks/take.lock");
    let CreateOutcome::Created(first) = s
        .create_if_absent(&k, Bytes::from_static(b"a"), "text/plain")
        .await
        .unwrap()
    else {
        panic!("the key was free");
    };
    let second = s
        .replace_if_generation(&k, Bytes::from_static(b"b"), "text/plain", first.generation)
        .await
        .unwrap();
    assert_ne!(second.generation, first.generation);
    assert_eq!(s.get(&k).await.unwrap(), Bytes::from_static(b"b"));
    // A stale holder cannot overwrite its successor.
    let stale = s
        .replace_if_generation(&k, Bytes::from_static(b"c"), "text/plain", first.generation)
        .await
        .unwrap_err();
    assert!(
        matches!(stale, BlobError::PreconditionFailed { expected, .. } if expected == first.generation),
        "{stale:?}"
    );
    assert_eq!(s.get(&k).await.unwrap(), Bytes::from_static(b"b"));
    // Nor replace an object that is gone.
    let gone = key("locks/never.lock");
    let err = s
        .replace_if_generation(&gone, Bytes::from_static(b"c"), "text/plain", 12345)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BlobError::PreconditionFailed { .. }),
        "{err:?}"
    );
    assert!(s.head(&gone).await.unwrap_err().is_not_found());

    // fake-gcs-server ignores ifGenerationMatch on DELETE (docs/architecture.md#gcs-emulator),
    // so the refusal of a stale delete is checked on the stores that can enforce it here.
    if f.kind != Kind::Gcs {
        let err = s
            .delete_if_generation(&k, first.generation)
            .await
            .unwrap_err();
        assert!(
            matches!(err, BlobError::PreconditionFailed { .. }),
            "{err:?}"
        );
        assert_eq!(s.get(&k).await.unwrap(), Bytes::from_static(b"b"));
    }
    s.delete_if_generation(&k, second.generation).await.unwrap();
    assert!(s.head(&k).await.unwrap_err().is_not_found());
    let err = s
        .delete_if_generation(&k, second.generation)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    // Released: the next creator wins.
    assert!(
        s.create_if_absent(&k, Bytes::from_static(b"d"), "text/plain")
            .await
            .unwrap()
            .created()
    );
}

/// Listing many objects (several pages on GCS), by prefix, sorted.
async fn list_many(f: &Fixture) {
    let s = &*f.store;
    let mut expected = Vec::new();
    for i in 0..23 {
        let k = key(&format!("many/obj-{i:02}"));
        s.put(&k, Bytes::from(vec![b'x'; i]), "text/plain")
            .await
            .unwrap();
        expected.push(k.as_str().to_owned());
    }
    s.put(&key("many-not/x"), Bytes::from_static(b"x"), "text/plain")
        .await
        .unwrap();
    s.put(
        &key("other/deep/er/y"),
        Bytes::from_static(b"y"),
        "text/plain",
    )
    .await
    .unwrap();

    let listed = s.list("many/").await.unwrap();
    assert_eq!(
        listed.iter().map(|m| m.key.clone()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(listed[5].size, 5);
    for m in &listed {
        assert_eq!(m, &s.head(&key(&m.key)).await.unwrap());
    }
    let partial: Vec<_> = s
        .list("many/obj-1")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(partial.len(), 10, "{partial:?}");
    let with_sibling = s.list("many").await.unwrap();
    assert_eq!(with_sibling.len(), 24);
    let all = s.list("").await.unwrap();
    assert_eq!(all.len(), 25);
    assert_eq!(all.last().unwrap().key, "other/deep/er/y");
    assert!(s.list("nothing/").await.unwrap().is_empty());
    assert!(matches!(
        s.list("../up").await,
        Err(BlobError::InvalidKey { .. })
    ));
}

async fn delete_and_not_found(f: &Fixture) {
    let s = &*f.store;
    let k = key("a/b/c.txt");
    s.put(&k, Bytes::from_static(b"c"), "text/plain")
        .await
        .unwrap();
    s.put(&key("a/keep.txt"), Bytes::from_static(b"k"), "text/plain")
        .await
        .unwrap();
    assert!(s.delete(&k).await.unwrap());
    assert!(!s.delete(&k).await.unwrap());
    let uri = s.uri(&k);
    for err in [
        s.get(&k).await.unwrap_err(),
        s.head(&k).await.unwrap_err(),
        s.get_stream(&k).await.map(|_| ()).unwrap_err(),
    ] {
        assert!(err.is_not_found(), "{err:?}");
        assert!(err.to_string().contains(&uri), "{err} should name {uri}");
    }
    let keys: Vec<_> = s
        .list("a/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, ["a/keep.txt"]);
    if let Some(local) = &f.local {
        assert!(
            !local.root().join("a/b").exists(),
            "empty directories are pruned"
        );
    }
    // A directory (local) or a prefix (GCS) is not an object.
    assert!(s.get(&key("a")).await.unwrap_err().is_not_found());
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod local_dir {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                super::$case(&super::Fixture::new(super::Kind::Local).await).await;
            })*
        }
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                super::$case(&super::Fixture::new(super::Kind::Memory).await).await;
            })*
        }
        mod fake_gcs {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                super::$case(&super::Fixture::new(super::Kind::Gcs).await).await;
            })*
        }
    };
}

conformance!(
    round_trip,
    streaming_upload_is_bounded,
    failed_upload_leaves_no_object,
    create_if_absent_race,
    conditional_by_generation,
    list_many,
    delete_and_not_found,
);

// ---- store-independent and store-specific ---------------------------------------------------

#[test]
fn keys_are_checked() {
    for good in [
        "a",
        "a/b/c.zip",
        "leech/o/r/1/2/logs.zip",
        ".hidden/x",
        "a b/ü",
    ] {
        assert!(BlobKey::new(good).is_ok(), "{good}");
    }
    for (bad, why) in [
        ("", "empty"),
        ("/abs", "leading"),
        ("a//b", "empty segments"),
        ("a/", "empty segments"),
        ("a/../b", "'..'"),
        ("..", "'..'"),
        ("./a", "'.'"),
        ("a\nb", "control"),
        (".gma-tmp/x", "reserved"),
    ] {
        let err = BlobKey::new(bad).unwrap_err();
        assert!(matches!(err, BlobError::InvalidKey { .. }));
        assert!(err.to_string().contains(why), "{bad:?}: {err}");
    }
    assert!(BlobKey::new("x".repeat(1025)).is_err());
    assert!(check_prefix("").is_ok());
    assert!(check_prefix("a/b/").is_ok());
    assert!(check_prefix("a/b").is_ok());
    assert!(check_prefix("/a").is_err());
    assert!(check_prefix("a//").is_err());
}

#[tokio::test]
async fn open_blob_store_reads_locations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let by_path = open_blob_store(path.to_str().unwrap()).unwrap();
    by_path
        .put(&key("x/y"), Bytes::from_static(b"1"), "text/plain")
        .await
        .unwrap();
    assert_eq!(std::fs::read(path.join("x/y")).unwrap(), b"1");
    let file_url = url::Url::from_directory_path(&path).unwrap();
    let by_url = open_blob_store(file_url.as_str()).unwrap();
    assert_eq!(
        by_url.get(&key("x/y")).await.unwrap(),
        Bytes::from_static(b"1")
    );
    assert!(by_url.uri(&key("x/y")).starts_with("file:///"));

    let mem = open_blob_store("memory://").unwrap();
    assert_eq!(mem.uri(&key("k")), "memory:///k");

    let gcs = open_blob_store("gs://my-bucket/some/prefix/").unwrap();
    assert_eq!(gcs.uri(&key("k/v")), "gs://my-bucket/some/prefix/k/v");
    let gcs = open_blob_store("gs://my-bucket").unwrap();
    assert_eq!(gcs.uri(&key("k")), "gs://my-bucket/k");

    for bad in ["s3://bucket", "", "gs://", "gs:///x", "gs://b/../x"] {
        let err = open_blob_store(bad).unwrap_err();
        assert!(
            matches!(err, BlobError::InvalidLocation { .. }),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn gcs_default_endpoint_builds_offline() {
    // Building a client for an https endpoint must not panic over the rustls provider
    // (docs/architecture.md#tls-crypto-provider); building makes no network call.
    let config = GcsConfig {
        auth: gcs::GcsAuth::Anonymous,
        ..GcsConfig::new("bucket", "")
    };
    let store = GcsBlobStore::new(config).unwrap();
    assert_eq!(store.config().endpoint, gcs::DEFAULT_ENDPOINT);
    let bad = GcsConfig {
        upload_chunk_bytes: 1000,
        ..GcsConfig::new("bucket", "")
    };
    assert!(matches!(
        GcsBlobStore::new(bad),
        Err(BlobError::InvalidLocation { .. })
    ));
}

/// Separate store instances on one directory (as separate processes would have) still let
/// exactly one creator win, through the directory lock and `link`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_create_race_across_instances() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("locks/l");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = LocalBlobStore::open(dir.path()).unwrap();
            let k = k.clone();
            tokio::spawn(async move {
                store
                    .create_if_absent(&k, Bytes::from(format!("{i}")), "text/plain")
                    .await
                    .unwrap()
                    .created()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

/// Generations of one key strictly increase, even for writes within one clock tick.
#[tokio::test]
async fn local_generations_increase() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).unwrap();
    let k = key("g");
    let mut last = 0;
    for i in 0..50u8 {
        let meta = store
            .put(&k, Bytes::from(vec![i]), "text/plain")
            .await
            .unwrap();
        assert!(meta.generation > last, "{} <= {last}", meta.generation);
        assert_eq!(store.head(&k).await.unwrap().generation, meta.generation);
        last = meta.generation;
    }
    // A file changed behind the store's back has a new generation: conditional writes refuse.
    std::fs::write(store.path(&k), b"edited").unwrap();
    let f = std::fs::File::options()
        .write(true)
        .open(store.path(&k))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    let err = store
        .replace_if_generation(&k, Bytes::from_static(b"x"), "text/plain", last)
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::PreconditionFailed { .. }));
}

#[tokio::test]
async fn stream_from_reader_chunks() {
    let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    let chunks: Vec<Bytes> = stream_from_reader(std::io::Cursor::new(data.clone()), 4096)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        chunks.iter().map(Bytes::len).collect::<Vec<_>>(),
        [4096, 4096, 1808]
    );
    assert_eq!(chunks.concat(), data);
}

/// An upload dropped midway (a cancelled task) leaves neither an object nor a temporary file.
#[tokio::test]
async fn local_cancelled_upload_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).unwrap();
    let k = key("logs.zip");
    let stalls = futures::stream::iter([Ok(generated_chunk(0, MIB))])
        .chain(futures::stream::pending())
        .boxed();
    let upload = store.put_stream(&k, stalls, "application/zip");
    let timed_out = tokio::time::timeout(std::time::Duration::from_millis(200), upload).await;
    assert!(timed_out.is_err(), "the stalled upload cannot finish");
    assert!(store.head(&k).await.unwrap_err().is_not_found());
    let parts = std::fs::read_dir(store.temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
        .count();
    assert_eq!(parts, 0);
    // A key below an object's name is not an object (the local store cannot hold both).
    store
        .put(&k, Bytes::from_static(b"z"), "application/zip")
        .await
        .unwrap();
    assert!(
        store
            .head(&key("logs.zip/inner"))
            .await
            .unwrap_err()
            .is_not_found()
    );
}
