//! [`GcsBlobStore`] against a small in-process GCS JSON API (axum on 127.0.0.1) that injects
//! faults, for what fake-gcs-server cannot show: retries after 429/503, a resumable upload
//! recovering from a failed chunk, a create whose first attempt landed but whose answer was
//! lost, conditional DELETE, and error messages. The conformance suite in `tests.rs` runs the
//! same store against fake-gcs-server; this file only adds to it.

use crate::error::Transient;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes as AxumBytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};

use super::gcs::{GcsBlobStore, GcsConfig};
use super::*;

#[derive(Debug, Clone)]
struct Obj {
    data: Vec<u8>,
    generation: u64,
    content_type: String,
    metadata: Value,
}

/// A fault: the next request whose method and path match answers `status`, either instead of
/// doing its work (`apply: false`) or after doing it (`apply: true`, a lost answer).
#[derive(Debug, Clone)]
struct Fault {
    method: Method,
    path_contains: &'static str,
    status: u16,
    apply: bool,
    /// Only data-carrying requests, not resumable status queries (`Content-Range: bytes */*`).
    chunks_only: bool,
}

#[derive(Debug, Default)]
struct Fake {
    objects: BTreeMap<String, Obj>,
    sessions: HashMap<u64, (String, String, Vec<u8>)>,
    next_generation: u64,
    next_session: u64,
    faults: VecDeque<Fault>,
    requests: Vec<String>,
    addr: String,
}

type Shared = Arc<Mutex<Fake>>;

fn resource(name: &str, o: &Obj) -> Value {
    json!({
        "name": name, "size": o.data.len().to_string(), "generation": o.generation.to_string(),
        "contentType": o.content_type, "updated": "2026-11-28T12:00:00.000Z", "metadata": o.metadata,
    })
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": status.as_u16(), "message": message}})),
    )
        .into_response()
}

/// Stores `data` as `name` if `if_generation` holds.
fn store(
    fake: &mut Fake,
    name: &str,
    data: Vec<u8>,
    ct: &str,
    meta: Value,
    if_gen: Option<u64>,
) -> Response {
    let current = fake.objects.get(name).map(|o| o.generation);
    if let Some(want) = if_gen
        && current.unwrap_or(0) != want
    {
        return error(StatusCode::PRECONDITION_FAILED, "conditionNotMet");
    }
    fake.next_generation += 1;
    let obj = Obj {
        data,
        generation: fake.next_generation,
        content_type: ct.into(),
        metadata: meta,
    };
    let body = resource(name, &obj);
    fake.objects.insert(name.to_owned(), obj);
    axum::Json(body).into_response()
}

async fn upload(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: AxumBytes,
) -> Response {
    let if_gen = q.get("ifGenerationMatch").and_then(|g| g.parse().ok());
    let mut fake = s.lock().unwrap();
    match q.get("uploadType").map(String::as_str) {
        Some("multipart") => {
            let ctype = headers[header::CONTENT_TYPE].to_str().unwrap();
            let boundary = ctype.split("boundary=").nth(1).unwrap();
            let text = body.to_vec();
            let sep = format!("\r\n--{boundary}");
            let find = |hay: &[u8], needle: &[u8], from: usize| {
                hay[from..]
                    .windows(needle.len())
                    .position(|w| w == needle)
                    .map(|p| p + from)
            };
            let h1 = find(&text, b"\r\n\r\n", 0).unwrap() + 4;
            let e1 = find(&text, sep.as_bytes(), h1).unwrap();
            let meta: Value = serde_json::from_slice(&text[h1..e1]).unwrap();
            let h2 = find(&text, b"\r\n\r\n", e1).unwrap() + 4;
            let e2 = find(&text, format!("{sep}--").as_bytes(), h2).unwrap();
            let name = meta["name"].as_str().unwrap().to_owned();
            let ct = meta["contentType"].as_str().unwrap_or("").to_owned();
            store(
                &mut fake,
                &name,
                text[h2..e2].to_vec(),
                &ct,
                meta["metadata"].clone(),
                if_gen,
            )
        }
        Some("resumable") => {
            let meta: Value = serde_json::from_slice(&body).unwrap();
            fake.next_session += 1;
            let id = fake.next_session;
            let name = meta["name"].as_str().unwrap().to_owned();
            let ct = meta["contentType"].as_str().unwrap_or("").to_owned();
            fake.sessions.insert(id, (name, ct, Vec::new()));
            let location = format!("http://{}/upload/session/{id}", fake.addr);
            (StatusCode::OK, [(header::LOCATION, location)]).into_response()
        }
        _ => error(StatusCode::BAD_REQUEST, "unsupported uploadType"),
    }
}

