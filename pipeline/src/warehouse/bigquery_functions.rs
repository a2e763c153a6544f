//! BigQuery's functions for DataFusion, so the same SQL text runs on both backends.
//!
//! Each function is a [`ScalarUDF`] listed in [`functions`], and [`register_all`] registers the
//! list. BigQuery's date-part arguments (`TIMESTAMP_DIFF(a, b, SECOND)`) are bare identifiers that
//! DataFusion would resolve as columns, so [`rewrite_date_parts`] turns them into string literals
//! before planning.
//!
//! To add a function: write a constructor returning its `ScalarUDF` (lowercase name), add it to
//! [`functions`], and test it here with scalar and column inputs.
//!
//! JSON functions take JSON-formatted STRINGs, as GMA's views pass `payload`: a path that matches
//! nothing, JSON `null` and input that is not JSON all give SQL NULL; a malformed JSONPath is an
//! error naming the path.

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Statement, Value, visit_expressions_mut,
};
use serde_json::value::RawValue;

use crate::schema::UTC;

/// Every BigQuery function gma provides on DataFusion.
pub fn functions() -> Vec<ScalarUDF> {
    vec![
        json_udf("json_value", json_value),
        json_udf("json_extract_scalar", json_value),
        json_udf("json_query", json_query),
        json_udf("json_extract", json_query),
        timestamp_diff(),
    ]
}

/// Registers [`functions`] in `ctx`.
pub fn register_all(ctx: &SessionContext) {
    for function in functions() {
        ctx.register_udf(function);
    }
}

/// Functions whose date-part argument is a bare identifier in BigQuery, and its position.
const DATE_PART_ARGUMENTS: &[(&str, usize)] = &[("timestamp_diff", 2)];

/// Turns the date-part identifiers of [`DATE_PART_ARGUMENTS`] into string literals, so that
/// `TIMESTAMP_DIFF(a, b, SECOND)` plans as `timestamp_diff(a, b, 'SECOND')`.
pub fn rewrite_date_parts(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Function(function) = expr {
            let name = function.name.to_string().to_ascii_lowercase();
            let position = DATE_PART_ARGUMENTS
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, position)| *position);
            if let (Some(position), FunctionArguments::List(list)) = (position, &mut function.args)
                && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))) =
                    list.args.get_mut(position)
                && let Expr::Identifier(ident) = arg
            {
                *arg = Expr::value(Value::SingleQuotedString(ident.value.clone()));
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// One step of a JSONPath.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Parses BigQuery's JSONPath: `$`, then `.key`, `."quoted key"`, `['key']`, `["key"]` or `[n]`.
fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let rest = path.strip_prefix('$').ok_or("a JSONPath starts with $")?;
    let mut steps = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' if chars.peek() == Some(&'"') => {
                chars.next();
                let key: String = chars.by_ref().take_while(|c| *c != '"').collect();
                steps.push(Step::Key(key));
            }
            '.' => {
                let mut key = String::new();
                while let Some(c) = chars.peek().copied().filter(|c| *c != '.' && *c != '[') {
                    key.push(c);
                    chars.next();
                }
                if key.is_empty() {
                    return Err("a '.' must be followed by a key".into());
                }
                steps.push(Step::Key(key));
            }
            '[' => {
                let inner: String = chars.by_ref().take_while(|c| *c != ']').collect();
                let quoted = ['\'', '"'].iter().find_map(|q| {
                    inner
                        .strip_prefix(*q)
                        .and_then(|s| s.strip_suffix(*q))
                        .map(str::to_owned)
                });
                match quoted {
                    Some(key) => steps.push(Step::Key(key)),
                    None => {
                        steps.push(Step::Index(inner.trim().parse().map_err(|_| {
                            format!("[{inner}] is neither an index nor a quoted key")
                        })?))
                    }
                }
            }
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    Ok(steps)
}

/// The raw JSON text at `steps` inside `json`, if there is a value there.
fn find<'a>(json: &'a str, steps: &[Step]) -> Option<&'a RawValue> {
    let mut current: &'a RawValue = serde_json::from_str(json).ok()?;
    for step in steps {
        current = match step {
            Step::Key(key) => {
                let object: std::collections::HashMap<std::borrow::Cow<'a, str>, &'a RawValue> =
                    serde_json::from_str(current.get()).ok()?;
                *object.get(key.as_str())?
            }
            Step::Index(index) => {
                let array: Vec<&'a RawValue> = serde_json::from_str(current.get()).ok()?;
                *array.get(*index)?
            }
        };
    }
    Some(current)
}

/// JSON_VALUE: the scalar at the path as a string; NULL for objects, arrays and JSON null.
fn json_value(json: &str, steps: &[Step]) -> Option<String> {
    let raw = find(json, steps)?.get();
    match raw.as_bytes().first()? {
        b'"' => serde_json::from_str::<String>(raw).ok(),
        b'{' | b'[' | b'n' => None,
        _ => Some(raw.to_owned()),
    }
}

/// JSON_QUERY: the value at the path as compact JSON text; NULL for JSON null.
fn json_query(json: &str, steps: &[Step]) -> Option<String> {
    let raw = find(json, steps)?.get();
    (raw != "null").then(|| compact(raw))
}

/// Removes the white space between JSON tokens, keeping strings and numbers as written.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

fn all_scalars(args: &[ColumnarValue]) -> bool {
    args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)))
}

