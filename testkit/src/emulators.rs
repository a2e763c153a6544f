//! The emulators the tests talk to (started by `.ci/emulators`): fresh, uniquely named buckets
//! in fake-gcs-server, so tests run in parallel and re-run without clean-up.

use std::sync::atomic::{AtomicU64, Ordering};

/// A name no other test (or earlier run) uses: `prefix`, process id, time, counter.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// fake-gcs-server's address (`STORAGE_EMULATOR_HOST`).
///
/// # Panics
/// When it is not set, saying how to start the emulators.
pub fn gcs_host() -> String {
    std::env::var("STORAGE_EMULATOR_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| {
            panic!(
                "STORAGE_EMULATOR_HOST is not set: start fake-gcs-server with `bash .ci/emulators` \
                 (or `source .emu/env`) and run the tests again"
            )
        })
}

/// Creates a fresh bucket in fake-gcs-server and returns its name.
///
/// # Panics
/// When the emulator is not there or refuses.
pub async fn gcs_bucket(prefix: &str) -> String {
    let bucket = unique_name(prefix);
    let response = reqwest::Client::new()
        .post(format!("{}/storage/v1/b?project=test-project", gcs_host()))
        .json(&serde_json::json!({ "name": bucket }))
        .send()
        .await
        .expect("fake-gcs-server answers");
    assert!(
        response.status().is_success(),
        "creating bucket {bucket}: {}",
        response.status()
    );
    bucket
}

/// The names of every object in `bucket`.
///
/// # Panics
/// When the emulator is not there or refuses.
pub async fn gcs_object_names(bucket: &str) -> Vec<String> {
    let listing: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/storage/v1/b/{bucket}/o", gcs_host()))
        .send()
        .await
        .expect("fake-gcs-server answers")
        .json()
        .await
        .expect("a JSON listing");
    listing["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The bqemulator project to use (`GMA_BQ_EMULATOR_PROJECT`, default `test-project`), once
/// `BIGQUERY_EMULATOR_HOST` is checked to be set (which `BigQueryConfig::new` reads).
///
/// # Panics
/// When `BIGQUERY_EMULATOR_HOST` is not set, saying how to start the emulators.
pub fn bigquery_project() -> String {
    let host = std::env::var("BIGQUERY_EMULATOR_HOST").unwrap_or_default();
    assert!(
        !host.trim().is_empty(),
        "BIGQUERY_EMULATOR_HOST is not set: these tests need bqemulator; start it with \
         `bash .ci/emulators` and export what it prints (or run the tests through `.ci/run`)"
    );
    std::env::var("GMA_BQ_EMULATOR_PROJECT").unwrap_or_else(|_| "test-project".to_owned())
}

/// A dataset name no other test (or earlier run) uses, starting with `prefix`.
pub fn bigquery_dataset(prefix: &str) -> String {
    unique_name(prefix).replace('-', "_")
}
