//! The crate boundaries of docs/architecture.md ("Crates"), checked on cargo's own view of the
//! dependency graph: which workspace crate may depend on which, and which heavy dependencies
//! the lean crates must never build. A forbidden edge that comes back fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Every workspace crate and the workspace crates it may depend on (normal dependencies). An
/// optional dependency on `gma-testkit` behind a crate's `test-util` feature is allowed too: it
/// is built only for other crates' tests.
const ALLOWED: &[(&str, &[&str])] = &[
    ("gma-store", &[]),
    ("gma-ingest", &["gma-store"]),
    ("gma-pipeline", &["gma-store"]),
    ("gma-import", &["gma-pipeline", "gma-store"]),
    ("gma-retry", &["gma-pipeline", "gma-store"]),
    ("gma-leech", &["gma-pipeline", "gma-store"]),
    ("gma-refresh", &["gma-pipeline"]),
    (
        "gma",
        &[
            "gma-store",
            "gma-ingest",
            "gma-pipeline",
            "gma-import",
            "gma-retry",
            "gma-leech",
            "gma-refresh",
        ],
    ),
    ("gma-testkit", &[]),
    ("gma-bench", &["gma-testkit"]),
];

/// Crates the webhook server and the store must build without: the query engine, HTTP clients
/// and Google's auth.
const NOT_IN_LEAN_CRATES: &[&str] = &[
    "datafusion",
    "reqwest",
    "google-cloud-auth",
    "object_store",
    "jsonwebtoken",
];

fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("cargo prints UTF-8")
}

/// The workspace crates and, for each, the workspace crates among its normal dependencies.
fn workspace_edges() -> BTreeMap<String, BTreeSet<String>> {
    let metadata: Value =
        serde_json::from_str(&cargo(&["metadata", "--format-version", "1", "--no-deps"]))
            .expect("cargo metadata prints JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let members: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    packages
        .iter()
        .map(|package| {
            let deps = package["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .filter(|d| !(d["optional"] == true && d["name"] == "gma-testkit"))
                .filter_map(|d| d["name"].as_str())
                .filter(|name| members.contains(*name))
                .map(str::to_owned)
                .collect();
            (package["name"].as_str().expect("name").to_owned(), deps)
        })
        .collect()
}

/// Every package `crate_name` builds for its normal code, with `features` as cargo would.
fn builds(crate_name: &str, features: &[&str]) -> BTreeSet<String> {
    let mut args = vec![
        "tree",
        "--offline",
        "-p",
        crate_name,
        "-e",
        "normal,build",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ];
    args.extend_from_slice(features);
    cargo(&args)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn workspace_crates_depend_only_downwards() {
    let edges = workspace_edges();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (krate, deps) in &edges {
        let Some(permitted) = allowed.get(krate.as_str()) else {
            wrong.push(format!(
                "{krate} is not in ALLOWED: add it with the crates it may use"
            ));
            continue;
        };
        for dep in deps {
            if !permitted.contains(&dep.as_str()) {
                wrong.push(format!("{krate} depends on {dep}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "forbidden dependencies (docs/architecture.md, Crates): {wrong:?}"
    );
    assert_eq!(
        edges.len(),
        ALLOWED.len(),
        "ALLOWED names crates the workspace does not have"
    );
}

#[test]
fn the_store_and_the_webhook_server_build_no_query_engine_or_http_client() {
    for krate in ["gma-store", "gma-ingest"] {
        let built = builds(krate, &[]);
        assert!(built.contains(krate), "cargo tree lists {krate}: {built:?}");
        let heavy: Vec<_> = NOT_IN_LEAN_CRATES
            .iter()
            .filter(|name| built.contains(**name))
            .collect();
        assert!(heavy.is_empty(), "{krate} builds {heavy:?}");
    }
}

#[test]
fn cloud_backends_are_built_only_with_their_features() {
    let lean = builds("gma-pipeline", &["--no-default-features"]);
    assert!(lean.contains("datafusion"), "the local warehouse stays");
    assert!(
        !lean.contains("google-cloud-auth"),
        "gma-pipeline without features builds Google's auth"
    );
    let cloud = builds("gma-pipeline", &["--features", "bigquery,gcs"]);
    assert!(cloud.contains("google-cloud-auth"));
}
