//! A webhook delivery as gma stores it: GMA's columns, the recorded headers, the payload, and
//! the columns lifted from the payload so views need not parse JSON for the common filters.
//!
//! Lifting is lenient on purpose: a payload whose `repository` is not the usual object still
//! lands (with the lifted column NULL); only a body that is not a JSON object is refused.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

/// The delivery's identity and metadata, taken from GitHub's request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryHeaders {
    /// `X-GitHub-Delivery`: the event's GUID, the same on every redelivery.
    pub delivery_id: String,
    /// `X-GitHub-Event`: the event type (`push`, `pull_request`, ...).
    pub event: String,
    /// `X-Hub-Signature-256` exactly as received.
    pub signature: String,
    /// `X-GitHub-Hook-ID`, when sent.
    pub hook_id: Option<i64>,
    /// `X-GitHub-Hook-Installation-Target-Type`, when sent.
    pub target_type: Option<String>,
    /// `X-GitHub-Hook-Installation-Target-ID`, when sent.
    pub target_id: Option<i64>,
}

/// Columns lifted from the payload JSON. Each is `None` when the payload lacks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lifted {
    /// `action`.
    pub action: Option<String>,
    /// `installation.id`.
    pub installation_id: Option<i64>,
    /// `enterprise.slug`.
    pub enterprise: Option<String>,
    /// `organization.login`.
    pub organization: Option<String>,
    /// `organization.id`.
    pub organization_id: Option<i64>,
    /// `repository.full_name`.
    pub repository: Option<String>,
    /// `repository.id`.
    pub repository_id: Option<i64>,
    /// `sender.login`.
    pub sender: Option<String>,
    /// `sender.id`.
    pub sender_id: Option<i64>,
}

/// Where a payload's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// In memory: the usual case.
    Inline(Bytes),
    /// In a file of the store's payload folder: bodies too large to hold in memory while many
    /// arrive at once.
    Spilled(PathBuf),
}

impl Payload {
    /// Reads the payload's bytes, from memory or from its file.
    ///
    /// # Errors
    /// The I/O error when a spilled payload's file cannot be read.
    pub fn to_bytes(&self) -> std::io::Result<Bytes> {
        match self {
            Payload::Inline(bytes) => Ok(bytes.clone()),
            Payload::Spilled(path) => std::fs::read(path).map(Bytes::from),
        }
    }
}

/// One webhook event, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The request headers gma records.
    pub headers: DeliveryHeaders,
    /// When gma received the delivery, in microseconds since the Unix epoch (UTC).
    pub received_micros: i64,
    /// Columns lifted from the payload.
    pub lifted: Lifted,
    /// The JSON exactly as GitHub signed it (for form-encoded deliveries, the decoded `payload`
    /// field).
    pub payload: Payload,
    /// Length of the payload in bytes.
    pub payload_size: u64,
}

impl Event {
    /// The event of a payload held in memory, received at `received_micros`: checks that the
    /// payload is a JSON object and lifts its columns.
    ///
    /// # Errors
    /// [`PayloadError::NotJson`] or [`PayloadError::NotObject`].
    pub fn inline(
        headers: DeliveryHeaders,
        received_micros: i64,
        payload: Bytes,
    ) -> Result<Self, PayloadError> {
        let lifted = lift(&payload)?;
        Ok(Self {
            headers,
            received_micros,
            lifted,
            payload_size: payload.len() as u64,
            payload: Payload::Inline(payload),
        })
    }
}

