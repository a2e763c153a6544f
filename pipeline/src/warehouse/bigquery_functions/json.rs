//! BigQuery's JSON extractors over JSON-formatted STRINGs, as GMA's views pass `payload`: a path
//! that matches nothing, JSON `null` and input that is not JSON all give SQL NULL; a malformed
//! JSONPath is an error naming the path. The path defaults to `$`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListBuilder, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Field};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::ScalarUDF;
use serde_json::value::RawValue;

use super::udf::function;

/// The JSON functions, standard and legacy names.
pub fn functions() -> Vec<ScalarUDF> {
    vec![
        scalar_udf("json_value", json_value),
        scalar_udf("json_extract_scalar", json_value),
        scalar_udf("json_query", json_query),
        scalar_udf("json_extract", json_query),
        array_udf("json_query_array", json_query_array),
        array_udf("json_extract_array", json_query_array),
        array_udf("json_value_array", json_value_array),
        array_udf("json_extract_string_array", json_value_array),
    ]
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
///
/// Walks the text once, down the path only: the members before the one looked for are skipped
/// (strings and nesting tracked, nothing allocated), the rest of the document is not read. So
/// a payload is not parsed in full by each of the dozens of JSON_VALUE calls a view makes on it
/// (bench/views.sh: 4 times faster than parsing per call).
///
/// What is checked: the path walked, the value found (parsed in full), and that the document
/// ends with the bracket it opened, so truncated input gives NULL as in BigQuery. Malformed
/// text elsewhere off the path is not seen; the payloads of gma's events table were checked
/// whole at ingest.
fn find<'a>(json: &'a str, steps: &[Step]) -> Option<&'a str> {
    let bytes = json.as_bytes();
    if steps.is_empty() {
        return serde_json::from_str::<&RawValue>(json)
            .ok()
            .map(|raw| raw.get());
    }
    let mut at = skip_space(bytes, 0);
    let closing = match bytes.get(at)? {
        b'{' => b'}',
        b'[' => b']',
        _ => return None,
    };
    if bytes.iter().rev().find(|b| !b.is_ascii_whitespace()) != Some(&closing) {
        return None;
    }
    for step in steps {
        at = match step {
            Step::Key(key) => member(bytes, at, key)?,
            Step::Index(index) => element(bytes, at, *index)?,
        };
    }
    let end = skip_value(bytes, at)?;
    let found = json.get(at..end)?;
    serde_json::from_str::<&RawValue>(found)
        .ok()
        .map(|raw| raw.get())
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(at) {
        at += 1;
    }
    at
}

/// The end (past the closing quote) of the string starting at `at` (its opening quote).
fn skip_string(bytes: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        i += memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
        if bytes[i] == b'"' {
            return Some(i + 1);
        }
        i += 2;
    }
}

