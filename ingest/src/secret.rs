//! Webhook secrets and the signature check.
//!
//! Several secrets may be active at once so one can be rotated without downtime: a delivery is
//! accepted when its signature matches any of them. Each secret carries an id naming where it
//! came from (`GITHUB_WEBHOOK_SECRET`, `GMA_WEBHOOK_SECRETS[2]`, `secrets.txt:3`), which is what
//! logs and metrics show; the secret itself never leaves this module.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// One webhook secret. Its `Debug` output shows the id only.
#[derive(Clone)]
pub struct WebhookSecret {
    id: String,
    key: Vec<u8>,
}

impl WebhookSecret {
    /// A secret named `id` (where it came from) with value `key`.
    pub fn new(id: impl Into<String>, key: impl Into<Vec<u8>>) -> Self {
        Self {
            id: id.into(),
            key: key.into(),
        }
    }

    /// Where the secret came from, safe to log.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the secret has no bytes.
    pub fn is_empty(&self) -> bool {
        self.key.is_empty()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSecret")
            .field("id", &self.id)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Parses the secrets of a list: one per line (comma-separated also works on one line), blank
/// lines and lines starting with `#` skipped, surrounding white space trimmed. `source` names the
/// list in each secret's id.
pub fn parse_secret_list(source: &str, text: &str) -> Vec<WebhookSecret> {
    let mut secrets = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let many = parts.len() > 1;
        for (i, part) in parts.into_iter().enumerate() {
            let id = if many {
                format!("{source}:{}[{}]", line_no + 1, i + 1)
            } else {
                format!("{source}:{}", line_no + 1)
            };
            secrets.push(WebhookSecret::new(id, part.as_bytes()));
        }
    }
    secrets
}

/// What is wrong with a signature header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// It is not `sha256=` followed by 64 hex digits.
    Malformed,
}

/// Parses `X-Hub-Signature-256` into the 32 digest bytes.
///
/// # Errors
/// [`SignatureError::Malformed`] if it is not `sha256=` and 64 hex digits.
pub fn parse_signature(header: &str) -> Result<[u8; 32], SignatureError> {
    let hex_digest = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut digest).map_err(|_| SignatureError::Malformed)?;
    Ok(digest)
}

/// An HMAC-SHA256 per secret, fed the body as it streams in.
pub struct SignatureCheck<'a> {
    secrets: &'a [WebhookSecret],
    macs: Vec<HmacSha256>,
}

impl<'a> SignatureCheck<'a> {
    /// Starts a check against every secret in `secrets`.
    pub fn new(secrets: &'a [WebhookSecret]) -> Self {
        let macs = secrets
            .iter()
            .filter_map(|s| HmacSha256::new_from_slice(&s.key).ok())
            .collect();
        Self { secrets, macs }
    }

    /// Feeds the next bytes of the raw body.
    pub fn update(&mut self, bytes: &[u8]) {
        for mac in &mut self.macs {
            mac.update(bytes);
        }
    }

    /// The secret whose HMAC equals `expected`, compared in constant time; `None` if none does.
    pub fn matching(self, expected: &[u8; 32]) -> Option<&'a WebhookSecret> {
        self.macs
            .into_iter()
            .zip(self.secrets)
            .find_map(|(mac, secret)| mac.verify_slice(expected).is_ok().then_some(secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!".
    const GITHUB_EXAMPLE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn matches_githubs_documented_example() {
        assert_eq!(
            gma_testkit::sign("It's a Secret to Everybody", b"Hello, World!"),
            GITHUB_EXAMPLE
        );
        let secrets = [
            WebhookSecret::new("old", "nope"),
            WebhookSecret::new("new", "It's a Secret to Everybody"),
        ];
        let mut check = SignatureCheck::new(&secrets);
        check.update(b"Hello, ");
        check.update(b"World!");
        let expected = parse_signature(GITHUB_EXAMPLE).unwrap();
        assert_eq!(
            check.matching(&expected).map(WebhookSecret::id),
            Some("new")
        );
    }

    #[test]
    fn a_wrong_secret_or_body_matches_nothing() {
        let secrets = [WebhookSecret::new("a", "other")];
        let mut check = SignatureCheck::new(&secrets);
        check.update(b"Hello, World!");
        assert!(
            check
                .matching(&parse_signature(GITHUB_EXAMPLE).unwrap())
                .is_none()
        );
    }

    #[test]
    fn refuses_malformed_headers() {
        for bad in [
            "",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107ea",
            "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ] {
            assert_eq!(
                parse_signature(bad),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let secret = WebhookSecret::new("GITHUB_WEBHOOK_SECRET", "hunter2-very-secret");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn parses_secret_lists() {
        let secrets = parse_secret_list("f", "# rotation\n old \n\nnew1,new2\n");
        let ids: Vec<_> = secrets.iter().map(WebhookSecret::id).collect();
        assert_eq!(ids, ["f:2", "f:4[1]", "f:4[2]"]);
        assert_eq!(secrets[0].key, b"old");
        assert_eq!(secrets[2].key, b"new2");
    }
}
