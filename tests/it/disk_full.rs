//! A full disk: deliveries that cannot be made durable get 503 and are not stored, everything
//! acknowledged before stays, and the server recovers once space is freed.
//!
//! The disk is a 4 MiB tmpfs mounted for the test. As root (CI runs as root) it is mounted
//! directly; otherwise the test runs itself again inside an unprivileged user and mount namespace
//! (`unshare --user --map-root-user --mount`), where it may mount one. When neither works it says
//! so on stderr with a `SKIPPED:` line, and fails instead under `CI=true`, so CI cannot skip it
//! silently.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gma_testkit::Delivery;

use crate::support::{SECRET, TestApp};

/// This test's name, to run it alone in a namespace.
const TEST: &str = "disk_full::a_full_disk_answers_503_stores_nothing_partial_and_recovers";

/// Set in the copy of the test running inside the namespace.
const IN_NAMESPACE: &str = "GMA_DISK_FULL_IN_NAMESPACE";

/// What `unshare` runs the test in: a user namespace where the test's user is root, and a mount
/// namespace of its own.
const UNSHARE: [&str; 3] = ["--user", "--map-root-user", "--mount"];

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(path: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Self(path.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test]
async fn a_full_disk_answers_503_stores_nothing_partial_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mount_point = dir.path().join("disk");
    if let Some(mount) = Mount::tmpfs(&mount_point, "4m") {
        fill_and_recover(dir, &mount_point, mount).await;
    } else if std::env::var_os(IN_NAMESPACE).is_some() {
        panic!("cannot mount a tmpfs even as root of a user namespace");
    } else if let Some(output) = rerun_in_a_user_namespace() {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains("test result: ok. 1 passed"),
            "the test failed inside a user namespace:\n{stdout}\n{stderr}"
        );
    } else {
        skip();
    }
}

/// Runs this test alone again as root of a new user and mount namespace; `None` when this
/// machine allows no such namespace (or has no `unshare`).
fn rerun_in_a_user_namespace() -> Option<Output> {
    let probe = Command::new("unshare")
        .args(UNSHARE)
        .arg("true")
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    if !probe.success() {
        return None;
    }
    let output = Command::new("unshare")
        .args(UNSHARE)
        .arg(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture"])
        .env(IN_NAMESPACE, "1")
        .output()
        .unwrap();
    Some(output)
}

/// Says loudly that the test checked nothing (on the real stderr, which the test harness does not
/// capture), and fails under `CI=true`.
fn skip() {
    let message = format!(
        "SKIPPED: {TEST} needs root (or unprivileged user namespaces) to mount a small tmpfs; \
         it checked nothing"
    );
    let _ = writeln!(std::io::stderr(), "{message}");
    assert!(
        !std::env::var("CI").is_ok_and(|ci| ci == "true"),
        "{message}, and CI=true forbids skipping it"
    );
}

/// Fills the disk at `mount_point` under a server writing to it, then frees it.
async fn fill_and_recover(dir: tempfile::TempDir, mount_point: &Path, _mount: Mount) {
    let data = mount_point.join("data");
    let app = TestApp::in_dir(dir, data.clone(), |_| {}).await;
    let filler = mount_point.join("filler");
    std::fs::write(&filler, vec![0u8; 3 * 1024 * 1024]).unwrap();

    let body = |i: usize| format!(r#"{{"action":"a","i":{i},"pad":"{}"}}"#, "z".repeat(60_000));
    let mut landed = 0;
    let mut refused = Vec::new();
    for i in 0..40 {
        let d = Delivery::json(&format!("full-{i}"), "push", body(i), SECRET);
        let (status, json) = d.send(&app.client, &app.base_url).await.unwrap();
        match status {
            201 => landed += 1,
            503 => {
                assert!(
                    json["error"]
                        .as_str()
                        .unwrap()
                        .contains("nothing was stored"),
                    "{json}"
                );
                refused.push(d);
            }
            other => panic!("delivery {i}: unexpected {other} {json}"),
        }
    }
    assert!(
        landed > 0 && !refused.is_empty(),
        "landed {landed}, refused {}",
        refused.len()
    );
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 503, "a full disk is unhealthy");

    std::fs::remove_file(&filler).unwrap();
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200, "healthy again once space is freed");
    for d in &refused {
        assert_eq!(app.status_of(d).await, 201, "{}", d.id);
    }
    let rows = app
        .query("SELECT COUNT(*) AS n, COUNT(DISTINCT delivery_id) AS d FROM events")
        .await;
    assert_eq!(rows[0]["n"].as_i64(), Some(40));
    assert_eq!(rows[0]["d"].as_i64(), Some(40));
}
