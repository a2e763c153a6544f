//! Sizes on the command line: `512MiB`, `2G`, `1.5GiB`, `800MB`, or plain bytes.

/// Parses a size in bytes. `K`, `M`, `G`, `T` and `KiB`, `MiB`, `GiB`, `TiB` are powers of 1024
/// (as `docker --memory` and DataFusion read them); `KB`, `MB`, `GB`, `TB` are powers of 1000;
/// `B` or no unit is bytes. Units ignore case; a space before the unit is allowed.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a size; write e.g. 512MiB, 2G, 1.5GiB or 1073741824");
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(bad());
    }
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" => 1 << 10,
        "m" | "mi" | "mib" => 1 << 20,
        "g" | "gi" | "gib" => 1 << 30,
        "t" | "ti" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(multiplier).ok_or_else(bad);
    }
    let fraction: f64 = number.parse().map_err(|_| bad())?;
    let bytes = (fraction * multiplier as f64).round();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Parses a memory limit: a size ([`parse_size`]) of at least 1 MiB, as a `usize`.
pub fn parse_memory_limit(text: &str) -> Result<usize, String> {
    let bytes = parse_size(text)?;
    if bytes < 1 << 20 {
        return Err(format!(
            "{text:?} is too small for a memory limit; give at least 1MiB (queries need a few MiB to spill)"
        ));
    }
    usize::try_from(bytes)
        .map_err(|_| format!("{text:?} is more memory than this machine can address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_binary_and_decimal_units_and_plain_bytes() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("8mib"), Ok(8 << 20));
        assert_eq!(parse_size("800MB"), Ok(800_000_000));
        assert_eq!(parse_size("64 K"), Ok(64 << 10));
        assert_eq!(parse_size("1073741824"), Ok(1 << 30));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size(" 1T "), Ok(1 << 40));
        for bad in [
            "",
            "MiB",
            "12XB",
            "1.2.3G",
            "-1G",
            "G2",
            "99999999999999999999T",
        ] {
            assert!(parse_size(bad).unwrap_err().contains("not a size"), "{bad}");
        }
    }

    #[test]
    fn a_memory_limit_is_at_least_one_mib() {
        assert_eq!(parse_memory_limit("1MiB"), Ok(1 << 20));
        assert!(
            parse_memory_limit("1000KB")
                .unwrap_err()
                .contains("at least 1MiB")
        );
        assert!(
            parse_memory_limit("0")
                .unwrap_err()
                .contains("at least 1MiB")
        );
        assert!(
            parse_memory_limit("lots")
                .unwrap_err()
                .contains("not a size")
        );
    }
}
