//! Events for the crate's tests.

use bytes::Bytes;

use crate::event::{DeliveryHeaders, Event, Payload, lift};

/// A `push`-like event `id` received at `received_micros`, with `payload` lifted.
pub(crate) fn event(id: &str, received_micros: i64, payload: &str) -> Event {
    Event {
        headers: DeliveryHeaders {
            delivery_id: id.into(),
            event: "push".into(),
            signature: "sha256=00".into(),
            hook_id: Some(7),
            target_type: Some("repository".into()),
            target_id: None,
        },
        received_micros,
        lifted: lift(payload.as_bytes()).unwrap_or_default(),
        payload: Payload::Inline(Bytes::copy_from_slice(payload.as_bytes())),
        payload_size: payload.len() as u64,
    }
}
