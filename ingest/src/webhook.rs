//! `POST /webhook`: check, verify, land, answer.
//!
//! The order of checks is chosen so that nothing about the body is parsed before the sender is
//! verified: content type (415), delivery headers (400), signature header (401), declared
//! length (413), the body as it streams in (413, 400, 408), the signature (401), then the JSON
//! (400). The answer is sent only once the event is durable (201), or known to be stored already
//! (200 duplicate).

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use gma_store::event::{self, DeliveryHeaders, Event, Lifted, Payload};
use gma_store::{AppendOutcome, SpoolGuard, StoreError, error_chain};

use crate::App;
use crate::body::{BodyBytes, BodyLimits, ReadBody, read_body};
use crate::metrics::{RequestLabels, SecretLabels};
use crate::rejection::Rejection;
use crate::secret::{SignatureCheck, parse_signature};

/// Header names, as GitHub documents them (HTTP header names match in any case).
const DELIVERY: &str = "X-GitHub-Delivery";
const EVENT: &str = "X-GitHub-Event";
const SIGNATURE_256: &str = "X-Hub-Signature-256";
const SIGNATURE_SHA1: &str = "X-Hub-Signature";
const HOOK_ID: &str = "X-GitHub-Hook-ID";
const TARGET_TYPE: &str = "X-GitHub-Hook-Installation-Target-Type";
const TARGET_ID: &str = "X-GitHub-Hook-Installation-Target-ID";

/// Longest delivery id or event name accepted; GitHub's are far shorter.
const MAX_ID_LEN: usize = 256;

#[derive(Debug, Clone, Copy)]
enum BodyKind {
    Json,
    Form,
}

/// A request that was refused, with what is known of it for the log.
struct Refused {
    rejection: Rejection,
    delivery_id: Option<String>,
    verified_event: Option<String>,
}

impl From<Rejection> for Refused {
    fn from(rejection: Rejection) -> Self {
        Self {
            rejection,
            delivery_id: None,
            verified_event: None,
        }
    }
}

struct Landed {
    outcome: AppendOutcome,
    delivery_id: String,
    event: String,
    secret_id: String,
    bytes: u64,
}

/// The handler of `POST /webhook`.
pub(crate) async fn webhook(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    app.metrics.in_flight.inc();
    let result = handle(&app, &headers, body).await;
    app.metrics.in_flight.dec();
    let (response, status, event_label) = match result {
        Ok(landed) => {
            app.metrics
                .landing_seconds
                .observe(started.elapsed().as_secs_f64());
            app.metrics
                .signature_matches
                .get_or_create(&SecretLabels {
                    secret: landed.secret_id.clone(),
                })
                .inc();
            let (status, word) = match landed.outcome {
                AppendOutcome::Landed => (StatusCode::CREATED, "ok"),
                AppendOutcome::Duplicate => (StatusCode::OK, "duplicate"),
            };
            tracing::debug!(
                delivery_id = %landed.delivery_id,
                event = %landed.event,
                secret = %landed.secret_id,
                bytes = landed.bytes,
                outcome = word,
                "Landed a delivery."
            );
            let response = (status, Json(serde_json::json!({ "status": word }))).into_response();
            (response, status, landed.event)
        }
        Err(refused) => {
            let status = refused.rejection.status();
            let delivery_id = refused.delivery_id.as_deref().unwrap_or("-");
            let error = &refused.rejection;
            match status {
                StatusCode::SERVICE_UNAVAILABLE => {
                    tracing::error!(delivery_id, status = status.as_u16(), error = %error_chain(error), "Could not land a delivery.")
                }
                StatusCode::UNAUTHORIZED => {
                    tracing::warn!(delivery_id, status = status.as_u16(), error = %error_chain(error), "Refused an unverified delivery.")
                }
                _ => {
                    tracing::info!(delivery_id, status = status.as_u16(), error = %error_chain(error), "Refused a delivery.")
                }
            }
            let label = refused
                .verified_event
                .unwrap_or_else(|| "unverified".into());
            (refused.rejection.into_response(), status, label)
        }
    };
    app.metrics
        .requests
        .get_or_create(&RequestLabels {
            status: status.as_u16(),
            event: event_label,
        })
        .inc();
    response
}

