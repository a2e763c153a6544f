//! One NDJSON line as a webhook event, in either of the two shapes `gma import` reads.
//!
//! - **GMA's BigQuery export**: `{"delivery_id", "signature", "received", "event", "payload"}`,
//!   the columns of GMA's events table (also gma's own `hook_id`, `target_type`, `target_id`
//!   when present).
//! - **Headers and payload**: `{"headers": {"X-GitHub-Delivery": …, "X-GitHub-Event": …,
//!   "X-Hub-Signature-256": …, …}, "payload": …, "received"?}`, headers named as GitHub sends
//!   them, in any case. Without `received` the event gets the import's start time.
//!
//! The shape is decided per line by the presence of `headers`. In both, `payload` is either a
//! JSON *string* holding the payload text, which is stored byte for byte as it decodes (GitHub
//! signed those bytes), or the payload object itself, stored as the exact text of that object
//! in the line.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::timestamp;

/// A line that parsed: the envelope of one event, borrowing from the line where it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine<'a> {
    /// `X-GitHub-Delivery` / `delivery_id`.
    pub delivery_id: Cow<'a, str>,
    /// `X-GitHub-Event` / `event`.
    pub event: Cow<'a, str>,
    /// `X-Hub-Signature-256` / `signature`; empty when the line has none.
    pub signature: Cow<'a, str>,
    /// When the delivery was received, microseconds since the epoch (UTC).
    pub received_micros: i64,
    /// `X-GitHub-Hook-ID` / `hook_id`.
    pub hook_id: Option<i64>,
    /// `X-GitHub-Hook-Installation-Target-Type` / `target_type`.
    pub target_type: Option<Cow<'a, str>>,
    /// `X-GitHub-Hook-Installation-Target-ID` / `target_id`.
    pub target_id: Option<i64>,
    /// The payload text to store, byte for byte.
    pub payload: Cow<'a, str>,
}

/// Why a line was not imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadLineReason {
    /// The line does not parse as JSON.
    #[error("not valid JSON: {0}")]
    NotJson(String),
    /// The line is JSON but not an object.
    #[error("the line is JSON but not an object")]
    NotAnObject,
    /// A field is missing or empty.
    #[error("no {0}")]
    Missing(&'static str),
    /// A field has a type the shape does not allow.
    #[error("a field has the wrong type: {0}")]
    WrongType(String),
    /// `payload` is neither a string nor an object.
    #[error("`payload` is neither a JSON object nor a string holding one")]
    PayloadNotObject,
    /// The payload text is not a JSON object.
    #[error("the payload {0}")]
    BadPayload(String),
    /// `received` is not a timestamp.
    #[error("bad `received`: {0}")]
    BadTimestamp(String),
}

/// The export shape, payload as a string: the common case, decoded in one pass. Also the fields
/// of either shape, with the payload resolved to its text.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    delivery_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    received: Option<&'a RawValue>,
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    payload: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    headers: Option<&'a RawValue>,
    #[serde(default)]
    hook_id: Option<i64>,
    #[serde(borrow, default)]
    target_type: Option<Cow<'a, str>>,
    #[serde(default)]
    target_id: Option<i64>,
}

/// Any shape, payload kept raw: read when the payload is not a string. (Apart from [`Fields`]:
/// serde borrows a payload `Cow` only under `#[serde(borrow)]` on a field of that type, which a
/// struct generic over the payload type cannot carry.)
#[derive(Deserialize)]
struct RawPayloadLine<'a> {
    #[serde(borrow, default)]
    delivery_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    received: Option<&'a RawValue>,
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
    #[serde(borrow, default)]
    headers: Option<&'a RawValue>,
    #[serde(default)]
    hook_id: Option<i64>,
    #[serde(borrow, default)]
    target_type: Option<Cow<'a, str>>,
    #[serde(default)]
    target_id: Option<i64>,
}

