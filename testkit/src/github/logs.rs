//! Workflow run logs: the API's 302 to a signed, expiring archive URL, the archive host that
//! serves it (and refuses any `Authorization` header, as GitHub's storage does), and
//! [`logs_zip`] to build archives with GitHub's layout.

use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::faults::{self, Fired, Route, error_body};
use super::genzip::GeneratedZip;
use super::{AuthKind, RecordedRequest, RunKey, Shared, State as FakeState};

/// How long a logs redirect stays valid (GitHub: one minute).
const LINK_LIFETIME_SECS: i64 = 60;

/// What GitHub answers for a run attempt's logs.
#[derive(Debug, Clone)]
pub enum Logs {
    /// A 302 to the archive host, which serves these bytes (build them with [`logs_zip`]).
    Zip(Bytes),
    /// The logs endpoint answers this status (404: expired or unknown, 410: gone, 500).
    Status(u16),
    /// The run has not finished: 404, as GitHub answers.
    InProgress,
    /// A 302 to an archive generated on the fly, holding `bytes` bytes of log text, streamed
    /// (for the 1 GiB benchmark; capped at 3 GiB).
    Generated {
        /// Uncompressed log text in the archive; the archive is slightly larger.
        bytes: u64,
    },
}

impl Logs {
    /// [`Logs::Zip`] from a byte vector.
    pub fn zip(bytes: Vec<u8>) -> Self {
        Self::Zip(Bytes::from(bytes))
    }
}

