//! BigQuery's arithmetic and hashing functions that DataFusion lacks or computes differently.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::ScalarUDF;

use super::udf::function;

/// The numeric functions.
pub fn functions() -> Vec<ScalarUDF> {
    vec![
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
