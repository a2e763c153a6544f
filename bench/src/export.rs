//! Pieces shared by the generators of GMA-export NDJSON (`gma-import-gen`, `gma-views-gen`):
//! cheap well-spread numbers from a counter, UUID-shaped delivery ids, signatures and BigQuery's
//! JSON export form of timestamps.

/// splitmix64: cheap, well-spread 64-bit values from a counter.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A UUID-shaped delivery id from two random words.
pub fn delivery_id(a: u64, b: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// A `sha256=` signature of 64 hex digits derived from `a` (not a real HMAC: nothing checks it).
pub fn signature(a: u64) -> String {
    format!(
        "sha256={:016x}{:016x}{:016x}{:016x}",
        mix(a ^ 1),
        mix(a ^ 2),
        mix(a ^ 3),
        mix(a ^ 4)
    )
}

/// `YYYY-MM-DD HH:MM:SS.ffffff UTC` of microseconds since the epoch.
pub fn chrono_like(micros: i64) -> String {
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
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
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
