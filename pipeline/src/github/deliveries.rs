//! Webhook deliveries: GitHub's log of every attempt to deliver an event to a hook, the one
//! place a missed event can be found again.
//!
//! The same routes exist for the App's hook (JWT auth) and for repository and organization
//! hooks (token auth): list (newest first, 100 a page, cursor in `Link`), get one (with the
//! original request's headers and payload), and redeliver (`POST .../attempts`, 202).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::client::{Auth, GitHubClient, decode};
use super::error::GitHubError;
use super::link;

/// A webhook whose deliveries GitHub keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookRef {
    /// The GitHub App's webhook (`/app/hook`).
    App,
    /// A repository's webhook.
    Repo {
        /// The repository's owner.
        owner: String,
        /// The repository's name.
        repo: String,
        /// The hook's id.
        hook_id: i64,
    },
    /// An organization's webhook.
    Org {
        /// The organization's login.
        org: String,
        /// The hook's id.
        hook_id: i64,
    },
}

impl HookRef {
    /// The hook's deliveries route, relative to the API URL.
    pub fn deliveries_path(&self) -> String {
        match self {
            Self::App => "/app/hook/deliveries".to_owned(),
            Self::Repo {
                owner,
                repo,
                hook_id,
            } => format!("/repos/{owner}/{repo}/hooks/{hook_id}/deliveries"),
            Self::Org { org, hook_id } => format!("/orgs/{org}/hooks/{hook_id}/deliveries"),
        }
    }

    /// Whether the hook's routes authenticate as the App (else with a token).
    pub fn is_app(&self) -> bool {
        matches!(self, Self::App)
    }
}

/// `app`, `repos/OWNER/REPO/hooks/ID` or `orgs/ORG/hooks/ID`: the form used in flags and in
/// the checkpoint table.
impl fmt::Display for HookRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::App => f.write_str("app"),
            Self::Repo {
                owner,
                repo,
                hook_id,
            } => write!(f, "repos/{owner}/{repo}/hooks/{hook_id}"),
            Self::Org { org, hook_id } => write!(f, "orgs/{org}/hooks/{hook_id}"),
        }
    }
}

/// Why a hook reference does not parse.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0:?} names no webhook; write app, repos/OWNER/REPO/hooks/ID or orgs/ORG/hooks/ID \
     (the hook id is in the hook's settings URL)"
)]
pub struct HookRefError(String);

impl FromStr for HookRef {
    type Err = HookRefError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || HookRefError(text.to_owned());
        let name_ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        let parts: Vec<&str> = text.trim().trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["app"] => Ok(Self::App),
            ["repos", owner, repo, "hooks", id] if name_ok(owner) && name_ok(repo) => {
                Ok(Self::Repo {
                    owner: (*owner).to_owned(),
                    repo: (*repo).to_owned(),
                    hook_id: id.parse().map_err(|_| bad())?,
                })
            }
            ["orgs", org, "hooks", id] if name_ok(org) => Ok(Self::Org {
                org: (*org).to_owned(),
                hook_id: id.parse().map_err(|_| bad())?,
            }),
            _ => Err(bad()),
        }
    }
}

/// One delivery attempt, as GitHub lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Delivery {
    /// The attempt's id: increases with time, unique per attempt.
    pub id: i64,
    /// The event's GUID (`X-GitHub-Delivery`), the same on every attempt of one event.
    pub guid: String,
    /// When GitHub made the attempt.
    pub delivered_at: DateTime<Utc>,
    /// Whether this attempt is a redelivery.
    #[serde(default)]
    pub redelivery: bool,
    /// GitHub's words for the outcome ("OK", "Invalid HTTP Response: 503", ...).
    #[serde(default)]
    pub status: String,
    /// The receiver's HTTP status; 0 when there was no answer (timeout, refused connection).
    #[serde(default)]
    pub status_code: i64,
    /// The event type.
    #[serde(default)]
    pub event: String,
    /// The event's action, if it has one.
    #[serde(default)]
    pub action: Option<String>,
    /// The installation the event belongs to.
    #[serde(default)]
    pub installation_id: Option<i64>,
    /// The repository the event belongs to.
    #[serde(default)]
    pub repository_id: Option<i64>,
}

impl Delivery {
    /// Whether the receiver took this attempt (a 2xx answer).
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

/// The original request of a delivery: GitHub's headers and the payload.
#[derive(Debug, Clone, Deserialize)]
pub struct DeliveryRequest {
    /// The request headers, by name as GitHub wrote them.
    #[serde(default)]
    pub headers: serde_json::Map<String, serde_json::Value>,
    /// The payload as GitHub returns it (JSON text).
    pub payload: Option<Box<RawValue>>,
}

impl DeliveryRequest {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    }
}

