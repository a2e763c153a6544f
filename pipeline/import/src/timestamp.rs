//! The `received` timestamp in the forms BigQuery exports and people write it.
//!
//! - RFC 3339: `2026-01-01T00:00:00Z`, `2026-01-01T00:00:00.5+02:00`
//! - BigQuery's JSON export: `2026-01-01 00:00:00 UTC`, `2026-01-01 00:00:00.123456 UTC`
//! - BigQuery's CSV and query output: `2026-01-01 00:00:00.123456+00`
//! - no zone at all (`2026-01-01 00:00:00`), read as UTC as BigQuery does
//! - epoch numbers, JSON numbers or numeric strings: seconds (may have a fraction),
//!   milliseconds or microseconds, told apart by magnitude.

use chrono::NaiveDate;

/// Below this magnitude an epoch number is seconds (up to year 5138).
const MAX_SECONDS: f64 = 1e11;
/// Below this magnitude (and above [`MAX_SECONDS`]) it is milliseconds.
const MAX_MILLIS: f64 = 1e14;

/// Parses a `received` value given as a JSON string's content into microseconds since the
/// epoch (UTC).
///
/// # Errors
/// A message saying which forms are understood.
pub fn parse_text(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the timestamp is empty".into());
    }
    if text.bytes().all(|b| {
        b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+' || b == b'e' || b == b'E'
    }) && text.bytes().any(|b| b.is_ascii_digit())
        && !text.as_bytes()[1..].contains(&b'-')
    {
        let number: f64 = text
            .parse()
            .map_err(|_| format!("{text:?} is not a timestamp"))?;
        return parse_epoch(number, text.contains(['.', 'e', 'E']));
    }
    parse_datetime(text).ok_or_else(|| {
        format!(
            "{text:?} is not a timestamp gma reads (RFC 3339, \"2026-01-01 00:00:00[.ffffff] UTC\", \"...+00\", or epoch seconds/milliseconds/microseconds)"
        )
    })
}

/// Parses an epoch number: `fractional` says the JSON text had a fraction or exponent, which
/// only seconds have.
///
/// # Errors
/// A message when the number is out of range.
pub fn parse_epoch(number: f64, fractional: bool) -> Result<i64, String> {
    if !number.is_finite() {
        return Err(format!("{number} is not a timestamp"));
    }
    let magnitude = number.abs();
    let micros = if fractional || magnitude < MAX_SECONDS {
        number * 1e6
    } else if magnitude < MAX_MILLIS {
        number * 1e3
    } else {
        number
    };
    if micros.abs() > 9.2e18 {
        return Err(format!("{number} is out of the timestamp range"));
    }
    Ok(micros.round() as i64)
}

fn digits(bytes: &[u8], at: usize, n: usize) -> Option<i64> {
    let slice = bytes.get(at..at + n)?;
    slice.iter().try_fold(0i64, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}][ ]?[Z|UTC|±HH[:?MM]]?`.
fn parse_datetime(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let fraction = &b[start..i];
        if fraction.is_empty() || fraction.len() > 9 {
            return None;
        }
        for k in 0..6 {
            micros = micros * 10 + fraction.get(k).map_or(0, |d| i64::from(d - b'0'));
        }
    }
    let zone = text[i..].trim_start();
    let offset_secs = parse_zone(zone)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month as u32, day as u32)?;
    let days = date
        .signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1)?)
        .num_days();
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    seconds.checked_mul(1_000_000)?.checked_add(micros)
}

/// Seconds east of UTC of a zone suffix: empty, `Z`, `UTC`, `+HH`, `+HH:MM`, `+HHMM`.
fn parse_zone(zone: &str) -> Option<i64> {
    match zone {
        "" | "Z" | "z" | "UTC" | "utc" | "+00" | "+00:00" | "-00:00" => return Some(0),
        _ => {}
    }
    let b = zone.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours = digits(b, 1, 2)?;
    let minutes = match b.len() {
        3 => 0,
        5 => digits(b, 3, 2)?,
        6 if b[3] == b':' => digits(b, 4, 2)?,
        _ => return None,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

    #[test]
    fn reads_every_export_form() {
        for text in [
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00+00:00",
            "2026-01-01t00:00:00z",
            "2026-01-01 00:00:00 UTC",
            "2026-01-01 00:00:00+00",
            "2026-01-01 00:00:00",
            "2026-01-01T02:00:00+02:00",
            "2026-01-01T02:00:00+0200",
            "2025-12-31T19:00:00-05",
            "1767225600",
            "1767225600000",
            "1767225600000000",
            "1767225600.0",
        ] {
            assert_eq!(parse_text(text), Ok(T0), "{text}");
        }
        assert_eq!(
            parse_text("2026-01-01 00:00:00.123456 UTC"),
            Ok(T0 + 123_456)
        );
        assert_eq!(
            parse_text("2026-01-01 00:00:00.123456+00"),
            Ok(T0 + 123_456)
        );
        assert_eq!(parse_text("2026-01-01T00:00:00.5Z"), Ok(T0 + 500_000));
        assert_eq!(
            parse_text("2026-01-01T00:00:00.123456789Z"),
            Ok(T0 + 123_456)
        );
        assert_eq!(parse_text("1767225600.25"), Ok(T0 + 250_000));
        assert_eq!(parse_text("1969-12-31T23:59:59Z"), Ok(-1_000_000));
        assert_eq!(parse_epoch(1_767_225_600.0, false), Ok(T0));
        assert_eq!(parse_epoch(1.7672256e15, false), Ok(T0));
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for text in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30 00:00:00",
            "2026-01-01T25:00:00Z",
            "2026-01-01",
            "2026-01-01T00:00:00 PST",
            "2026-01-01T00:00:00.Z",
            "2026/01/01 00:00:00",
            "12-34",
        ] {
            assert!(parse_text(text).is_err(), "{text:?} should be refused");
        }
        assert!(parse_epoch(f64::NAN, true).is_err());
        assert!(parse_epoch(1e30, true).is_err());
    }
}
