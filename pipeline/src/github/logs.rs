//! Workflow-run logs: GitHub answers `GET .../runs/{id}/attempts/{n}/logs` with a 302 to a
//! signed, short-lived URL on a storage host; the archive (a zip) is fetched from there as a
//! stream, **without** the GitHub token, and handed on chunk by chunk so memory stays flat in
//! the archive's size.
//!
//! - The API call goes through [`GitHubClient::send`]: rate limits and retries apply, and a
//!   404/410 comes back as [`GitHubError::Status`] with its status.
//! - The storage host gets a plain GET with no `Authorization` header (it refuses one, and a
//!   token must never leave for another host). Its 5xx answers, timeouts and connection
//!   failures before the body starts are retried with a fresh 302 (the link expires after a
//!   minute), with the client's backoff.
//! - Once the body has started, a failure is an error item in the stream, never a silent end:
//!   a body that stops short of its `Content-Length`, or sends nothing for the client's
//!   timeout, ends with an `io::Error`, so [`crate::blob::BlobStore::put_stream`] discards the
//!   object.
//! - GitHub always redirects; a 200 carrying the archive itself is streamed too, but then the
//!   client's whole-request timeout ([`super::GitHubConfig::timeout`]) bounds the download.
//! - Signed URLs are secrets too: no error or log line carries one.

use std::fmt;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use reqwest::{Method, Response, StatusCode, header};

use super::client::{Auth, GitHubClient};
use super::error::GitHubError;
use super::runs::run_path;
use crate::blob::ByteStream;
use crate::error::error_chain;

/// The longest one archive download may take from request to last byte (a 3 GiB archive at
/// 1 MB/s); the client's timeout bounds the wait for headers and every pause between chunks.
const DOWNLOAD_LIMIT: Duration = Duration::from_secs(6 * 3600);

/// How much of a storage host's error body is read for its message.
const ERROR_BODY_LIMIT: usize = 4 << 10;

/// A run attempt's log archive, being downloaded.
pub struct LogsDownload {
    /// The archive's size, when the host said (`Content-Length`).
    pub content_length: Option<u64>,
    /// The archive's bytes. Ends with an error item if the body breaks off, stops short of
    /// `content_length`, or stalls.
    pub stream: ByteStream,
}

impl fmt::Debug for LogsDownload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogsDownload")
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

/// Why one try at the storage host failed, and whether a fresh link may do better.
struct ArchiveFailure {
    error: GitHubError,
    retry: bool,
}

impl GitHubClient {
    /// Starts downloading the logs of attempt `attempt` of run `run_id` of `owner/repo`
    /// (`GET /repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt}/logs` with an
    /// installation token holding `actions: read`, then the archive from where GitHub's 302
    /// points, without the token). A 200 with the archive itself is accepted too.
    ///
    /// # Errors
    /// - [`GitHubError::Config`] for an owner, repository, run id or attempt that cannot be a
    ///   path segment (checked before any request);
    /// - [`GitHubError::Status`] for GitHub's error answers (404: the run is unknown, still in
    ///   progress or its logs expired; 410: the logs were deleted), for a redirect that is not
    ///   to an http(s) URL, and for the storage host's refusals (the path then ends with
    ///   `(archive host)`); the storage host's 5xx after the client's retries;
    /// - [`GitHubError::Transport`] when GitHub or the storage host cannot be reached;
    /// - as [`GitHubClient::send`] otherwise.
    pub async fn run_logs(
        &self,
        owner: &str,
        repo: &str,
        run_id: i64,
        attempt: u32,
        auth: &Auth,
    ) -> Result<LogsDownload, GitHubError> {
        if attempt == 0 {
            return Err(GitHubError::Config(format!(
                "run attempt 0 of run {run_id} is not an attempt (GitHub counts from 1)"
            )));
        }
        let path = format!("{}/attempts/{attempt}/logs", run_path(owner, repo, run_id)?);
        let policy = self.config().retry;
        let idle = self.config().timeout;
        let mut tries = 0u32;
        loop {
            tries += 1;
            let response = self.send(Method::GET, &path, auth, None).await?;
            let status = response.status();
            if status.is_success() {
                return Ok(download(response, &path, idle));
            }
            let location = archive_location(&self.config().api_url, &path, &response)?;
            drop(response);
            match self.fetch_archive(location, &path, tries).await {
                Ok(response) => return Ok(download(response, &path, idle)),
                Err(failure) if failure.retry && tries < policy.attempts => {
                    tracing::warn!(
                        path,
                        tries,
                        error = %error_chain(&failure.error),
                        "The logs archive host failed; retrying with a fresh link."
                    );
                    tokio::time::sleep(policy.backoff(tries)).await;
                }
                Err(failure) => return Err(failure.error),
            }
        }
    }