fn json_error(error: &serde_json::Error) -> BadLineReason {
    match error.classify() {
        serde_json::error::Category::Data => BadLineReason::WrongType(error.to_string()),
        _ => BadLineReason::NotJson(error.to_string()),
    }
}

fn read_fields(line: &[u8]) -> Result<Fields<'_>, BadLineReason> {
    let first = line.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(line) {
            Ok(_) => Err(BadLineReason::NotAnObject),
            Err(error) => Err(BadLineReason::NotJson(error.to_string())),
        };
    }
    match serde_json::from_slice::<Fields<'_>>(line) {
        Ok(fields) => Ok(fields),
        Err(error) if error.classify() == serde_json::error::Category::Data => {
            let l =
                serde_json::from_slice::<RawPayloadLine<'_>>(line).map_err(|e| json_error(&e))?;
            let payload = match l.payload {
                None => None,
                Some(raw) if raw.get().starts_with('{') => Some(Cow::Borrowed(raw.get())),
                Some(raw) if raw.get() == "null" => None,
                Some(_) => return Err(BadLineReason::PayloadNotObject),
            };
            Ok(Fields {
                delivery_id: l.delivery_id,
                signature: l.signature,
                received: l.received,
                event: l.event,
                payload,
                headers: l.headers,
                hook_id: l.hook_id,
                target_type: l.target_type,
                target_id: l.target_id,
            })
        }
        Err(error) => Err(json_error(&error)),
    }
}

/// The headers a line of the headers shape carries, by lower-case name.
#[derive(Default)]
struct Headers {
    delivery_id: Option<String>,
    event: Option<String>,
    signature: Option<String>,
    hook_id: Option<i64>,
    target_type: Option<String>,
    target_id: Option<i64>,
}

fn header_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        // Some tools record every header as a list of values.
        serde_json::Value::Array(values) => values.first().and_then(header_text),
        _ => None,
    }
}

fn read_headers(raw: &RawValue) -> Result<Headers, BadLineReason> {
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(raw.get())
        .map_err(|_| BadLineReason::WrongType("`headers` is not an object".into()))?;
    let mut headers = Headers::default();
    for (name, value) in map {
        let Some(text) = header_text(&value) else {
            continue;
        };
        let number = |field: &str| {
            text.trim().parse::<i64>().map_err(|_| {
                BadLineReason::WrongType(format!("header {field} is not a number: {text:?}"))
            })
        };
        match name.to_ascii_lowercase().as_str() {
            "x-github-delivery" => headers.delivery_id = Some(text),
            "x-github-event" => headers.event = Some(text),
            "x-hub-signature-256" => headers.signature = Some(text),
            "x-github-hook-id" => headers.hook_id = Some(number(&name)?),
            "x-github-hook-installation-target-type" => headers.target_type = Some(text),
            "x-github-hook-installation-target-id" => headers.target_id = Some(number(&name)?),
            _ => {}
        }
    }
    Ok(headers)
}

fn received_micros(raw: Option<&RawValue>) -> Result<Option<i64>, BadLineReason> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let text = raw.get();
    if text.starts_with('"') {
        let value: Cow<'_, str> =
            serde_json::from_str(text).map_err(|e| BadLineReason::BadTimestamp(e.to_string()))?;
        timestamp::parse_text(&value)
            .map(Some)
            .map_err(BadLineReason::BadTimestamp)
    } else if text == "null" {
        Ok(None)
    } else {
        let number: f64 = serde_json::from_str(text)
            .map_err(|_| BadLineReason::BadTimestamp(format!("{text} is not a timestamp")))?;
        timestamp::parse_epoch(number, text.contains(['.', 'e', 'E']))
            .map(Some)
            .map_err(BadLineReason::BadTimestamp)
    }
}

fn non_empty(value: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    value.filter(|v| !v.trim().is_empty())
}

