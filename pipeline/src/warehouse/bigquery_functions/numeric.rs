//! BigQuery's arithmetic and hashing functions that DataFusion lacks or computes differently.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::ScalarUDF;

use arrow::compute::cast;
use datafusion::logical_expr::{Signature, Volatility};

use super::udf::{function, function_with_signature};

/// The functions `CAST(x AS INT64)` and `SAFE_CAST(x AS INT64)` are rewritten to.
pub const CAST_TO_INT64: &str = "cast_to_int64";
/// See [`CAST_TO_INT64`].
pub const SAFE_CAST_TO_INT64: &str = "safe_cast_to_int64";

/// The numeric functions.
pub fn functions() -> Vec<ScalarUDF> {
    vec![
        function_with_signature(
            CAST_TO_INT64,
            Signature::any(1, Volatility::Immutable),
            DataType::Int64,
            |args| cast_to_int64(args, false),
        ),
        function_with_signature(
            SAFE_CAST_TO_INT64,
            Signature::any(1, Volatility::Immutable),
            DataType::Int64,
            |args| cast_to_int64(args, true),
        ),
        function(
            "mod",
            vec![vec![DataType::Int64, DataType::Int64]],
            DataType::Int64,
            modulo,
        ),
        function(
            "safe_divide",
            vec![vec![DataType::Float64, DataType::Float64]],
            DataType::Float64,
            safe_divide,
        ),
        function(
            "farm_fingerprint",
            vec![vec![DataType::Utf8], vec![DataType::Binary]],
            DataType::Int64,
            farm_fingerprint,
        ),
    ]
}

/// CAST(x AS INT64) as BigQuery does it: a FLOAT64 rounds half away from zero (DataFusion
/// truncates), a STRING must be an integer (decimal, or hex with `0x`), anything else is cast by
/// DataFusion. Out of range or unparsable is an error, or NULL when `safe`.
fn cast_to_int64(args: &[ArrayRef], safe: bool) -> Result<ArrayRef> {
    let input = &args[0];
    let fail = |what: String| -> Result<Option<i64>> {
        if safe {
            Ok(None)
        } else {
            Err(DataFusionError::Execution(format!("CAST to INT64: {what}")))
        }
    };
    let out: Int64Array = match input.data_type() {
        DataType::Float64 | DataType::Float32 => {
            let floats = cast(input, &DataType::Float64)?;
            let mut out = Vec::with_capacity(floats.len());
            for value in floats.as_primitive::<Float64Type>() {
                out.push(match value {
                    None => None,
                    Some(f) => {
                        let rounded = f.round();
                        if rounded.is_finite() && rounded.abs() < 9.223_372_036_854_775e18 {
                            Some(rounded as i64)
                        } else {
                            fail(format!("{f} is out of range"))?
                        }
                    }
                });
            }
            out.into()
        }
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
            let text = cast(input, &DataType::Utf8)?;
            let mut out = Vec::with_capacity(text.len());
            for value in text.as_string::<i32>() {
                out.push(match value.map(str::trim) {
                    None => None,
                    Some(t) => match parse_int64(t) {
                        Some(n) => Some(n),
                        None => fail(format!("bad INT64 value {t:?}"))?,
                    },
                });
            }
            out.into()
        }
        _ => {
            let options = arrow::compute::CastOptions {
                safe,
                ..Default::default()
            };
            arrow::compute::cast_with_options(input, &DataType::Int64, &options)?
                .as_primitive::<Int64Type>()
                .clone()
        }
    };
    Ok(Arc::new(out))
}

/// An INT64 literal as BigQuery reads one in a cast: optional sign, decimal digits or `0x` hex.
fn parse_int64(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => i128::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<i128>().ok()?,
    };
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// MOD(x, y): the remainder of x / y with the sign of x; an error when y is 0, as in BigQuery.
fn modulo(args: &[ArrayRef]) -> Result<ArrayRef> {
    let x = args[0].as_primitive::<Int64Type>();
    let y = args[1].as_primitive::<Int64Type>();
    let mut out = Vec::with_capacity(x.len());
    for row in 0..x.len() {
        if x.is_null(row) || y.is_null(row) {
            out.push(None);
            continue;
        }
        if y.value(row) == 0 {
            return Err(DataFusionError::Execution(format!(
                "MOD: division by zero: {} / 0",
                x.value(row)
            )));
        }
        // wrapping_rem: i64::MIN % -1 is 0, not an overflow.
        out.push(Some(x.value(row).wrapping_rem(y.value(row))));
    }
    Ok(Arc::new(Int64Array::from(out)))
}

/// SAFE_DIVIDE(x, y): x / y as FLOAT64, NULL when y is 0 (or the result overflows).
fn safe_divide(args: &[ArrayRef]) -> Result<ArrayRef> {
    let x = args[0].as_primitive::<Float64Type>();
    let y = args[1].as_primitive::<Float64Type>();
    let out: Float64Array = x
        .iter()
        .zip(y.iter())
        .map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) if y != 0.0 => {
                Some(x / y).filter(|q| q.is_finite() || !x.is_finite())
            }
            _ => None,
        })
        .collect();
    Ok(Arc::new(out))
}

/// FARM_FINGERPRINT(value): FarmHash Fingerprint64 of the UTF-8 bytes, as a signed INT64.
fn farm_fingerprint(args: &[ArrayRef]) -> Result<ArrayRef> {
    let fingerprint = |bytes: &[u8]| farmhash::fingerprint64(bytes).cast_signed();
    let out: Int64Array = match args[0].data_type() {
        DataType::Binary => args[0]
            .as_binary::<i32>()
            .iter()
            .map(|v| v.map(fingerprint))
            .collect(),
        _ => args[0]
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(|s| fingerprint(s.as_bytes())))
            .collect(),
    };
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    #[test]
    fn fingerprints_match_bigquery() {
        // Values from BigQuery's documentation of FARM_FINGERPRINT (the CONCAT example) and a
        // published BigQuery result for "alphabet".
        for (text, expected) in [
            ("1footrue", -1_541_654_101_129_638_711_i64),
            ("2applefalse", 2_794_438_866_806_483_259),
            ("3true", -4_880_158_226_897_771_312),
            ("alphabet", -2_427_165_924_636_348_523),
        ] {
            assert_eq!(
                farmhash::fingerprint64(text.as_bytes()).cast_signed(),
                expected,
                "{text}"
            );
        }
    }
}
