//! Test helpers shared by gma's crates, so no crate keeps its own copy: webhook fixtures,
//! deliveries signed the way GitHub signs them, and a `gma serve` child process to load, kill
//! and restart. Dev-only: nothing here ships.

pub mod emulators;
pub mod github;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// One webhook payload file.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The event type (the folder it sits in).
    pub event: String,
    /// The file's path.
    pub path: PathBuf,
    /// The file's bytes, exactly.
    pub body: Vec<u8>,
}

/// Every `*.json` payload under `dir/<event>/`, in path order.
///
/// # Panics
/// When a file cannot be read (a broken checkout).
pub fn fixtures_in(dir: &Path) -> Vec<Fixture> {
    let mut out = Vec::new();
    let Ok(events) = std::fs::read_dir(dir) else {
        return out;
    };
    for event in events.flatten() {
        if !event.path().is_dir() {
            continue;
        }
        let name = event.file_name().to_string_lossy().into_owned();
        for file in std::fs::read_dir(event.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "json") {
                let body = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                out.push(Fixture {
                    event: name.clone(),
                    path,
                    body,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The project's own payload fixtures, `testdata/webhooks/<event>/*.json`.
pub fn fixtures() -> Vec<Fixture> {
    fixtures_in(&repo_root().join("testdata").join("webhooks"))
}

/// The shared corpus of real-shaped payloads (`../shared/webhook-payloads`), when it exists
/// beside the repository.
pub fn shared_payloads() -> Option<Vec<Fixture>> {
    let dir = repo_root()
        .parent()?
        .join("shared")
        .join("webhook-payloads");
    dir.is_dir().then(|| fixtures_in(&dir))
}

/// `X-Hub-Signature-256` for `body` under `secret`, computed independently of gma's own code.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A webhook delivery to send.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `X-GitHub-Delivery`.
    pub id: String,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The raw body.
    pub body: Vec<u8>,
    /// `Content-Type`.
    pub content_type: String,
    /// `X-Hub-Signature-256`, if any.
    pub signature: Option<String>,
    /// Further headers.
    pub extra: Vec<(String, String)>,
}

impl Delivery {
    /// A JSON delivery signed with `secret`.
    pub fn json(id: &str, event: &str, body: impl Into<Vec<u8>>, secret: &str) -> Self {
        let body = body.into();
        Self {
            id: id.into(),
            event: event.into(),
            signature: Some(sign(secret, &body)),
            body,
            content_type: "application/json".into(),
            extra: Vec::new(),
        }
    }

    /// Sends it to `base_url` + `/webhook` and returns the status and the JSON body.
    ///
    /// # Errors
    /// The client's error when the request fails (connection refused, reset).
    pub async fn send(
        &self,
        client: &reqwest::Client,
        base_url: &str,
    ) -> reqwest::Result<(u16, serde_json::Value)> {
        let mut request = client
            .post(format!("{base_url}/webhook"))
            .header("content-type", &self.content_type)
            .header("x-github-delivery", &self.id)
            .header("x-github-event", &self.event)
            .body(self.body.clone());
        if let Some(signature) = &self.signature {
            request = request.header("x-hub-signature-256", signature);
        }
        for (name, value) in &self.extra {
            request = request.header(name, value);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Ok((status, json))
    }
}

/// A `gma serve` child process on a free loopback port.
pub struct GmaServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The data directory it writes.
    pub data_dir: PathBuf,
    /// Where its logs go.
    pub log_path: PathBuf,
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the loopback interface has free ports")
}

impl GmaServer {
    /// Starts `binary serve` on `data_dir` with `secret` and waits until `/healthz` answers 200.
    ///
    /// # Panics
    /// When the process cannot start or is not healthy within 30 seconds (its log is printed).
    pub async fn start(binary: &Path, data_dir: &Path, secret: &str, extra_args: &[&str]) -> Self {
        let port = free_port();
        let log_path = data_dir.with_extension(format!("{port}.log"));
        let log = std::fs::File::create(&log_path).expect("creating the server log");
        let child = Command::new(binary)
            .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra_args)
            .env("GITHUB_WEBHOOK_SECRET", secret)
            .env("GMA_LOG", "info,gma_ingest=debug")
            .env_remove("GMA_WEBHOOK_SECRETS")
            .env_remove("GMA_WEBHOOK_SECRETS_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting gma serve");
        let server = Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
            log_path,
        };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let response = client
                .get(format!("{}/healthz", self.base_url))
                .send()
                .await;
            if response.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gma serve did not become healthy; its log:\n{}", self.log());
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Kills the process with SIGKILL: no shutdown code runs.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit, returning its status code.
    ///
    /// # Panics
    /// When the process does not exit within 60 seconds.
    pub fn terminate(&mut self) -> Option<i32> {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pids fit pid_t");
        // SAFETY: kill(2) with a pid we spawned and a valid signal number has no memory effects.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                self.kill_hard();
                panic!(
                    "gma serve did not exit after SIGTERM; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for GmaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
