//! Writes the input of the import benchmark: NDJSON files in GMA's BigQuery export shape
//! (`delivery_id`, `signature`, `received`, `event`, `payload` as a JSON string), built from
//! the repository's webhook fixtures.
//!
//! ```sh
//! gma-import-gen --out /tmp/export --bytes 1073741824 --files 8
//! ```
//!
//! Every line has its own delivery id (UUID-shaped, from a counter and a seed), a signature
//! (64 hex digits), a `received` timestamp in BigQuery's JSON export form
//! (`2026-01-01 00:00:00.123456 UTC`) that moves forward over `--days` days, and a fixture
//! payload with the line's id inserted as its first key, so no two payloads are the same. The
//! files are written until their total reaches `--bytes`. Prints one JSON line with what it
//! wrote.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use clap::Parser;

mod export;
use export::{chrono_like, delivery_id, mix, signature};

/// Generates NDJSON in GMA's export shape for `gma import`'s benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Directory to write `part-NNN.ndjson` files to (created).
    #[arg(long)]
    out: PathBuf,
    /// Total bytes to write, at least.
    #[arg(long, default_value_t = 1 << 30)]
    bytes: u64,
    /// Number of files.
    #[arg(long, default_value_t = 8)]
    files: u64,
    /// Days the `received` timestamps span, from 2026-01-01.
    #[arg(long, default_value_t = 30)]
    days: u64,
    /// Directory of `<event>/<name>.payload.json` fixtures.
    #[arg(long, default_value = "testdata/webhooks")]
    payloads: PathBuf,
    /// Seed of the delivery ids, so two runs can make disjoint (or equal) data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn fixtures(dir: &PathBuf) -> Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    for event in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let event = event?;
        if !event.file_type()?.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(event.path())? {
            let path = file?.path();
            if path.to_string_lossy().ends_with(".payload.json") {
                let text = std::fs::read_to_string(&path)?;
                let name = event.file_name().to_string_lossy().into_owned();
                found.push((name, text));
            }
        }
    }
    found.sort();
    ensure!(
        !found.is_empty(),
        "no *.payload.json under {}",
        dir.display()
    );
    Ok(found)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let payloads = fixtures(&args.payloads)?;
    std::fs::create_dir_all(&args.out)?;
    let per_file = args.bytes.div_ceil(args.files.max(1));
    // Average spacing of `received` so that the timestamps span about `days` days.
    let average_line = payloads
        .iter()
        .map(|(_, p)| p.len() as u64 + 300)
        .sum::<u64>()
        / payloads.len() as u64;
    let lines_expected = (args.bytes / average_line).max(1);
    let step_micros = (args.days * 86_400_000_000 / lines_expected).max(1);
    let start_micros: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
    let mut n: u64 = 0;
    let mut total = 0u64;
    let mut line = String::new();
    for file in 0..args.files.max(1) {
        let path = args.out.join(format!("part-{file:03}.ndjson"));
        let mut out = BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        let mut written = 0u64;
        while written < per_file {
            let a = mix(args.seed ^ mix(n));
            let b = mix(a);
            let id = delivery_id(a, b);
            let (event, payload) = &payloads[(n as usize) % payloads.len()];
            let jitter = (b % 1_000_000) as i64;
            let micros = start_micros + (n * step_micros) as i64 + jitter;
            let received = chrono_like(micros);
            // The fixture with this line's id as its first key: valid JSON, unique per line.
            let body = payload.trim_start();
            let body = format!("{{\"gma_bench_id\":\"{id}\",{}", &body[1..]);
            line.clear();
            line.push_str("{\"delivery_id\":\"");
            line.push_str(&id);
            line.push_str("\",\"signature\":\"");
            line.push_str(&signature(a));
            line.push_str("\",\"received\":\"");
            line.push_str(&received);
            line.push_str("\",\"event\":\"");
            line.push_str(event);
            line.push_str("\",\"payload\":");
            line.push_str(&serde_json::to_string(&body)?);
            line.push_str("}\n");
            out.write_all(line.as_bytes())?;
            written += line.len() as u64;
            n += 1;
        }
        out.flush()?;
        total += written;
    }
    println!(
        "{}",
        serde_json::json!({"mode": "generate", "files": args.files, "lines": n, "bytes": total,
                           "out": args.out.display().to_string()})
    );
    Ok(())
}