/// The result column, or a scalar when every argument was one.
fn finish(array: ArrayRef, scalar: bool) -> Result<ColumnarValue> {
    if scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &array, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

fn json_udf(name: &'static str, extract: fn(&str, &[Step]) -> Option<String>) -> ScalarUDF {
    let function = move |args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let (json, path) = (arrays[0].as_string::<i32>(), arrays[1].as_string::<i32>());
        let mut parsed: Option<(String, Vec<Step>)> = None;
        let mut out = StringBuilder::with_capacity(json.len(), json.len() * 8);
        for i in 0..json.len() {
            if json.is_null(i) || path.is_null(i) {
                out.append_null();
                continue;
            }
            let text = path.value(i);
            if parsed.as_ref().is_none_or(|(cached, _)| cached != text) {
                let steps = parse_path(text).map_err(|reason| {
                    DataFusionError::Execution(format!(
                        "{}: invalid JSONPath {text:?}: {reason}",
                        name.to_ascii_uppercase()
                    ))
                })?;
                parsed = Some((text.to_owned(), steps));
            }
            let steps = parsed
                .as_ref()
                .map(|(_, steps)| steps.as_slice())
                .unwrap_or_default();
            out.append_option(extract(json.value(i), steps));
        }
        finish(Arc::new(out.finish()), all_scalars(args))
    };
    create_udf(
        name,
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(function),
    )
}

/// Microseconds per date part TIMESTAMP_DIFF accepts.
fn micros_per(part: &str) -> Option<i64> {
    Some(match part.to_ascii_uppercase().as_str() {
        "MICROSECOND" => 1,
        "MILLISECOND" => 1_000,
        "SECOND" => 1_000_000,
        "MINUTE" => 60_000_000,
        "HOUR" => 3_600_000_000,
        "DAY" => 86_400_000_000,
        _ => return None,
    })
}

/// TIMESTAMP_DIFF(a, b, part): whole `part`s from `b` to `a`, truncated toward zero.
fn timestamp_diff() -> ScalarUDF {
    let function = |args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let a = arrays[0].as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        let b = arrays[1].as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        let part = arrays[2].as_string::<i32>();
        let mut out = Int64Builder::with_capacity(a.len());
        for i in 0..a.len() {
            if a.is_null(i) || b.is_null(i) || part.is_null(i) {
                out.append_null();
                continue;
            }
            let unit = micros_per(part.value(i)).ok_or_else(|| {
                DataFusionError::Execution(format!(
                    "TIMESTAMP_DIFF: unsupported date part {:?}; use MICROSECOND, MILLISECOND, SECOND, MINUTE, HOUR or DAY",
                    part.value(i)
                ))
            })?;
            out.append_value((a.value(i) - b.value(i)) / unit);
        }
        finish(Arc::new(out.finish()), all_scalars(args))
    };
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()));
    create_udf(
        "timestamp_diff",
        vec![timestamp.clone(), timestamp, DataType::Utf8],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(function),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_and_lowercase() {
        let names: Vec<String> = functions().iter().map(|f| f.name().to_owned()).collect();
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(names.iter().all(|n| *n == n.to_ascii_lowercase()));
    }

    #[test]
    fn parses_bigquery_json_paths() {
        use Step::{Index, Key};
        assert_eq!(parse_path("$").unwrap(), []);
        assert_eq!(
            parse_path("$.a.b[2]").unwrap(),
            [Key("a".into()), Key("b".into()), Index(2)]
        );
        assert_eq!(
            parse_path("$['a.b'][\"c\"].\"d e\"").unwrap(),
            [Key("a.b".into()), Key("c".into()), Key("d e".into())]
        );
        for bad in ["a", "$.", "$[x]", "$a"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn extracts_like_bigquery() {
        let json = r#"{"a": {"b": [10, "x\"y", true, null, {"c": 1.50}]}, "s": "hi"}"#;
        let path = |p: &str| parse_path(p).unwrap();
        assert_eq!(json_value(json, &path("$.s")), Some("hi".into()));
        assert_eq!(json_value(json, &path("$.a.b[0]")), Some("10".into()));
        assert_eq!(json_value(json, &path("$.a.b[1]")), Some("x\"y".into()));
        assert_eq!(json_value(json, &path("$.a.b[2]")), Some("true".into()));
        assert_eq!(json_value(json, &path("$.a.b[3]")), None);
        assert_eq!(json_value(json, &path("$.a.b")), None);
        assert_eq!(json_value(json, &path("$.missing")), None);
        assert_eq!(json_value("not json", &path("$.a")), None);
        assert_eq!(
            json_query(json, &path("$.a.b[4]")),
            Some(r#"{"c":1.50}"#.into())
        );
        assert_eq!(json_query(json, &path("$.s")), Some(r#""hi""#.into()));
        assert_eq!(json_query(json, &path("$.a.b[3]")), None);
        assert_eq!(
            compact("{ \"a b\" : [ 1 , \"x \\\" y\" ] }"),
            r#"{"a b":[1,"x \" y"]}"#
        );
    }

    #[tokio::test]
    async fn run_in_sql_with_scalar_and_column_inputs() {
        let ctx = SessionContext::new_with_config(
            datafusion::prelude::SessionConfig::new()
                .set_str("datafusion.sql_parser.dialect", "BigQuery"),
        );
        register_all(&ctx);
        let sql = r#"SELECT JSON_VALUE(j, '$.n') AS n, JSON_QUERY(j, "$.o") AS o,
                            JSON_EXTRACT_SCALAR('{"k":"v"}', '$.k') AS k
                     FROM (SELECT '{"n": 7, "o": {"p": [1, 2]}}' AS j UNION ALL SELECT '{}' AS j)
                     ORDER BY n"#;
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(text.contains("| 7 | {\"p\":[1,2]} | v |"), "{text}");
        let error = ctx
            .sql("SELECT JSON_VALUE('{}', 'a.b')")
            .await
            .unwrap()
            .collect()
            .await;
        assert!(error.unwrap_err().to_string().contains("invalid JSONPath"));
    }
}