async fn handle(app: &App, headers: &HeaderMap, body: Body) -> Result<Landed, Refused> {
    let received_micros = Utc::now().timestamp_micros();
    let delivery = Announced::from_headers(headers)?;
    let limits = BodyLimits {
        max_bytes: app.config.max_body_bytes,
        spill_bytes: app.config.spill_bytes,
        timeout: app.config.body_timeout,
    };
    if declared_length(headers).is_some_and(|len| len > limits.max_bytes) {
        return Err(delivery.refuse(
            Rejection::TooLarge {
                limit: limits.max_bytes,
            },
            None,
        ));
    }
    let (read, secret_id) = delivery.verified_body(app, body, limits).await?;
    let verified = Some(delivery.event_name.as_str());
    let (payload, guard) = payload_of(delivery.kind, read)
        .await
        .map_err(|r| delivery.refuse(r, verified))?;
    let bytes = payload.size;
    let event = delivery.event(headers, received_micros, payload);
    let outcome = land(app, event, guard)
        .await
        .map_err(|r| delivery.refuse(r, verified))?;
    Ok(Landed {
        outcome,
        delivery_id: delivery.delivery_id,
        event: delivery.event_name,
        secret_id,
        bytes,
    })
}

/// What a delivery's headers announce, checked before its body is read.
struct Announced {
    kind: BodyKind,
    delivery_id: String,
    event_name: String,
    signature: String,
    /// The digest the signature header gives.
    expected: [u8; 32],
}

impl Announced {
    /// Checks the content type, the delivery headers and the signature header, in that order.
    fn from_headers(headers: &HeaderMap) -> Result<Self, Refused> {
        let kind = body_kind(headers)?;
        let delivery_id = required(headers, DELIVERY)?.to_owned();
        let refuse = |rejection: Rejection| Refused {
            rejection,
            delivery_id: Some(delivery_id.clone()),
            verified_event: None,
        };
        let event_name = required(headers, EVENT).map_err(refuse)?.to_owned();
        let signature = match optional(headers, SIGNATURE_256).map_err(refuse)? {
            Some(signature) => signature.to_owned(),
            None if headers.contains_key(SIGNATURE_SHA1) => {
                return Err(refuse(Rejection::Sha1Only));
            }
            None => return Err(refuse(Rejection::MissingSignature)),
        };
        let expected =
            parse_signature(&signature).map_err(|_| refuse(Rejection::MalformedSignature))?;
        Ok(Self {
            kind,
            delivery_id,
            event_name,
            signature,
            expected,
        })
    }

    /// This delivery refused with `rejection`; `verified_event` once the sender is verified.
    fn refuse(&self, rejection: Rejection, verified_event: Option<&str>) -> Refused {
        Refused {
            rejection,
            delivery_id: Some(self.delivery_id.clone()),
            verified_event: verified_event.map(str::to_owned),
        }
    }

    /// Reads the body within `limits` and verifies its signature: the body and the id of the
    /// secret that signed it.
    async fn verified_body(
        &self,
        app: &App,
        body: Body,
        limits: BodyLimits,
    ) -> Result<(ReadBody, String), Refused> {
        let mut check = SignatureCheck::new(&app.config.secrets);
        let read = read_body(body, limits, &mut check, app.store.as_ref())
            .await
            .map_err(|r| self.refuse(r, None))?;
        app.metrics.received_bytes.inc_by(read.len);
        if read.len == 0 {
            return Err(self.refuse(Rejection::EmptyBody, None));
        }
        let Some(secret) = check.matching(&self.expected) else {
            return Err(self.refuse(Rejection::SignatureMismatch, None));
        };
        Ok((read, secret.id().to_owned()))
    }

    /// The event to store: this delivery's headers and its checked payload.
    fn event(&self, headers: &HeaderMap, received_micros: i64, payload: CheckedPayload) -> Event {
        Event {
            headers: DeliveryHeaders {
                delivery_id: self.delivery_id.clone(),
                event: self.event_name.clone(),
                signature: self.signature.clone(),
                hook_id: numeric(headers, HOOK_ID),
                target_type: optional(headers, TARGET_TYPE)
                    .ok()
                    .flatten()
                    .map(str::to_owned),
                target_id: numeric(headers, TARGET_ID),
            },
            received_micros,
            lifted: payload.lifted,
            payload: payload.payload,
            payload_size: payload.size,
        }
    }
}