    /// One GET of a signed archive URL, with no `Authorization` header; a 2xx answer whose
    /// body has not been read yet, or why not.
    async fn fetch_archive(
        &self,
        url: url::Url,
        path: &str,
        tries: u32,
    ) -> Result<Response, ArchiveFailure> {
        let archive_path = format!("{path} (archive host)");
        let wait = self.config().timeout;
        let request = self.http().get(url).timeout(DOWNLOAD_LIMIT).send();
        let response = match tokio::time::timeout(wait, request).await {
            Ok(Ok(response)) => response,
            Ok(Err(source)) => {
                return Err(ArchiveFailure {
                    error: GitHubError::Transport {
                        method: "GET".into(),
                        path: archive_path,
                        attempts: tries,
                        source: source.without_url(),
                    },
                    retry: true,
                });
            }
            Err(_) => {
                return Err(ArchiveFailure {
                    error: GitHubError::Status {
                        method: "GET".into(),
                        path: archive_path,
                        status: StatusCode::GATEWAY_TIMEOUT.as_u16(),
                        message: format!(
                            "no answer from the logs archive host within {} s (reported as 504)",
                            wait.as_secs_f64()
                        ),
                        hint: "",
                    },
                    retry: true,
                });
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry = status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS;
        let message = storage_message(response).await;
        Err(ArchiveFailure {
            error: GitHubError::Status {
                method: "GET".into(),
                path: archive_path,
                status: status.as_u16(),
                message,
                hint: if status == StatusCode::FORBIDDEN {
                    "; the storage host refused the signed link GitHub gave (expired, or the \
                     machine's clock is off)"
                } else {
                    ""
                },
            },
            retry,
        })
    }
}

/// The archive URL a logs answer redirects to: its `Location`, resolved against the request's
/// URL, when that is an http(s) URL.
fn archive_location(
    api_url: &str,
    path: &str,
    response: &Response,
) -> Result<url::Url, GitHubError> {
    let refuse = |message: String| GitHubError::Status {
        method: "GET".into(),
        path: path.to_owned(),
        status: response.status().as_u16(),
        message,
        hint: "",
    };
    if !response.status().is_redirection() {
        return Err(refuse(
            "expected a 302 to the logs archive or the archive itself".into(),
        ));
    }
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refuse("the redirect has no readable Location".into()))?;
    let base = url::Url::parse(&format!("{api_url}{path}"))
        .map_err(|e| refuse(format!("the request URL does not parse ({e})")))?;
    let url = base
        .join(location)
        .map_err(|e| refuse(format!("the redirect's Location is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse(format!(
            "the redirect points to a {:?} URL; only http(s) archive links are followed",
            url.scheme()
        )));
    }
    Ok(url)
}

/// The storage host's error `Code` and `Message` (Azure-style XML), or the start of its body.
async fn storage_message(response: Response) -> String {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while body.len() < ERROR_BODY_LIMIT {
        match chunks.next().await {
            Some(Ok(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&body);
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].trim().to_owned())
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ => text.chars().take(200).collect(),
    }
}

/// A checked stream over `response`'s body (see the module docs).
fn download(response: Response, path: &str, idle: Duration) -> LogsDownload {
    let content_length = response.content_length();
    let body = Body {
        chunks: response.bytes_stream().boxed(),
        received: 0,
        expected: content_length,
        idle,
        path: path.to_owned(),
        done: false,
    };
    let stream = futures::stream::try_unfold(body, |mut body| async move {
        Ok(body.next_chunk().await?.map(|chunk| (chunk, body)))
    })
    .into_stream()
    .boxed();
    LogsDownload {
        content_length,
        stream,
    }
}

/// The state of one body being read.
struct Body {
    chunks: BoxStream<'static, reqwest::Result<Bytes>>,
    received: u64,
    expected: Option<u64>,
    idle: Duration,
    path: String,
    done: bool,
}

