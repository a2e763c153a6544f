//! Fetch mode: a delivery's original request, read back from GitHub, turned into the event
//! ingest would have stored, with the checks ingest applies.
//!
//! The payload comes from GitHub's API over an authenticated TLS connection, so it needs no
//! HMAC check; but GitHub returns it re-encoded as JSON, so the recorded `X-Hub-Signature-256`
//! is kept as evidence, not re-verified.

use bytes::Bytes;
use chrono::Utc;
use gma_pipeline::github::DeliveryDetail;
use gma_store::event::{DeliveryHeaders, Event};

/// GitHub caps webhook payloads at 25 MB; ingest refuses larger bodies, and so does fetch.
pub const MAX_PAYLOAD_BYTES: usize = 25 * 1024 * 1024;

/// Why a fetched delivery cannot be landed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// GitHub's answer has no payload (GitHub drops payloads of very old deliveries).
    #[error("GitHub returned delivery {id} without its payload")]
    NoPayload {
        /// The delivery.
        id: i64,
    },
    /// A header ingest requires is missing or differs from the listing.
    #[error("delivery {id}: {problem}")]
    Header {
        /// The delivery.
        id: i64,
        /// What is wrong.
        problem: String,
    },
    /// The payload is larger than GitHub's cap.
    #[error("delivery {id}: the payload is {size} bytes, over GitHub's 25 MB cap")]
    TooLarge {
        /// The delivery.
        id: i64,
        /// Its size.
        size: usize,
    },
    /// The payload is not a JSON object.
    #[error("delivery {id}")]
    Payload {
        /// The delivery.
        id: i64,
        /// What is wrong.
        #[source]
        source: gma_store::event::PayloadError,
    },
}

/// The event `detail` carries, as ingest would store it (received now).
///
/// # Errors
/// [`FetchError`] saying which check failed.
pub fn event_from(detail: &DeliveryDetail) -> Result<Event, FetchError> {
    let delivery = &detail.delivery;
    let id = delivery.id;
    let header_problem = |problem: String| FetchError::Header { id, problem };
    let request = &detail.request;
    let guid = request
        .header("X-GitHub-Delivery")
        .unwrap_or(&delivery.guid);
    if guid != delivery.guid {
        return Err(header_problem(format!(
            "X-GitHub-Delivery {guid:?} differs from the listed GUID {:?}",
            delivery.guid
        )));
    }
    let event = request.header("X-GitHub-Event").unwrap_or(&delivery.event);
    if event.is_empty() || !event.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Err(header_problem(format!(
            "X-GitHub-Event {event:?} is not an event name"
        )));
    }
    let payload = request
        .payload
        .as_ref()
        .ok_or(FetchError::NoPayload { id })?
        .get();
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(FetchError::TooLarge {
            id,
            size: payload.len(),
        });
    }
    let number = |name: &str| {
        request
            .header(name)
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let headers = DeliveryHeaders {
        delivery_id: guid.to_owned(),
        event: event.to_owned(),
        signature: request
            .header("X-Hub-Signature-256")
            .unwrap_or_default()
            .to_owned(),
        hook_id: number("X-GitHub-Hook-ID"),
        target_type: request
            .header("X-GitHub-Hook-Installation-Target-Type")
            .map(str::to_owned),
        target_id: number("X-GitHub-Hook-Installation-Target-ID"),
    };
    Event::inline(
        headers,
        Utc::now().timestamp_micros(),
        Bytes::copy_from_slice(payload.as_bytes()),
    )
    .map_err(|source| FetchError::Payload { id, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gma_pipeline::error::error_chain;

    fn detail(headers: &str, payload: &str) -> DeliveryDetail {
        serde_json::from_str(&format!(
            r#"{{"id":7,"guid":"g-1","delivered_at":"2026-11-28T10:00:00Z","status_code":500,
            "event":"issues","request":{{"headers":{headers},"payload":{payload}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn builds_the_event_ingest_would_store() {
        let d = detail(
            r#"{"X-GitHub-Delivery":"g-1","X-GitHub-Event":"issues","X-Hub-Signature-256":"sha256=ab",
            "X-GitHub-Hook-ID":"42","X-GitHub-Hook-Installation-Target-Type":"integration",
            "X-GitHub-Hook-Installation-Target-ID":"9"}"#,
            r#"{"action":"opened","repository":{"full_name":"acme/w","id":3}}"#,
        );
        let event = event_from(&d).unwrap();
        assert_eq!(event.headers.delivery_id, "g-1");
        assert_eq!(event.headers.event, "issues");
        assert_eq!(event.headers.signature, "sha256=ab");
        assert_eq!(event.headers.hook_id, Some(42));
        assert_eq!(event.headers.target_id, Some(9));
        assert_eq!(event.lifted.repository.as_deref(), Some("acme/w"));
        assert_eq!(event.lifted.action.as_deref(), Some("opened"));
        assert_eq!(event.payload_size, 62);
    }

    #[test]
    fn refuses_what_ingest_refuses() {
        let mismatch = detail(r#"{"X-GitHub-Delivery":"other"}"#, "{}");
        assert!(
            event_from(&mismatch)
                .unwrap_err()
                .to_string()
                .contains("differs")
        );
        let not_object = detail("{}", "[1,2]");
        assert!(error_chain(&event_from(&not_object).unwrap_err()).contains("not an object"));
        let bad_event = detail(r#"{"X-GitHub-Event":"Issues; rm"}"#, "{}");
        assert!(
            event_from(&bad_event)
                .unwrap_err()
                .to_string()
                .contains("not an event name")
        );
        let none = detail("{}", "null");
        assert!(matches!(
            event_from(&none),
            Err(FetchError::NoPayload { id: 7 })
        ));
    }
}
