//! The App's JSON Web Token: how a GitHub App proves it is itself.
//!
//! GitHub wants RS256, `iss` = the App's id, `exp` at most 10 minutes ahead, and recommends an
//! `iat` 60 s in the past to absorb clock drift. A token is reused until a minute before it
//! expires, so a long listing does not sign one per page.

use std::fmt;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::error::GitHubError;

/// How long a minted JWT is valid (GitHub's maximum is 10 minutes).
const LIFETIME: Duration = Duration::minutes(9);
/// How far `iat` is set in the past, for machines whose clock runs ahead of GitHub's.
const BACKDATE: Duration = Duration::seconds(60);
/// A cached JWT is replaced once it has less than this left.
const REFRESH_BEFORE: Duration = Duration::seconds(60);

#[derive(Serialize)]
struct Claims<'a> {
    iat: i64,
    exp: i64,
    iss: &'a str,
}

/// A GitHub App's identity: its id and private key. Its `Debug` never shows the key.
pub struct AppKey {
    app_id: String,
    key: EncodingKey,
    cached: Mutex<Option<(String, DateTime<Utc>)>>,
}

impl fmt::Debug for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppKey")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl AppKey {
    /// The App `app_id` (its numeric id or its client id, both accepted as `iss`) with the PEM
    /// text of its private key, as downloaded from the App's settings.
    ///
    /// # Errors
    /// [`GitHubError::Key`] when `pem` is not an RSA private key; [`GitHubError::Config`] when
    /// the id is empty.
    pub fn from_pem(app_id: &str, pem: &[u8]) -> Result<Self, GitHubError> {
        let app_id = app_id.trim();
        if app_id.is_empty() {
            return Err(GitHubError::Config(
                "GITHUB_APP_ID is empty; set it to the App's id from its settings page".into(),
            ));
        }
        let key = EncodingKey::from_rsa_pem(pem).map_err(|e| GitHubError::Key(e.to_string()))?;
        let app = Self {
            app_id: app_id.to_owned(),
            key,
            cached: Mutex::new(None),
        };
        // Sign once now, so a key that parses but cannot sign fails at start-up.
        app.mint(Utc::now())?;
        Ok(app)
    }

    /// The App's id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// A JWT valid for at least another minute.
    ///
    /// # Errors
    /// [`GitHubError::Key`] if signing fails.
    pub fn token(&self) -> Result<String, GitHubError> {
        let now = Utc::now();
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((token, expires)) = cached.as_ref()
            && *expires - now > REFRESH_BEFORE
        {
            return Ok(token.clone());
        }
        let (token, expires) = self.mint(now)?;
        *cached = Some((token.clone(), expires));
        Ok(token)
    }

    /// Forgets the cached JWT, after GitHub refused it.
    pub fn forget(&self) {
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *cached = None;
    }

    fn mint(&self, now: DateTime<Utc>) -> Result<(String, DateTime<Utc>), GitHubError> {
        let iat = now - BACKDATE;
        let exp = iat + LIFETIME;
        let claims = Claims {
            iat: iat.timestamp(),
            exp: exp.timestamp(),
            iss: &self.app_id,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| GitHubError::Key(e.to_string()))?;
        Ok((token, exp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    const PRIVATE: &str = include_str!("../../../testdata/github-app/test-app-private-key.pem");
    const PUBLIC: &str = include_str!("../../../testdata/github-app/test-app-public-key.pem");

    #[derive(serde::Deserialize)]
    struct Decoded {
        iat: i64,
        exp: i64,
        iss: String,
    }

    #[test]
    fn signs_a_token_github_accepts_and_reuses_it() {
        let app = AppKey::from_pem("12345", PRIVATE.as_bytes()).unwrap();
        let token = app.token().unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&["12345"]);
        let key = DecodingKey::from_rsa_pem(PUBLIC.as_bytes()).unwrap();
        let claims = jsonwebtoken::decode::<Decoded>(&token, &key, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims.iss, "12345");
        let now = Utc::now().timestamp();
        assert!(claims.iat <= now - 59 && claims.iat >= now - 70);
        assert!(
            claims.exp - claims.iat <= 600,
            "GitHub refuses exp > 10 min"
        );
        assert!(claims.exp > now + 60);
        assert_eq!(app.token().unwrap(), token, "a fresh token is reused");
        app.forget();
        assert!(app.token().is_ok());
    }

    #[test]
    fn a_bad_key_says_what_to_set_and_hides_the_text() {
        let error = AppKey::from_pem(
            "1",
            b"-----BEGIN RSA PRIVATE KEY-----\nnot-a-key\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("GITHUB_PRIVATE_KEY"), "{error}");
        assert!(!error.contains("not-a-key"), "{error}");
        let debug = format!("{:?}", AppKey::from_pem("7", PRIVATE.as_bytes()).unwrap());
        assert!(!debug.contains("PRIVATE"), "{debug}");
        assert!(AppKey::from_pem(" ", PRIVATE.as_bytes()).is_err());
    }
}
