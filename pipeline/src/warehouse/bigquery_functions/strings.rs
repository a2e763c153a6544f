//! BigQuery's string functions where DataFusion's differ.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimestampMicrosecondType};
use datafusion::common::Result;
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};

use super::udf::function_with_signature;

/// The function `CAST(x AS STRING)` is rewritten to.
pub const CAST_TO_STRING: &str = "cast_to_string";

/// The string functions.
pub fn functions() -> Vec<ScalarUDF> {
    vec![
        function_with_signature(
            "concat",
            Signature::variadic(vec![DataType::Utf8], Volatility::Immutable),
            DataType::Utf8,
            concat,
        ),
        function_with_signature(
            CAST_TO_STRING,
            Signature::any(1, Volatility::Immutable),
            DataType::Utf8,
            cast_to_string,
        ),
    ]
}

/// CAST(x AS STRING) with BigQuery's text of a TIMESTAMP (`2026-01-07 13:45:30.25+00`);
/// other types as DataFusion casts them, which is BigQuery's text for integers, strings, BOOL and
/// DATE.
fn cast_to_string(args: &[ArrayRef]) -> Result<ArrayRef> {
    let input = &args[0];
    if let DataType::Timestamp(_, _) = input.data_type() {
        let micros = cast(
            input,
            &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
        )?;
        let micros = micros.as_primitive::<TimestampMicrosecondType>();
        let mut out = StringBuilder::with_capacity(micros.len(), micros.len() * 26);
        for value in micros {
            match value.and_then(chrono::DateTime::from_timestamp_micros) {
                Some(time) => out.append_value(format!(
                    "{}:{}+00",
                    time.format("%Y-%m-%d %H:%M"),
                    super::time::seconds_with_fraction(&time)
                )),
                None => out.append_null(),
            }
        }
        return Ok(Arc::new(out.finish()));
    }
    Ok(cast(input, &DataType::Utf8)?)
}

/// CONCAT(a, b, ...): NULL when any argument is NULL, as in BigQuery (DataFusion's own `concat`
/// skips NULLs, as PostgreSQL's does).
fn concat(args: &[ArrayRef]) -> Result<ArrayRef> {
    let strings: Vec<_> = args.iter().map(|a| a.as_string::<i32>()).collect();
    let rows = strings.first().map_or(0, |s| s.len());
    let mut out = StringBuilder::with_capacity(rows, rows * 16);
    for row in 0..rows {
        if strings.iter().any(|s| s.is_null(row)) {
            out.append_null();
            continue;
        }
        let text: String = strings.iter().map(|s| s.value(row)).collect();
        out.append_value(text);
    }
    Ok(Arc::new(out.finish()))
}