/// The end of the value starting at `at`.
fn skip_value(bytes: &[u8], at: usize) -> Option<usize> {
    match *bytes.get(at)? {
        b'"' => skip_string(bytes, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            while let Some(&b) = bytes.get(i) {
                match b {
                    b'"' => {
                        i = skip_string(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let len = bytes[at..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                .unwrap_or(bytes.len() - at);
            (len > 0).then_some(at + len)
        }
    }
}

/// The start of the value of member `key` of the object starting at `at`.
fn member(bytes: &[u8], at: usize, key: &str) -> Option<usize> {
    if *bytes.get(at)? != b'{' {
        return None;
    }
    let mut i = skip_space(bytes, at + 1);
    loop {
        match *bytes.get(i)? {
            b'}' => return None,
            b'"' => {}
            _ => return None,
        }
        let end = skip_string(bytes, i)?;
        let raw = &bytes[i + 1..end - 1];
        let matches = if raw.contains(&b'\\') {
            std::str::from_utf8(&bytes[i..end])
                .ok()
                .and_then(|text| serde_json::from_str::<String>(text).ok())
                .is_some_and(|name| name == key)
        } else {
            raw == key.as_bytes()
        };
        i = skip_space(bytes, end);
        if *bytes.get(i)? != b':' {
            return None;
        }
        i = skip_space(bytes, i + 1);
        if matches {
            return Some(i);
        }
        i = skip_space(bytes, skip_value(bytes, i)?);
        match *bytes.get(i)? {
            b',' => i = skip_space(bytes, i + 1),
            _ => return None,
        }
    }
}

/// The start of element `index` of the array starting at `at`.
fn element(bytes: &[u8], at: usize, index: usize) -> Option<usize> {
    if *bytes.get(at)? != b'[' {
        return None;
    }
    let mut i = skip_space(bytes, at + 1);
    if *bytes.get(i)? == b']' {
        return None;
    }
    for _ in 0..index {
        i = skip_space(bytes, skip_value(bytes, i)?);
        match *bytes.get(i)? {
            b',' => i = skip_space(bytes, i + 1),
            _ => return None,
        }
    }
    Some(i)
}

/// JSON_VALUE: the scalar at the path as a string; NULL for objects, arrays and JSON null.
fn json_value(json: &str, steps: &[Step]) -> Option<String> {
    let raw = find(json, steps)?;
    match raw.as_bytes().first()? {
        b'"' => serde_json::from_str::<String>(raw).ok(),
        b'{' | b'[' | b'n' => None,
        _ => Some(raw.to_owned()),
    }
}

/// JSON_QUERY: the value at the path as compact JSON text; NULL for JSON null.
fn json_query(json: &str, steps: &[Step]) -> Option<String> {
    let raw = find(json, steps)?;
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

/// JSON_QUERY_ARRAY: the elements of the array at the path as compact JSON texts; NULL when the
/// value there is not an array.
fn json_query_array(json: &str, steps: &[Step]) -> StringList {
    let raw = find(json, steps)?;
    let elements: Vec<&RawValue> = serde_json::from_str(raw).ok()?;
    Some(elements.iter().map(|e| Some(compact(e.get()))).collect())
}

/// JSON_VALUE_ARRAY: the scalars of the array at the path as strings (JSON null as SQL NULL);
/// NULL when the value there is not an array or holds an object or an array.
fn json_value_array(json: &str, steps: &[Step]) -> StringList {
    let raw = find(json, steps)?;
    let elements: Vec<&RawValue> = serde_json::from_str(raw).ok()?;
    elements
        .iter()
        .map(|e| {
            let raw = e.get();
            match raw.as_bytes().first()? {
                b'{' | b'[' => None,
                b'n' => Some(None),
                b'"' => serde_json::from_str::<String>(raw).ok().map(Some),
                _ => Some(Some(raw.to_owned())),
            }
        })
        .collect()
}

/// Runs `extract` over the rows of (json, path), parsing each distinct path once.
fn each_row<T>(
    name: &str,
    args: &[ArrayRef],
    mut extract: impl FnMut(Option<(&str, &[Step])>) -> T,
) -> Result<Vec<T>> {
    let json = args[0].as_string::<i32>();
    let default_path = StringArray::new_repeated("$", json.len());
    let path = args.get(1).map_or(&default_path, |p| p.as_string::<i32>());
    let mut parsed: Option<(String, Vec<Step>)> = None;
    let mut out = Vec::with_capacity(json.len());
    for i in 0..json.len() {
        if json.is_null(i) || path.is_null(i) {
            out.push(extract(None));
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
        out.push(extract(Some((json.value(i), steps))));
    }
    Ok(out)
}

fn json_arguments() -> Vec<Vec<DataType>> {
    vec![vec![DataType::Utf8], vec![DataType::Utf8, DataType::Utf8]]
}

fn scalar_udf(name: &'static str, extract: fn(&str, &[Step]) -> Option<String>) -> ScalarUDF {
    function(
        name,
        json_arguments(),
        DataType::Utf8,
        move |args: &[ArrayRef]| {
            let values = each_row(name, args, |row| row.and_then(|(j, s)| extract(j, s)))?;
            Ok(Arc::new(StringArray::from(values)) as ArrayRef)
        },
    )
}

/// The type of JSON_QUERY_ARRAY's and JSON_VALUE_ARRAY's results.
fn string_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

/// An array of strings and NULLs, or NULL.
type StringList = Option<Vec<Option<String>>>;

fn array_udf(name: &'static str, extract: fn(&str, &[Step]) -> StringList) -> ScalarUDF {
    function(
        name,
        json_arguments(),
        string_list(),
        move |args: &[ArrayRef]| {
            let values = each_row(name, args, |row| row.and_then(|(j, s)| extract(j, s)))?;
            let mut out = ListBuilder::new(StringBuilder::new());
            for value in values {
                match value {
                    Some(items) => {
                        for item in items {
                            out.values().append_option(item);
                        }
                        out.append(true);
                    }
                    None => out.append(false),
                }
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn walks_only_the_path_but_refuses_broken_input() {
        let path = |p: &str| parse_path(p).unwrap();
        // Members before the one sought are skipped whatever they hold.
        let json =
            r#"{"x": {"y": ["}", "\"]", {"z": "{"}]}, "k\u0065y": 7, "a": [1, [2, 3]], "t": " "}"#;
        assert_eq!(json_value(json, &path("$.key")), Some("7".into()));
        assert_eq!(json_value(json, &path("$.a[1][1]")), Some("3".into()));
        assert_eq!(json_value(json, &path("$.a[2]")), None);
        assert_eq!(json_value(json, &path("$.x.y[2].z")), Some("{".into()));
        assert_eq!(json_value(json, &path("$.t")), Some(" ".into()));
        // Truncated input, a malformed value found, and a scalar document give NULL.
        assert_eq!(json_value(r#"{"a": 1, "b": 2"#, &path("$.a")), None);
        assert_eq!(json_value(r#"{"a": tru}"#, &path("$.a")), None);
        assert_eq!(json_query(r#"{"a": {"b": }}"#, &path("$.a")), None);
        assert_eq!(json_value("12", &path("$.a")), None);
        assert_eq!(json_value(r#"{"a": "x"#, &path("$.a")), None);
    }
}
