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

/// splitmix64: cheap, well-spread 64-bit values from a counter.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
            let id = format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xfff,
                b >> 52,
                b & 0xffff_ffff_ffff
            );
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
            line.push_str("\",\"signature\":\"sha256=");
            line.push_str(&format!(
                "{:016x}{:016x}{:016x}{:016x}",
                mix(a ^ 1),
                mix(a ^ 2),
                mix(a ^ 3),
                mix(a ^ 4)
            ));
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

/// `YYYY-MM-DD HH:MM:SS.ffffff UTC` of microseconds since the epoch.
fn chrono_like(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{frac:06} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil conversion.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bigquery_export_timestamps() {
        assert_eq!(
            chrono_like(1_767_225_600_000_000),
            "2026-01-01 00:00:00.000000 UTC"
        );
        assert_eq!(
            chrono_like(1_772_323_199_123_456),
            "2026-02-28 23:59:59.123456 UTC"
        );
    }
}
