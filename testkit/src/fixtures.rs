//! The webhook payload files the tests deliver: the project's own and, when it exists beside the
//! repository, the shared corpus.

use std::path::{Path, PathBuf};

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