async fn session_put(
    State(s): State<Shared>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: AxumBytes,
) -> Response {
    let mut fake = s.lock().unwrap();
    let range = headers[header::CONTENT_RANGE].to_str().unwrap().to_owned();
    let Some((_, _, data)) = fake.sessions.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "no such upload");
    };
    let spec = range.strip_prefix("bytes ").unwrap();
    let (span, total) = spec.split_once('/').unwrap();
    if span != "*" {
        let start: usize = span.split('-').next().unwrap().parse().unwrap();
        assert!(
            start <= data.len(),
            "chunk starts at {start} after a gap (have {})",
            data.len()
        );
        let overlap = data.len() - start;
        data.extend_from_slice(&body[overlap.min(body.len())..]);
    }
    let persisted = data.len();
    if total != "*" && total.parse::<usize>().unwrap() == persisted {
        let (name, ct, data) = fake.sessions.remove(&id).unwrap();
        return store(&mut fake, &name, data, &ct, json!({}), None);
    }
    let mut resp = StatusCode::PERMANENT_REDIRECT.into_response();
    if persisted > 0 {
        resp.headers_mut().insert(
            header::RANGE,
            format!("bytes=0-{}", persisted - 1).parse().unwrap(),
        );
    }
    resp
}

async fn session_delete(State(s): State<Shared>, Path(id): Path<u64>) -> Response {
    s.lock().unwrap().sessions.remove(&id);
    StatusCode::from_u16(499).unwrap().into_response()
}