/// Why a payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The body does not parse as JSON.
    #[error("the payload is not valid JSON")]
    NotJson(#[source] serde_json::Error),
    /// The body is JSON but not an object, which no GitHub event is.
    #[error("the payload is JSON but not an object; GitHub sends every event as a JSON object")]
    NotObject,
    /// A spilled payload's file could not be read.
    #[error("could not read the spooled payload {path}")]
    Io {
        /// The spool file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The top-level keys gma lifts from, each kept raw so that an unexpected shape in one of them
/// leaves that column NULL instead of refusing the event. Every other key is skipped, but still
/// checked to be valid JSON.
#[derive(Deserialize)]
struct TopLevel {
    action: Option<Box<RawValue>>,
    installation: Option<Box<RawValue>>,
    enterprise: Option<Box<RawValue>>,
    organization: Option<Box<RawValue>>,
    repository: Option<Box<RawValue>>,
    sender: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct Account {
    login: Option<String>,
    slug: Option<String>,
    full_name: Option<String>,
    id: Option<i64>,
}

fn account(raw: &Option<Box<RawValue>>) -> Option<Account> {
    raw.as_ref()
        .and_then(|raw| serde_json::from_str::<Account>(raw.get()).ok())
}

impl TopLevel {
    fn lift(self) -> Lifted {
        let action = self
            .action
            .as_ref()
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
        let installation = account(&self.installation);
        let enterprise = account(&self.enterprise);
        let organization = account(&self.organization);
        let repository = account(&self.repository);
        let sender = account(&self.sender);
        Lifted {
            action,
            installation_id: installation.and_then(|a| a.id),
            enterprise: enterprise.and_then(|a| a.slug),
            organization_id: organization.as_ref().and_then(|a| a.id),
            organization: organization.and_then(|a| a.login),
            repository_id: repository.as_ref().and_then(|a| a.id),
            repository: repository.and_then(|a| a.full_name),
            sender_id: sender.as_ref().and_then(|a| a.id),
            sender: sender.and_then(|a| a.login),
        }
    }
}

fn starts_with_object(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// Checks that `payload` is a JSON object and lifts its common columns.
///
/// # Errors
/// [`PayloadError::NotJson`] or [`PayloadError::NotObject`].
pub fn lift(payload: &[u8]) -> Result<Lifted, PayloadError> {
    if !starts_with_object(payload) {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(payload) {
            Ok(_) => Err(PayloadError::NotObject),
            Err(error) => Err(PayloadError::NotJson(error)),
        };
    }
    serde_json::from_slice::<TopLevel>(payload)
        .map(TopLevel::lift)
        .map_err(PayloadError::NotJson)
}

/// [`lift`] for a payload kept in a file, reading it in a stream so memory stays flat in the
/// payload's size.
///
/// # Errors
/// As [`lift`], plus [`PayloadError::Io`] when the file cannot be read.
pub fn lift_file(path: &Path) -> Result<Lifted, PayloadError> {
    let io = |source| PayloadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::with_capacity(64 * 1024, File::open(path).map_err(io)?);
    let mut head = [0u8; 1];
    loop {
        if reader.read(&mut head).map_err(io)? == 0 {
            return lift(b"");
        }
        if !head[0].is_ascii_whitespace() {
            break;
        }
    }
    if head[0] != b'{' {
        return Err(PayloadError::NotObject);
    }
    let chained = std::io::Read::chain(&head[..], reader);
    serde_json::from_reader::<_, TopLevel>(chained)
        .map(TopLevel::lift)
        .map_err(PayloadError::NotJson)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifts_the_common_columns() {
        let payload = br#"{"action":"opened","installation":{"id":7},
            "enterprise":{"slug":"acme-ent","id":1},
            "organization":{"login":"acme","id":42},
            "repository":{"full_name":"acme/widgets","id":99,"name":"widgets"},
            "sender":{"login":"octocat","id":583231},"number":3}"#;
        let lifted = lift(payload).unwrap();
        assert_eq!(
            lifted,
            Lifted {
                action: Some("opened".into()),
                installation_id: Some(7),
                enterprise: Some("acme-ent".into()),
                organization: Some("acme".into()),
                organization_id: Some(42),
                repository: Some("acme/widgets".into()),
                repository_id: Some(99),
                sender: Some("octocat".into()),
                sender_id: Some(583231),
            }
        );
    }

    #[test]
    fn an_odd_shape_leaves_the_column_null_instead_of_refusing() {
        let lifted = lift(br#"{"action":5,"repository":"acme/widgets","sender":null}"#).unwrap();
        assert_eq!(lifted, Lifted::default());
    }

    #[test]
    fn refuses_what_is_not_a_json_object() {
        assert!(matches!(lift(b"[1,2]"), Err(PayloadError::NotObject)));
        assert!(matches!(lift(b"\"x\""), Err(PayloadError::NotObject)));
        assert!(matches!(lift(b"{\"a\":"), Err(PayloadError::NotJson(_))));
        assert!(matches!(lift(b"not json"), Err(PayloadError::NotJson(_))));
        assert!(matches!(lift(b""), Err(PayloadError::NotJson(_))));
        assert!(matches!(
            lift(b"{} trailing"),
            Err(PayloadError::NotJson(_))
        ));
    }

    #[test]
    fn lifts_from_a_file_as_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let payload = br#"  {"action":"closed","sender":{"login":"x","id":1},"pad":[1,2,3]}"#;
        std::fs::write(&path, payload).unwrap();
        assert_eq!(lift_file(&path).unwrap(), lift(payload).unwrap());
        std::fs::write(&path, b"[]").unwrap();
        assert!(matches!(lift_file(&path), Err(PayloadError::NotObject)));
        std::fs::write(&path, b"{\"a\":").unwrap();
        assert!(matches!(lift_file(&path), Err(PayloadError::NotJson(_))));
    }
}
