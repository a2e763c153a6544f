//! BigQuery's JSON extractors over JSON-formatted STRINGs, as GMA's views pass `payload`: a path
//! that matches nothing, JSON `null` and input that is not JSON all give SQL NULL; a malformed
//! JSONPath is an error naming the path. The path defaults to `$`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListBuilder, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Field};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::ScalarUDF;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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

/// The raw JSON text at `steps` inside `json`, if there is a value there and `json` is valid
/// JSON.
///
/// One pass over the text: members off the path are skipped without being kept, the value at
/// the path is borrowed, and the rest is still read to the end so that invalid JSON gives NULL,
/// as in BigQuery. (Views call this once per column per row, on payloads of tens of KB.)
fn find<'a>(json: &'a str, steps: &[Step]) -> Option<&'a RawValue> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let found = Seek { steps }.deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    found
}

/// Reads one JSON value, keeping only the raw text at `steps` inside it.
struct Seek<'p> {
    steps: &'p [Step],
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = Option<&'de RawValue>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        if self.steps.is_empty() {
            return <&RawValue>::deserialize(deserializer).map(Some);
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let (key, rest) = match self.steps.split_first() {
            Some((Step::Key(key), rest)) => (Some(key.as_str()), rest),
            _ => (None, &[][..]),
        };
        let mut found = None;
        while let Some(matches) = map.next_key_seed(KeyIs(key))? {
            if matches && found.is_none() {
                found = map.next_value_seed(Seek { steps: rest })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let (index, rest) = match self.steps.split_first() {
            Some((Step::Index(index), rest)) => (Some(*index), rest),
            _ => (None, &[][..]),
        };
        let mut found = None;
        let mut at = 0;
        loop {
            if Some(at) == index {
                match seq.next_element_seed(Seek { steps: rest })? {
                    Some(value) => found = value,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            at += 1;
        }
        Ok(found)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Reads an object's key and tells whether it is the one sought, without keeping it.
struct KeyIs<'k>(Option<&'k str>);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(self.0 == Some(key))
    }
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

/// JSON_QUERY_ARRAY: the elements of the array at the path as compact JSON texts; NULL when the
/// value there is not an array.
fn json_query_array(json: &str, steps: &[Step]) -> StringList {
    let raw = find(json, steps)?.get();
    let elements: Vec<&RawValue> = serde_json::from_str(raw).ok()?;
    Some(elements.iter().map(|e| Some(compact(e.get()))).collect())
}

/// JSON_VALUE_ARRAY: the scalars of the array at the path as strings (JSON null as SQL NULL);
/// NULL when the value there is not an array or holds an object or an array.
fn json_value_array(json: &str, steps: &[Step]) -> StringList {
    let raw = find(json, steps)?.get();
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
}