impl Body {
    /// The next chunk, `None` at a complete end, or why the body is broken.
    async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        let next = match tokio::time::timeout(self.idle, self.chunks.next()).await {
            Ok(next) => next,
            Err(_) => {
                self.done = true;
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the logs archive of {} stalled: nothing for {} s after {} bytes",
                        self.path,
                        self.idle.as_secs_f64(),
                        self.received
                    ),
                ));
            }
        };
        match next {
            Some(Ok(chunk)) => {
                self.received += chunk.len() as u64;
                if let Some(expected) = self.expected
                    && self.received > expected
                {
                    self.done = true;
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the logs archive of {} is longer than its Content-Length {expected}",
                            self.path
                        ),
                    ));
                }
                Ok(Some(chunk))
            }
            Some(Err(error)) => {
                self.done = true;
                let kind = if error.is_timeout() {
                    io::ErrorKind::TimedOut
                } else {
                    io::ErrorKind::Other
                };
                Err(io::Error::new(
                    kind,
                    format!(
                        "the logs archive of {} broke off after {} of {} bytes: {}",
                        self.path,
                        self.received,
                        self.expected
                            .map_or_else(|| "?".to_owned(), |n| n.to_string()),
                        error_chain(&error.without_url())
                    ),
                ))
            }
            None => {
                self.done = true;
                match self.expected {
                    Some(expected) if self.received < expected => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the logs archive of {} ended after {} of its {expected} bytes",
                            self.path, self.received
                        ),
                    )),
                    _ => Ok(None),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::installations::test_support::token;
    use crate::testing::{fake_github_client, github_client};
    use gma_testkit::github::{AuthKind, FakeGitHub, Fault, Logs, Route, logs_zip};

    async fn collect(download: LogsDownload) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let mut stream = download.stream;
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        Ok(bytes)
    }

    fn sample_zip() -> Vec<u8> {
        logs_zip(&[
            (
                "build",
                &[
                    ("Set up job", "2026-01-01T00:00:00Z Starting\n"),
                    ("Run cargo test", "test a ... ok\n##[error]boom\n"),
                ],
            ),
            ("lint", &[("Run clippy", "clean\n")]),
        ])
    }

    fn archive_requests_without_auth(gh: &FakeGitHub) -> bool {
        gh.requests()
            .iter()
            .filter(|r| r.route == Route::ArchiveDownload)
            .all(|r| r.auth_kind == AuthKind::None)
    }

    #[tokio::test]
    async fn streams_the_archive_byte_identical_without_the_token() {
        let gh = FakeGitHub::start().await;
        let zip = sample_zip();
        gh.add_workflow_run("Octo", "Widgets", 77, 2, Logs::zip(zip.clone()));
        let client = fake_github_client(&gh);
        let auth = token(&gh, &client).await;
        let download = client
            .run_logs("Octo", "Widgets", 77, 2, &auth)
            .await
            .unwrap();
        assert_eq!(download.content_length, Some(zip.len() as u64));
        assert_eq!(collect(download).await.unwrap(), zip);
        assert_eq!(gh.archive_auth_refusals(), 0);
        assert_eq!(gh.archive_downloads(), 1);
        assert!(archive_requests_without_auth(&gh));
        let logs_call = gh
            .requests()
            .into_iter()
            .find(|r| r.route == Route::RunLogs)
            .unwrap();
        assert_eq!(
            logs_call.path,
            "/repos/Octo/Widgets/actions/runs/77/attempts/2/logs"
        );
        assert_eq!(logs_call.auth_kind, AuthKind::Token);
    }

    #[tokio::test]
    async fn gone_and_missing_logs_are_status_errors() {
        let gh = FakeGitHub::start().await;
        gh.add_workflow_run("o", "r", 1, 1, Logs::Status(410));
        gh.add_workflow_run("o", "r", 2, 1, Logs::Status(404));
        gh.add_workflow_run("o", "r", 3, 1, Logs::InProgress);
        gh.add_workflow_run("o", "r", 4, 1, Logs::Status(500));
        let client = fake_github_client(&gh);
        let auth = token(&gh, &client).await;
        for (run, status) in [(1, 410), (2, 404), (3, 404), (5, 404), (4, 500)] {
            let error = client.run_logs("o", "r", run, 1, &auth).await.unwrap_err();
            assert_eq!(error.status(), Some(status), "run {run}: {error}");
        }
        // 5xx was retried by `send` (3 tries), the others were not.
        assert_eq!(gh.calls(Route::RunLogs), 4 + 3);
        assert_eq!(gh.calls(Route::ArchiveDownload), 0);
    }

    #[tokio::test]
    async fn a_truncated_body_ends_the_stream_with_an_error() {
        let gh = FakeGitHub::start().await;
        let zip = vec![7u8; 3 << 20];
        gh.add_workflow_run("o", "r", 9, 1, Logs::zip(zip.clone()));
        gh.inject(Route::ArchiveDownload, Fault::TruncatedBody { times: 1 });
        let client = fake_github_client(&gh);
        let auth = token(&gh, &client).await;
        let download = client.run_logs("o", "r", 9, 1, &auth).await.unwrap();
        assert_eq!(download.content_length, Some(zip.len() as u64));
        let error = collect(download).await.unwrap_err().to_string();
        assert!(
            error.contains("/repos/o/r/actions/runs/9/attempts/1/logs"),
            "{error}"
        );
        assert!(!error.contains("sig="), "a signed URL leaked: {error}");
        // The next download is whole.
        let again = client.run_logs("o", "r", 9, 1, &auth).await.unwrap();
        assert_eq!(collect(again).await.unwrap(), zip);
    }

    #[tokio::test]
    async fn goes_straight_into_a_blob_store_and_a_broken_body_leaves_no_object() {
        use crate::blob::{BlobKey, open_blob_store};
        let gh = FakeGitHub::start().await;
        let zip = sample_zip();
        gh.add_workflow_run("o", "r", 10, 1, Logs::zip(zip.clone()));
        gh.add_workflow_run("o", "r", 11, 1, Logs::zip(vec![3u8; 2 << 20]));
        let dir = tempfile::tempdir().unwrap();
        let store = open_blob_store(dir.path().to_str().unwrap()).unwrap();
        let client = fake_github_client(&gh);
        let auth = token(&gh, &client).await;

        let key = BlobKey::new("leech/o/r/10/1/logs.zip").unwrap();
        let download = client.run_logs("o", "r", 10, 1, &auth).await.unwrap();
        let meta = store
            .put_stream(&key, download.stream, "application/zip")
            .await
            .unwrap();
        assert_eq!(meta.size, zip.len() as u64);
        assert_eq!(store.get(&key).await.unwrap(), zip);

        gh.inject(Route::ArchiveDownload, Fault::TruncatedBody { times: 1 });
        let broken = BlobKey::new("leech/o/r/11/1/logs.zip").unwrap();
        let download = client.run_logs("o", "r", 11, 1, &auth).await.unwrap();
        assert!(
            store
                .put_stream(&broken, download.stream, "application/zip")
                .await
                .is_err()
        );
        assert!(
            store.head(&broken).await.is_err(),
            "no half object under the key"
        );
    }

    #[tokio::test]
    async fn storage_failures_before_the_body_retry_with_a_fresh_link() {
        let gh = FakeGitHub::start().await;
        let zip = sample_zip();
        gh.add_workflow_run("o", "r", 5, 1, Logs::zip(zip.clone()));
        gh.inject(
            Route::ArchiveDownload,
            Fault::Status {
                code: 503,
                times: 2,
            },
        );
        let client = fake_github_client(&gh);
        let auth = token(&gh, &client).await;
        let download = client.run_logs("o", "r", 5, 1, &auth).await.unwrap();
        assert_eq!(collect(download).await.unwrap(), zip);
        assert_eq!(gh.calls(Route::RunLogs), 3, "one fresh 302 per try");
        assert_eq!(gh.calls(Route::ArchiveDownload), 3);

        // A host that keeps failing: the last answer, without the signed URL.
        gh.inject(Route::ArchiveDownload, Fault::Always { code: 500 });
        let error = client.run_logs("o", "r", 5, 1, &auth).await.unwrap_err();
        assert_eq!(error.status(), Some(500), "{error}");
        let text = error.to_string();
        assert!(text.contains("(archive host)"), "{text}");
        assert!(!text.contains("sig="), "{text}");
        assert_eq!(gh.calls(Route::ArchiveDownload), 3 + 3);
        assert_eq!(gh.archive_auth_refusals(), 0);
    }

    #[tokio::test]
    async fn a_storage_host_that_does_not_answer_is_retried() {
        let gh = FakeGitHub::start().await;
        let zip = sample_zip();
        gh.add_workflow_run("o", "r", 6, 1, Logs::zip(zip.clone()));
        gh.inject(
            Route::ArchiveDownload,
            Fault::Delay {
                millis: 2_000,
                times: 1,
            },
        );
        let mut config = fake_github_client(&gh).config().clone();
        config.timeout = Duration::from_millis(500);
        let client = GitHubClient::new(config).unwrap();
        let auth = token(&gh, &client).await;
        let download = client.run_logs("o", "r", 6, 1, &auth).await.unwrap();
        assert_eq!(collect(download).await.unwrap(), zip);
        assert_eq!(gh.calls(Route::RunLogs), 2);
    }

    #[tokio::test]
    async fn a_200_mib_archive_streams_through() {
        let gh = FakeGitHub::start().await;
        gh.add_workflow_run("o", "r", 8, 1, Logs::Generated { bytes: 200 << 20 });
        let client = fake_github_client(&gh);
        let auth = token(&gh, &client).await;
        let download = client.run_logs("o", "r", 8, 1, &auth).await.unwrap();
        let expected = download.content_length.unwrap();
        assert!(expected > 200 << 20);
        let mut stream = download.stream;
        let (mut total, mut largest) = (0u64, 0usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            total += chunk.len() as u64;
            largest = largest.max(chunk.len());
        }
        assert_eq!(total, expected);
        assert!(largest <= 4 << 20, "chunks stay small: {largest}");
        assert_eq!(gh.archive_auth_refusals(), 0);
    }

    #[tokio::test]
    async fn names_that_could_escape_are_refused_before_any_request() {
        let gh = FakeGitHub::start().await;
        let client = fake_github_client(&gh);
        let auth = Auth::Token(crate::github::Secret::new(FakeGitHub::PAT));
        for (owner, repo) in [
            ("..", "r"),
            ("o", ""),
            ("o/x", "r"),
            ("o", "r?x"),
            ("o", "."),
        ] {
            let error = client.run_logs(owner, repo, 1, 1, &auth).await.unwrap_err();
            assert!(matches!(error, GitHubError::Config(_)), "{error}");
        }
        assert!(client.run_logs("o", "r", 1, 0, &auth).await.is_err());
        assert!(client.run_logs("o", "r", -1, 1, &auth).await.is_err());
        assert_eq!(gh.calls(Route::Any), 0);
    }

    /// A stand-in API host for answers the fake GitHub never gives: a redirect to a `file:`
    /// URL (run 1), the archive in a 200 (run 2), a relative redirect to an archive that stalls
    /// after 9 bytes (run 3).
    async fn odd_api() -> String {
        use axum::http::Uri;
        use axum::response::IntoResponse;
        let app = axum::Router::new().fallback(|uri: Uri| async move {
            match uri.path() {
                "/repos/o/r/actions/runs/1/attempts/1/logs" => (
                    axum::http::StatusCode::FOUND,
                    [("location", "file:///etc/passwd")],
                )
                    .into_response(),
                "/repos/o/r/actions/runs/2/attempts/1/logs" => {
                    (axum::http::StatusCode::OK, b"PK-direct".to_vec()).into_response()
                }
                "/repos/o/r/actions/runs/3/attempts/1/logs" => (
                    axum::http::StatusCode::FOUND,
                    [("location", "/archive/stall?sig=x")],
                )
                    .into_response(),
                "/archive/stall" => {
                    let head = futures::stream::once(async {
                        Ok::<_, io::Error>(Bytes::from_static(b"PK-stalls"))
                    });
                    let body =
                        axum::body::Body::from_stream(head.chain(futures::stream::pending()));
                    ([("content-length", "100")], body).into_response()
                }
                _ => axum::http::StatusCode::NOT_FOUND.into_response(),
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn refuses_a_non_http_redirect_and_accepts_a_direct_archive() {
        let client = github_client(&odd_api().await, 1);
        let auth = Auth::None;
        let error = client.run_logs("o", "r", 1, 1, &auth).await.unwrap_err();
        assert!(error.to_string().contains("\"file\""), "{error}");
        let direct = client.run_logs("o", "r", 2, 1, &auth).await.unwrap();
        assert_eq!(direct.content_length, Some(9));
        assert_eq!(collect(direct).await.unwrap(), b"PK-direct");
    }

    #[tokio::test]
    async fn a_stalled_body_ends_with_a_timeout_error() {
        let mut config = github_client(&odd_api().await, 1).config().clone();
        config.timeout = Duration::from_millis(300);
        let client = GitHubClient::new(config).unwrap();
        let download = client.run_logs("o", "r", 3, 1, &Auth::None).await.unwrap();
        let mut stream = download.stream;
        assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"PK-stalls");
        let error = stream.next().await.unwrap().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
        assert!(error.to_string().contains("after 9 bytes"), "{error}");
        assert!(stream.next().await.is_none());
    }
}
