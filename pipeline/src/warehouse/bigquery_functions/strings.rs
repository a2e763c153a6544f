//! BigQuery's string functions where DataFusion's differ.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};

use super::udf::function_with_signature;

/// The string functions.
pub fn functions() -> Vec<ScalarUDF> {
    vec![function_with_signature(
        "concat",
        Signature::variadic(vec![DataType::Utf8], Volatility::Immutable),
        DataType::Utf8,
        concat,
    )]
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
