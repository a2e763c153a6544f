//! Every way a request can fail, each with its own status and a JSON body `{"error": "..."}`
//! that says what was wrong and what to do. Messages never echo a secret or the payload.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gma_store::event::PayloadError;
use gma_store::{StoreError, error_chain};

/// Seconds a client is asked to wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "5";

/// Why a webhook request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// A required header is absent.
    #[error("missing header {0}: GitHub sends it with every delivery; set it when sending by hand")]
    MissingHeader(&'static str),
    /// A header is present but unusable.
    #[error("header {name} is invalid: {reason}")]
    InvalidHeader {
        /// The header.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No `X-Hub-Signature-256`.
    #[error(
        "missing header X-Hub-Signature-256: set a secret on the GitHub webhook so that GitHub signs its deliveries"
    )]
    MissingSignature,
    /// Only the legacy SHA-1 signature was sent.
    #[error(
        "only X-Hub-Signature (SHA-1) was sent; gma accepts X-Hub-Signature-256 only, which GitHub sends whenever the webhook has a secret"
    )]
    Sha1Only,
    /// The signature header is not `sha256=` and 64 hex digits.
    #[error("X-Hub-Signature-256 must be \"sha256=\" followed by 64 hex digits")]
    MalformedSignature,
    /// The signature matches none of the configured secrets.
    #[error(
        "the signature does not match the body under any configured secret: check that the webhook's secret is one gma is configured with"
    )]
    SignatureMismatch,
    /// The body is empty.
    #[error("the request body is empty: a webhook delivery carries its event as JSON")]
    EmptyBody,
    /// The body ended before its declared length, or the connection failed mid-body.
    #[error("the request body could not be read completely ({0}); send it again")]
    IncompleteBody(String),
    /// The body took too long to arrive.
    #[error("the request body did not arrive within {0} seconds; send it again")]
    BodyTimeout(u64),
    /// The body is larger than the limit.
    #[error(
        "the request body is larger than the limit of {limit} bytes; raise --max-body-bytes if deliveries this large are expected"
    )]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// A form-encoded body without its `payload` field.
    #[error(
        "the form-encoded body has no payload field: GitHub sends the event JSON as payload=..."
    )]
    FormWithoutPayload,
    /// The payload is not a JSON object.
    #[error(transparent)]
    NotJson(#[from] PayloadError),
    /// The content type is neither JSON nor a form.
    #[error(
        "unsupported content type {0:?}: send application/json or application/x-www-form-urlencoded (the webhook's content type setting)"
    )]
    UnsupportedContentType(String),
    /// A method other than POST.
    #[error("method not allowed: deliver webhooks with POST")]
    MethodNotAllowed,
    /// An unknown path.
    #[error("not found: gma serves POST /webhook, GET /healthz, GET /version and GET /metrics")]
    NotFound,
    /// The store cannot take the event now; GitHub's delivery fails and can be redelivered.
    #[error("nothing was stored; retry later")]
    StoreUnavailable(#[from] StoreError),
}

impl Rejection {
    /// A spool file could not be written (a full disk, say): the store cannot take the event.
    pub fn spool(error: std::io::Error) -> Self {
        Self::StoreUnavailable(StoreError::Unavailable {
            reason: format!("cannot write the spool file: {error}"),
        })
    }

    /// The HTTP status this rejection answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::MissingHeader(_)
            | Rejection::InvalidHeader { .. }
            | Rejection::EmptyBody
            | Rejection::IncompleteBody(_)
            | Rejection::FormWithoutPayload
            | Rejection::NotJson(_) => StatusCode::BAD_REQUEST,
            Rejection::MissingSignature
            | Rejection::Sha1Only
            | Rejection::MalformedSignature
            | Rejection::SignatureMismatch => StatusCode::UNAUTHORIZED,
            Rejection::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Rejection::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::UnsupportedContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::NotFound => StatusCode::NOT_FOUND,
            Rejection::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Json(serde_json::json!({ "error": error_chain(&self) }));
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECS),
                );
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT => {
                // The rest of the body is not read, so the connection cannot be reused.
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}