/// One delivery with its original request, from `GET .../deliveries/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeliveryDetail {
    /// The attempt, as listed.
    #[serde(flatten)]
    pub delivery: Delivery,
    /// The request GitHub sent.
    pub request: DeliveryRequest,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct DeliveryPage {
    /// The attempts, newest first.
    pub deliveries: Vec<Delivery>,
    /// The cursor of the next (older) page, if any.
    pub next_cursor: Option<String>,
}

impl GitHubClient {
    /// Lists one page (`per_page` up to 100) of `hook`'s deliveries, newest first, starting at
    /// `cursor` (the first page without).
    ///
    /// # Errors
    /// As [`GitHubClient::send`], plus [`GitHubError::Decode`].
    pub async fn list_deliveries(
        &self,
        hook: &HookRef,
        auth: &Auth,
        per_page: u8,
        cursor: Option<&str>,
    ) -> Result<DeliveryPage, GitHubError> {
        let mut path = format!("{}?per_page={}", hook.deliveries_path(), per_page.min(100));
        if let Some(cursor) = cursor {
            path.push_str("&cursor=");
            path.extend(form_urlencoded_byte_serialize(cursor));
        }
        let (deliveries, headers) = self.get_json::<Vec<Delivery>>(&path, auth).await?;
        let next_cursor = headers
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(link::next_url)
            .and_then(|next| link::query_param(next, "cursor"));
        Ok(DeliveryPage {
            deliveries,
            next_cursor,
        })
    }

    /// One delivery with its original request headers and payload.
    ///
    /// # Errors
    /// As [`GitHubClient::send`] (404 for an id GitHub no longer keeps).
    pub async fn get_delivery(
        &self,
        hook: &HookRef,
        auth: &Auth,
        id: i64,
    ) -> Result<DeliveryDetail, GitHubError> {
        let path = format!("{}/{id}", hook.deliveries_path());
        let response = self.send(Method::GET, &path, auth, None).await?;
        decode(&path, response).await
    }

    /// Asks GitHub to deliver attempt `id`'s event again. GitHub answers 202 and delivers
    /// soon after; the new attempt appears in the listing.
    ///
    /// # Errors
    /// As [`GitHubClient::send`]; an unexpected success status is a [`GitHubError::Status`].
    pub async fn redeliver(&self, hook: &HookRef, auth: &Auth, id: i64) -> Result<(), GitHubError> {
        let path = format!("{}/{id}/attempts", hook.deliveries_path());
        let response = self.send(Method::POST, &path, auth, None).await?;
        let status = response.status();
        if status == StatusCode::ACCEPTED
            || status == StatusCode::OK
            || status == StatusCode::CREATED
        {
            return Ok(());
        }
        Err(GitHubError::Status {
            method: "POST".into(),
            path,
            status: status.as_u16(),
            message: "expected 202 Accepted".into(),
            hint: "",
        })
    }
}

/// Percent-encodes a query value.
fn form_urlencoded_byte_serialize(value: &str) -> impl Iterator<Item = &str> {
    url::form_urlencoded::byte_serialize(value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_refs_round_trip_and_refuse_paths_that_escape() {
        for text in ["app", "repos/acme/widgets/hooks/12", "orgs/acme/hooks/7"] {
            assert_eq!(text.parse::<HookRef>().unwrap().to_string(), text);
        }
        assert_eq!(
            "repos/acme/widgets/hooks/12"
                .parse::<HookRef>()
                .unwrap()
                .deliveries_path(),
            "/repos/acme/widgets/hooks/12/deliveries"
        );
        for bad in [
            "",
            "apps",
            "repos/acme/hooks/1",
            "repos/../x/hooks/1",
            "orgs/a/hooks/x",
            "orgs/a b/hooks/1",
        ] {
            let error = bad.parse::<HookRef>().unwrap_err().to_string();
            assert!(error.contains("repos/OWNER/REPO/hooks/ID"), "{error}");
        }
    }

    #[test]
    fn parses_github_s_delivery_and_its_request() {
        let detail: DeliveryDetail = serde_json::from_str(
            r#"{"id":12345678,"guid":"0b989ba4-242f-11e5-81e1-c7b6966d2516",
            "delivered_at":"2019-06-03T00:57:16Z","redelivery":false,"duration":0.27,
            "status":"OK","status_code":200,"event":"issues","action":"opened",
            "installation_id":123,"repository_id":456,"throttled_at":null,
            "url":"https://www.example.com",
            "request":{"headers":{"X-GitHub-Delivery":"0b989ba4-242f-11e5-81e1-c7b6966d2516",
            "X-GitHub-Event":"issues"},"payload":{"action":"opened","b":[1, 2]}},
            "response":{"headers":{},"payload":"ok"}}"#,
        )
        .unwrap();
        assert!(detail.delivery.succeeded());
        assert_eq!(detail.request.header("x-github-event"), Some("issues"));
        assert_eq!(
            detail.request.payload.unwrap().get(),
            r#"{"action":"opened","b":[1, 2]}"#
        );
    }
}