async fn object_get(
    State(s): State<Shared>,
    Path((_bucket, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let fake = s.lock().unwrap();
    let Some(o) = fake.objects.get(&name) else {
        return error(StatusCode::NOT_FOUND, "No such object");
    };
    if q.get("alt").map(String::as_str) == Some("media") {
        Body::from(o.data.clone()).into_response()
    } else {
        axum::Json(resource(&name, o)).into_response()
    }
}

async fn object_delete(
    State(s): State<Shared>,
    Path((_bucket, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut fake = s.lock().unwrap();
    let Some(o) = fake.objects.get(&name) else {
        return error(StatusCode::NOT_FOUND, "No such object");
    };
    if let Some(want) = q
        .get("ifGenerationMatch")
        .and_then(|g| g.parse::<u64>().ok())
        && o.generation != want
    {
        return error(StatusCode::PRECONDITION_FAILED, "conditionNotMet");
    }
    fake.objects.remove(&name);
    StatusCode::NO_CONTENT.into_response()
}

async fn list(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let fake = s.lock().unwrap();
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let max: usize = q
        .get("maxResults")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000);
    let start: usize = q.get("pageToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let all: Vec<_> = fake
        .objects
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .collect();
    let items: Vec<_> = all
        .iter()
        .skip(start)
        .take(max)
        .map(|(k, o)| resource(k, o))
        .collect();
    let mut body = json!({ "kind": "storage#objects", "items": items });
    if start + max < all.len() {
        body["nextPageToken"] = json!((start + max).to_string());
    }
    axum::Json(body).into_response()
}

/// Logs each request and applies the first matching fault.
async fn faults(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().to_string());
    let status_query = req
        .headers()
        .get(header::CONTENT_RANGE)
        .is_some_and(|r| r.as_bytes() == b"bytes */*");
    let fault = {
        let mut fake = s.lock().unwrap();
        fake.requests.push(format!("{method} {path}"));
        let hit = fake.faults.iter().position(|f| {
            f.method == method && path.contains(f.path_contains) && !(f.chunks_only && status_query)
        });
        hit.and_then(|i| fake.faults.remove(i))
    };
    match fault {
        None => next.run(req).await,
        Some(f) => {
            let status = StatusCode::from_u16(f.status).unwrap();
            if f.apply {
                let _ = next.run(req).await;
            }
            let mut resp = error(status, "injected fault");
            if f.status == 429 {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, "0".parse().unwrap());
            }
            resp
        }
    }
}

struct Server {
    state: Shared,
    store: GcsBlobStore,
}

impl Server {
    async fn start() -> Self {
        let state: Shared = Arc::default();
        let app = Router::new()
            .route("/upload/storage/v1/b/{bucket}/o", post(upload))
            .route(
                "/upload/session/{id}",
                put(session_put).delete(session_delete),
            )
            .route("/storage/v1/b/{bucket}/o", get(list))
            .route(
                "/storage/v1/b/{bucket}/o/{name}",
                get(object_get).delete(object_delete),
            )
            .layer(middleware::from_fn_with_state(state.clone(), faults))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        state.lock().unwrap().addr = addr.clone();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let mut config = GcsConfig::new("bkt", "p").with_emulator(&addr);
        config.initial_backoff = std::time::Duration::from_millis(5);
        config.upload_chunk_bytes = 256 * 1024;
        config.list_page_size = 3;
        Self {
            state,
            store: GcsBlobStore::new(config).unwrap(),
        }
    }

    fn fault(&self, method: Method, path_contains: &'static str, status: u16, apply: bool) {
        self.state.lock().unwrap().faults.push_back(Fault {
            method,
            path_contains,
            status,
            apply,
            chunks_only: false,
        });
    }

    fn chunk_fault(&self, status: u16, apply: bool) {
        self.state.lock().unwrap().faults.push_back(Fault {
            method: Method::PUT,
            path_contains: "/upload/session/",
            status,
            apply,
            chunks_only: true,
        });
    }

    fn requests(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().requests)
    }
}

fn key(k: &str) -> BlobKey {
    BlobKey::new(k).unwrap()
}

#[tokio::test]
async fn retries_throttling_and_server_errors() {
    let srv = Server::start().await;
    srv.fault(Method::POST, "uploadType=multipart", 503, false);
    srv.fault(Method::POST, "uploadType=multipart", 429, false);
    let meta = srv
        .store
        .put(&key("a/b"), Bytes::from_static(b"hi"), "text/plain")
        .await
        .unwrap();
    assert_eq!(meta.key, "a/b");
    assert_eq!(srv.requests().len(), 3);
    srv.fault(Method::GET, "/o/p%2Fa%2Fb", 500, false);
    assert_eq!(
        srv.store.get(&key("a/b")).await.unwrap(),
        Bytes::from_static(b"hi")
    );
    // Not retried: a client error.
    srv.requests();
    srv.fault(Method::GET, "/o/p%2Fa%2Fb", 403, false);
    let err = srv.store.head(&key("a/b")).await.unwrap_err();
    assert!(
        matches!(err, BlobError::Remote { status: 403, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("roles/storage.objectAdmin"),
        "{err}"
    );
    assert!(err.to_string().contains("gs://bkt/p/a/b"), "{err}");
    assert!(!err.is_transient());
    assert_eq!(srv.requests().len(), 1);
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let srv = Server::start().await;
    for _ in 0..6 {
        srv.fault(Method::GET, "/o/p%2Fx", 503, false);
    }
    let err = srv.store.head(&key("x")).await.unwrap_err();
    assert!(
        matches!(err, BlobError::Remote { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(srv.requests().len(), 6);
}

/// The first create landed but its answer was lost; the retry meets 412, and the store sees
/// from the writer nonce that the object is its own.
#[tokio::test]
async fn create_whose_answer_was_lost_is_still_created() {
    let srv = Server::start().await;
    srv.fault(Method::POST, "ifGenerationMatch=0", 503, true);
    let outcome = srv
        .store
        .create_if_absent(&key("lock"), Bytes::from_static(b"me"), "text/plain")
        .await
        .unwrap();
    assert!(outcome.created(), "{outcome:?}");
    // Someone else's object is still someone else's.
    let outcome = srv
        .store
        .create_if_absent(&key("lock"), Bytes::from_static(b"other"), "text/plain")
        .await
        .unwrap();
    assert_eq!(outcome, CreateOutcome::AlreadyExists);
    assert_eq!(
        srv.store.get(&key("lock")).await.unwrap(),
        Bytes::from_static(b"me")
    );
}

#[tokio::test]
async fn conditional_delete_is_sent_and_honoured() {
    let srv = Server::start().await;
    let meta = srv
        .store
        .put(&key("l"), Bytes::from_static(b"1"), "text/plain")
        .await
        .unwrap();
    let err = srv
        .store
        .delete_if_generation(&key("l"), meta.generation + 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BlobError::PreconditionFailed { .. }),
        "{err:?}"
    );
    srv.store
        .delete_if_generation(&key("l"), meta.generation)
        .await
        .unwrap();
    assert!(
        srv.requests()
            .iter()
            .any(|r| r.contains(&format!("ifGenerationMatch={}", meta.generation)))
    );
    assert!(srv.store.head(&key("l")).await.unwrap_err().is_not_found());
}

/// A chunk fails (once before anything was kept, once after it was kept): the store asks how
/// much GCS has and carries on; the object is whole.
#[tokio::test]
async fn resumable_upload_recovers_from_failed_chunks() {
    let srv = Server::start().await;
    // First chunk: refused, then kept but its answer lost. A status query fails once too.
    srv.chunk_fault(503, false);
    srv.chunk_fault(502, true);
    srv.fault(Method::PUT, "/upload/session/", 500, false);
    let chunk = 100 * 1024;
    let data: Vec<u8> = (0..10 * chunk).map(|i| (i % 251) as u8).collect();
    let source = futures::stream::iter(data.clone())
        .chunks(chunk)
        .map(|c| Ok(Bytes::from(c)))
        .boxed();
    let meta = srv
        .store
        .put_stream(&key("big.zip"), source, "application/zip")
        .await
        .unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(meta.content_type, "application/zip");
    assert_eq!(srv.store.get(&key("big.zip")).await.unwrap(), data);
    // The first chunk twice (refused, then kept with its answer lost) and never a third time,
    // the other 3 chunks once each, and 3 status queries (one failed and retried).
    let puts = srv
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT"))
        .count();
    assert_eq!(puts, 2 + 3 + 3, "chunk requests and status queries");
    assert!(srv.store.peak_upload_buffer_bytes() <= (256 * 1024 + chunk) as u64);
}

#[tokio::test]
async fn failed_stream_cancels_the_session() {
    let srv = Server::start().await;
    let source = futures::stream::iter([
        Ok(Bytes::from(vec![1u8; 300 * 1024])),
        Err(std::io::Error::other("boom")),
    ])
    .boxed();
    let err = srv
        .store
        .put_stream(&key("x"), source, "application/zip")
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Source { .. }));
    assert!(
        srv.state.lock().unwrap().sessions.is_empty(),
        "the session was not cancelled"
    );
    assert!(
        srv.requests()
            .iter()
            .any(|r| r.starts_with("DELETE /upload/session/"))
    );
    assert!(srv.store.head(&key("x")).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn list_pages_and_strips_the_prefix() {
    let srv = Server::start().await;
    for i in 0..8 {
        srv.store
            .put(&key(&format!("d/{i}")), Bytes::new(), "text/plain")
            .await
            .unwrap();
    }
    // Outside the store's prefix: never listed.
    srv.state.lock().unwrap().objects.insert(
        "q/d/9".into(),
        Obj {
            data: vec![],
            generation: 99,
            content_type: "x".into(),
            metadata: json!({}),
        },
    );
    srv.requests();
    let keys: Vec<_> = srv
        .store
        .list("d/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(
        keys,
        ["d/0", "d/1", "d/2", "d/3", "d/4", "d/5", "d/6", "d/7"]
    );
    assert_eq!(srv.requests().len(), 3, "8 objects in pages of 3");
    assert_eq!(srv.store.list("").await.unwrap().len(), 8);
}