/// Parses one line (without its newline). `now_micros` is the `received` of a headers-shaped
/// line that has none.
///
/// # Errors
/// The [`BadLineReason`] that keeps the line out.
pub fn parse_line(line: &[u8], now_micros: i64) -> Result<ParsedLine<'_>, BadLineReason> {
    let fields = read_fields(line)?;
    let received = received_micros(fields.received)?;
    let payload = fields.payload.ok_or(BadLineReason::Missing("`payload`"))?;
    if let Some(raw) = fields.headers {
        let headers = read_headers(raw)?;
        let delivery_id = non_empty(headers.delivery_id.map(Cow::Owned).or(fields.delivery_id))
            .ok_or(BadLineReason::Missing("X-GitHub-Delivery header"))?;
        let event = non_empty(headers.event.map(Cow::Owned).or(fields.event))
            .ok_or(BadLineReason::Missing("X-GitHub-Event header"))?;
        return Ok(ParsedLine {
            delivery_id,
            event,
            signature: headers
                .signature
                .map(Cow::Owned)
                .or(fields.signature)
                .unwrap_or_default(),
            received_micros: received.unwrap_or(now_micros),
            hook_id: headers.hook_id.or(fields.hook_id),
            target_type: headers.target_type.map(Cow::Owned).or(fields.target_type),
            target_id: headers.target_id.or(fields.target_id),
            payload,
        });
    }
    Ok(ParsedLine {
        delivery_id: non_empty(fields.delivery_id)
            .ok_or(BadLineReason::Missing("`delivery_id`"))?,
        event: non_empty(fields.event).ok_or(BadLineReason::Missing("`event`"))?,
        signature: fields.signature.unwrap_or_default(),
        received_micros: received.ok_or(BadLineReason::Missing("`received`"))?,
        hook_id: fields.hook_id,
        target_type: fields.target_type,
        target_id: fields.target_id,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000_000;

    #[test]
    fn reads_the_export_shape_with_a_string_payload_byte_for_byte() {
        let payload = "{\"action\":\"opened\",\n \"x\":\"caf\u{e9} \\u00e9 \\\"q\\\"\"}";
        let line = serde_json::json!({
            "delivery_id": "d-1", "signature": "sha256=ab", "received": "2026-01-01 00:00:00 UTC",
            "event": "issues", "payload": payload, "extra": [1, 2],
        })
        .to_string();
        let parsed = parse_line(line.as_bytes(), 0).unwrap();
        assert_eq!(parsed.delivery_id, "d-1");
        assert_eq!(parsed.event, "issues");
        assert_eq!(parsed.signature, "sha256=ab");
        assert_eq!(parsed.received_micros, T0);
        assert_eq!(parsed.payload, payload, "the decoded string, byte for byte");
        assert_eq!(parsed.hook_id, None);
    }

    #[test]
    fn reads_the_export_shape_with_an_object_payload_as_its_text() {
        let line = br#"{"delivery_id":"d-2","received":1767225600,"event":"push","payload":{ "ref" : "main",  "n":[1, 2] },"hook_id":5,"target_type":"repository","target_id":9}"#;
        let parsed = parse_line(line, 0).unwrap();
        assert_eq!(parsed.payload, r#"{ "ref" : "main",  "n":[1, 2] }"#);
        assert_eq!(parsed.received_micros, T0);
        assert_eq!(parsed.signature, "");
        assert_eq!(
            (
                parsed.hook_id,
                parsed.target_type.as_deref(),
                parsed.target_id
            ),
            (Some(5), Some("repository"), Some(9))
        );
    }

    #[test]
    fn reads_the_headers_shape_in_any_case() {
        let line = br#"{"headers":{"x-github-delivery":"d-3","X-GITHUB-EVENT":"ping","X-Hub-Signature-256":"sha256=cd","X-GitHub-Hook-ID":"77","X-GitHub-Hook-Installation-Target-Type":"integration","X-GitHub-Hook-Installation-Target-ID":["12"],"User-Agent":"GitHub-Hookshot/1"},"payload":"{\"zen\":\"z\"}"}"#;
        let parsed = parse_line(line, 42).unwrap();
        assert_eq!(parsed.delivery_id, "d-3");
        assert_eq!(parsed.event, "ping");
        assert_eq!(parsed.signature, "sha256=cd");
        assert_eq!(
            parsed.received_micros, 42,
            "no received: the import's clock"
        );
        assert_eq!(parsed.hook_id, Some(77));
        assert_eq!(parsed.target_type.as_deref(), Some("integration"));
        assert_eq!(parsed.target_id, Some(12));
        assert_eq!(parsed.payload, r#"{"zen":"z"}"#);
        let line = br#"{"headers":{"X-GitHub-Delivery":"d-4","X-GitHub-Event":"ping"},"received":"2026-01-01T00:00:00Z","payload":{"zen":1}}"#;
        let parsed = parse_line(line, 42).unwrap();
        assert_eq!(parsed.received_micros, T0);
        assert_eq!(parsed.payload, r#"{"zen":1}"#);
    }

    #[test]
    fn names_what_is_wrong_with_a_bad_line() {
        let cases: &[(&[u8], BadLineReason)] = &[
            (b"not json", BadLineReason::NotJson(String::new())),
            (b"{\"delivery_id\":", BadLineReason::NotJson(String::new())),
            (b"[1,2]", BadLineReason::NotAnObject),
            (b"{\"event\":\"push\",\"received\":1,\"payload\":\"{}\"}", BadLineReason::Missing("`delivery_id`")),
            (b"{\"delivery_id\":\"\",\"event\":\"push\",\"received\":1,\"payload\":\"{}\"}", BadLineReason::Missing("`delivery_id`")),
            (b"{\"delivery_id\":\"d\",\"received\":1,\"payload\":\"{}\"}", BadLineReason::Missing("`event`")),
            (b"{\"delivery_id\":\"d\",\"event\":\"push\",\"payload\":\"{}\"}", BadLineReason::Missing("`received`")),
            (b"{\"delivery_id\":\"d\",\"event\":\"push\",\"received\":1}", BadLineReason::Missing("`payload`")),
            (b"{\"delivery_id\":\"d\",\"event\":\"push\",\"received\":1,\"payload\":[1]}", BadLineReason::PayloadNotObject),
            (b"{\"delivery_id\":\"d\",\"event\":\"push\",\"received\":1,\"payload\":7}", BadLineReason::PayloadNotObject),
            (b"{\"delivery_id\":\"d\",\"event\":\"push\",\"received\":\"soon\",\"payload\":\"{}\"}", BadLineReason::BadTimestamp(String::new())),
            (b"{\"delivery_id\":\"d\",\"event\":\"push\",\"received\":true,\"payload\":\"{}\"}", BadLineReason::BadTimestamp(String::new())),
            (b"{\"delivery_id\":5,\"event\":\"push\",\"received\":1,\"payload\":\"{}\"}", BadLineReason::WrongType(String::new())),
            (b"{\"headers\":{\"X-GitHub-Event\":\"push\"},\"payload\":\"{}\"}", BadLineReason::Missing("X-GitHub-Delivery header")),
            (b"{\"headers\":{\"X-GitHub-Delivery\":\"d\"},\"payload\":\"{}\"}", BadLineReason::Missing("X-GitHub-Event header")),
            (b"{\"headers\":[1],\"payload\":\"{}\"}", BadLineReason::WrongType(String::new())),
        ];
        for (line, expected) in cases {
            let got = parse_line(line, 0).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(expected),
                "{}: got {got}",
                String::from_utf8_lossy(line)
            );
            if let BadLineReason::Missing(field) = expected {
                assert_eq!(&got, &BadLineReason::Missing(field));
            }
        }
    }
}