/// Lands `event` in the store. The append runs in its own task: if the client disconnects and
/// the handler is dropped, the record may still land, and then its spool file must stay with it.
async fn land(
    app: &App,
    event: Event,
    guard: Option<SpoolGuard>,
) -> Result<AppendOutcome, Rejection> {
    let store = Arc::clone(&app.store);
    tokio::spawn(async move { store.land(&event, guard).await })
        .await
        .map_err(|e| {
            Rejection::StoreUnavailable(StoreError::Unavailable {
                reason: format!("the append task failed: {e}"),
            })
        })?
        .map_err(Rejection::StoreUnavailable)
}

struct CheckedPayload {
    payload: Payload,
    lifted: Lifted,
    size: u64,
}

/// Turns a verified body into the payload to store: the JSON itself, or a form's `payload`
/// field. A spooled body is synced and stays in its file; the guard removes the file unless the
/// event lands.
async fn payload_of(
    kind: BodyKind,
    read: ReadBody,
) -> Result<(CheckedPayload, Option<SpoolGuard>), Rejection> {
    let ReadBody { bytes, len } = read;
    match (kind, bytes) {
        (BodyKind::Json, BodyBytes::Inline(bytes)) => {
            let lifted = event::lift(&bytes)?;
            let payload = CheckedPayload {
                payload: Payload::Inline(bytes),
                lifted,
                size: len,
            };
            Ok((payload, None))
        }
        (BodyKind::Json, BodyBytes::Spooled(spool)) => {
            let guard = spool.finish().await.map_err(Rejection::spool)?;
            let path = guard.path().to_path_buf();
            let lifted = {
                let path = path.clone();
                tokio::task::spawn_blocking(move || event::lift_file(&path))
                    .await
                    .map_err(|e| Rejection::spool(std::io::Error::other(e)))??
            };
            let payload = CheckedPayload {
                payload: Payload::Spilled(path),
                lifted,
                size: len,
            };
            Ok((payload, Some(guard)))
        }
        (BodyKind::Form, bytes) => {
            let raw = match bytes {
                BodyBytes::Inline(bytes) => bytes,
                BodyBytes::Spooled(spool) => {
                    let path = spool.path().to_path_buf();
                    let guard = spool.finish().await.map_err(Rejection::spool)?;
                    let bytes = tokio::fs::read(&path).await.map_err(Rejection::spool)?;
                    drop(guard);
                    Bytes::from(bytes)
                }
            };
            let field = form_urlencoded::parse(&raw)
                .find(|(key, _)| key == "payload")
                .map(|(_, value)| value.into_owned())
                .ok_or(Rejection::FormWithoutPayload)?;
            let payload = Bytes::from(field);
            let lifted = event::lift(&payload)?;
            let checked = CheckedPayload {
                size: payload.len() as u64,
                payload: Payload::Inline(payload),
                lifted,
            };
            Ok((checked, None))
        }
    }
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, Rejection> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(Rejection::UnsupportedContentType("(none)".into()));
    };
    let value = String::from_utf8_lossy(value.as_bytes());
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "application/x-www-form-urlencoded" => Ok(BodyKind::Form),
        _ => Err(Rejection::UnsupportedContentType(mime)),
    }
}

fn optional<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<Option<&'h str>, Rejection> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => {
            value
                .to_str()
                .map(|s| Some(s.trim()))
                .map_err(|_| Rejection::InvalidHeader {
                    name,
                    reason: "it is not visible ASCII".into(),
                })
        }
    }
}

fn required<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, Rejection> {
    let value = optional(headers, name)?
        .filter(|v| !v.is_empty())
        .ok_or(Rejection::MissingHeader(name))?;
    if value.len() > MAX_ID_LEN || value.contains(char::is_whitespace) {
        return Err(Rejection::InvalidHeader {
            name,
            reason: format!("it must be at most {MAX_ID_LEN} characters without spaces"),
        });
    }
    Ok(value)
}

/// A numeric header GitHub sends for information; an unparseable one is recorded as NULL
/// rather than refusing the event.
fn numeric(headers: &HeaderMap, name: &'static str) -> Option<i64> {
    let value = optional(headers, name).ok().flatten()?;
    match value.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            tracing::warn!(header = name, "Ignoring a non-numeric header value.");
            None
        }
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
