//! A full disk: deliveries that cannot be made durable get 503 and are not stored, everything
//! acknowledged before stays, and the server recovers once space is freed.
//!
//! The disk is a 4 MiB tmpfs mounted for the test, which needs root (CI runs as root). Without
//! the permission to mount, the test says so and checks nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use gma_testkit::Delivery;

use crate::support::{SECRET, TestApp};

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(path: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
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
    let Some(_mount) = Mount::tmpfs(&mount_point, "4m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); the full-disk test checked nothing"
        );
        return;
    };
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