/// A zip with the layout of GitHub's run-log archives: for job `j` (1-based `n`), one file
/// `{job}/{s}_{step}.txt` per step (1-based `s`) and a top-level `{n}_{job}.txt` holding the
/// job's whole log (its steps' texts in order). Deflate-compressed.
///
/// # Panics
/// Never for in-memory writes; a zip library failure would be a bug.
pub fn logs_zip(jobs: &[(&str, &[(&str, &str)])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (j, (job, steps)) in jobs.iter().enumerate() {
        let mut whole = String::new();
        for (s, (step, text)) in steps.iter().enumerate() {
            writer
                .start_file(format!("{job}/{}_{step}.txt", s + 1), options)
                .expect("starting a zip entry in memory");
            writer
                .write_all(text.as_bytes())
                .expect("writing a zip entry in memory");
            whole.push_str(text);
        }
        writer
            .start_file(format!("{}_{job}.txt", j + 1), options)
            .expect("starting a zip entry in memory");
        writer
            .write_all(whole.as_bytes())
            .expect("writing a zip entry in memory");
    }
    writer
        .finish()
        .expect("finishing a zip in memory")
        .into_inner()
}

fn link_signature(secret: &str, blob: usize, expires: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(format!("{blob}:{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

const LOGS_DOCS: &str =
    "https://docs.github.com/rest/actions/workflow-runs#download-workflow-run-logs";

/// `GET /repos/{o}/{r}/actions/runs/{run_id}[/attempts/{n}]/logs` (token already checked).
pub(super) fn run_logs(
    shared: &Shared,
    owner: &str,
    repo: &str,
    run_id: u64,
    attempt: Option<u32>,
) -> Response {
    let mut state = shared.lock();
    let attempt = attempt.or_else(|| {
        state
            .runs
            .keys()
            .filter(|(o, r, id, _)| o == owner && r == repo && *id == run_id)
            .map(|k| k.3)
            .max()
    });
    let Some(attempt) = attempt else {
        return error_body(404, "Not Found", LOGS_DOCS);
    };
    let key = (owner.to_owned(), repo.to_owned(), run_id, attempt);
    let Some(logs) = state.runs.get(&key).cloned() else {
        return error_body(404, "Not Found", LOGS_DOCS);
    };
    match logs {
        Logs::Status(code) => {
            let reason = StatusCode::from_u16(code)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("Error");
            error_body(code, reason, LOGS_DOCS)
        }
        Logs::InProgress => error_body(404, "Not Found", LOGS_DOCS),
        Logs::Zip(_) | Logs::Generated { .. } => {
            let Some(location) = signed_location(shared, &mut state, key) else {
                return error_body(404, "Not Found", LOGS_DOCS);
            };
            let mut response = StatusCode::FOUND.into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert("location", value);
            }
            response
        }
    }
}

/// GitHub's docs for "Get a workflow run".
const RUN_DOCS: &str = "https://docs.github.com/rest/actions/workflow-runs#get-a-workflow-run";

/// `GET /repos/{o}/{r}/actions/runs/{run_id}` (token already checked): the run's latest
/// attempt, `in_progress` while its logs are [`Logs::InProgress`], else `completed`.
pub(super) fn workflow_run(shared: &Shared, owner: &str, repo: &str, run_id: u64) -> Response {
    let state = shared.lock();
    let latest = state
        .runs
        .iter()
        .filter(|((o, r, id, _), _)| o == owner && r == repo && *id == run_id)
        .max_by_key(|((_, _, _, attempt), _)| *attempt);
    let Some((key, logs)) = latest else {
        return error_body(404, "Not Found", RUN_DOCS);
    };
    let attempt = key.3;
    let (status, conclusion) = match logs {
        Logs::InProgress => ("in_progress", None),
        _ => ("completed", Some("success")),
    };
    let updated_at = state.run_updated.get(key).copied().unwrap_or_else(Utc::now);
    let api = format!(
        "{}/repos/{owner}/{repo}/actions/runs/{run_id}",
        shared.base_url
    );
    let body = serde_json::json!({
        "id": run_id,
        "name": "CI",
        "run_number": run_id % 10_000,
        "event": "push",
        "status": status,
        "conclusion": conclusion,
        "run_attempt": attempt,
        "created_at": rfc3339(updated_at - chrono::Duration::minutes(5)),
        "run_started_at": rfc3339(updated_at - chrono::Duration::minutes(5)),
        "updated_at": rfc3339(updated_at),
        "url": api,
        "logs_url": format!("{api}/logs"),
        "html_url": format!("https://github.com/{owner}/{repo}/actions/runs/{run_id}"),
        "repository": { "full_name": format!("{owner}/{repo}") },
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A fresh signed archive URL for run attempt `key`, if its logs are an archive.
pub(super) fn signed_location(
    shared: &Shared,
    state: &mut FakeState,
    key: RunKey,
) -> Option<String> {
    let logs = state.runs.get(&key)?.clone();
    if !matches!(logs, Logs::Zip(_) | Logs::Generated { .. }) {
        return None;
    }
    let blob = match state.run_blob.get(&key) {
        Some(blob) => *blob,
        None => {
            state.blobs.push(logs);
            let blob = state.blobs.len() - 1;
            state.run_blob.insert(key, blob);
            blob
        }
    };
    let expires = Utc::now().timestamp() + LINK_LIFETIME_SECS;
    Some(format!(
        "{}/blobs/{blob}/logs.zip?sig={}&expires={expires}",
        shared.archive_url,
        link_signature(&shared.archive_secret, blob, expires)
    ))
}

pub(super) fn archive_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/blobs/{blob}/logs.zip", get(download))
        .fallback(|| async { (StatusCode::NOT_FOUND, "BlobNotFound") })
        .with_state(shared)
}

/// Azure-style XML error, as GitHub's log storage answers.
fn storage_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, [("content-type", "application/xml")], body).into_response()
}

async fn download(
    State(shared): State<Arc<Shared>>,
    Path(blob): Path<usize>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let has_auth = headers.contains_key("authorization");
    let mut sig = String::new();
    let mut expires: i64 = 0;
    for (key, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "sig" => sig = value.into_owned(),
            "expires" => expires = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    let (fired, logs) = {
        let mut state = shared.lock();
        state.requests.push(RecordedRequest {
            method: "GET".into(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            route: Route::ArchiveDownload,
            auth_kind: if has_auth {
                AuthKind::Other
            } else {
                AuthKind::None
            },
        });
        *state.calls.entry(Route::ArchiveDownload).or_default() += 1;
        if has_auth {
            state.archive_refusals += 1;
            return storage_error(
                StatusCode::FORBIDDEN,
                "InvalidAuthenticationInfo",
                "Authentication information is not given in the correct format. The request \
                 carries an Authorization header next to a signed URL.",
            );
        }
        if sig != link_signature(&shared.archive_secret, blob, expires) {
            return storage_error(
                StatusCode::FORBIDDEN,
                "AuthenticationFailed",
                "Signature did not match.",
            );
        }
        if expires < Utc::now().timestamp() {
            return storage_error(
                StatusCode::FORBIDDEN,
                "AuthenticationFailed",
                "Signed expiry time has passed.",
            );
        }
        let fired = faults::take(&mut state.faults, Route::ArchiveDownload, true);
        let Some(logs) = state.blobs.get(blob).cloned() else {
            return storage_error(
                StatusCode::NOT_FOUND,
                "BlobNotFound",
                "The blob does not exist.",
            );
        };
        if !matches!(fired, Some(Fired::Status(_) | Fired::RateLimited { .. })) {
            state.archive_downloads += 1;
        }
        (fired, logs)
    };
    let truncate = match fired {
        Some(Fired::Truncate) => true,
        Some(Fired::Delay(millis)) => {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            false
        }
        Some(other) => return faults::respond(other),
        None => false,
    };
    let (len, chunks): (u64, Box<dyn Iterator<Item = Bytes> + Send>) = match logs {
        Logs::Zip(bytes) => (bytes.len() as u64, Box::new(std::iter::once(bytes))),
        Logs::Generated { bytes } => {
            let zip = Arc::new(GeneratedZip::new(bytes));
            (zip.len(), Box::new(zip.chunks()))
        }
        Logs::Status(_) | Logs::InProgress => {
            return storage_error(
                StatusCode::NOT_FOUND,
                "BlobNotFound",
                "The blob does not exist.",
            );
        }
    };
    let body = if truncate {
        let mut remaining = len / 2;
        let head = futures::stream::iter(chunks)
            .map(move |chunk| {
                if remaining == 0 {
                    return None;
                }
                let n = (chunk.len() as u64).min(remaining);
                remaining -= n;
                Some(chunk.slice(..n as usize))
            })
            .take_while(|c| std::future::ready(c.is_some()))
            .filter_map(|c| std::future::ready(c.map(Ok::<Bytes, std::io::Error>)));
        // Pause before failing so the head really leaves (hyper flushes on `Pending`);
        // then the error aborts the connection short of `Content-Length`.
        let cut = futures::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Err(std::io::Error::other(
                "the fake archive host cut the body short",
            ))
        });
        Body::from_stream(head.chain(cut))
    } else {
        Body::from_stream(futures::stream::iter(
            chunks.map(Ok::<Bytes, std::io::Error>),
        ))
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/zip"));
    headers.insert("content-length", HeaderValue::from(len));
    response
}
