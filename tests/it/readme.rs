//! README.md's commands work as written: the test command is what CI runs, and the signed curl
//! example lands an event that the query example reads back.

use std::process::Command;

use gma_testkit::{GmaServer, repo_root};

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).unwrap()
}

/// The body of the first ```sh block after `heading`.
fn sh_block_after(text: &str, heading: &str) -> String {
    let rest = &text[text
        .find(heading)
        .unwrap_or_else(|| panic!("README lacks {heading:?}"))..];
    let start = rest.find("```sh\n").unwrap() + "```sh\n".len();
    let end = rest[start..].find("```").unwrap();
    rest[start..start + end].to_owned()
}

#[test]
fn ci_runs_exactly_the_readme_test_command() {
    let command = sh_block_after(&readme(), "Run the test suite");
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap();
    assert!(
        ci.lines()
            .any(|line| !line.trim_start().starts_with('#') && line.contains(command.trim())),
        ".ci/run does not run README's test command {command:?}"
    );
}

#[tokio::test]
async fn the_curl_example_lands_an_event() {
    let tools = Command::new("bash")
        .args(["-c", "command -v curl && command -v openssl"])
        .output()
        .unwrap();
    assert!(
        tools.status.success(),
        "README's example needs curl and openssl; .ci/run installs them"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = GmaServer::start(crate::support::gma(), &data, "change-me", &[]).await;
    let script = sh_block_after(&readme(), "## Send a signed test webhook")
        .replace("http://localhost:8080", &server.base_url)
        .replace("curl -i", "curl -sS -o /dev/null -w '%{http_code}'");
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout,
        "201",
        "{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
    let rows =
        crate::support::query_dir(&data, "SELECT action, repository, sender FROM events").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["repository"], "octo/hello");
}
