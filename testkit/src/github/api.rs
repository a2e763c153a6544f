//! The API host: one handler that classifies the path, records the call, applies faults,
//! checks credentials and answers like GitHub.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{SecondsFormat, Utc};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::faults::{self, Route, error_body};
use super::{
    AuthKind, Delivery, FakeGitHub, HookRef, IssuedToken, RecordedRequest, Shared,
    State as FakeState,
};

/// Default and maximum `per_page` of the deliveries lists (GitHub's).
const PER_PAGE_DEFAULT: usize = 30;
const PER_PAGE_MAX: usize = 100;
/// Clock skew allowed on `iat`, seconds.
const IAT_SKEW_SECS: i64 = 60;
/// The longest App JWT GitHub accepts, seconds from `iat` to `exp`.
const JWT_MAX_LIFETIME_SECS: i64 = 600;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// What a request asks for, with its path parameters.
#[derive(Debug)]
enum Endpoint {
    AccessTokens {
        installation_id: u64,
    },
    ListDeliveries {
        hook: HookRef,
    },
    GetDelivery {
        hook: HookRef,
        id: i64,
    },
    Redeliver {
        hook: HookRef,
        id: i64,
    },
    RunLogs {
        owner: String,
        repo: String,
        run_id: u64,
        attempt: Option<u32>,
    },
    WorkflowRun {
        owner: String,
        repo: String,
        run_id: u64,
    },
    Other,
}

impl Endpoint {
    fn route(&self) -> Route {
        match self {
            Self::AccessTokens { .. } => Route::AccessTokens,
            Self::ListDeliveries { .. } => Route::ListDeliveries,
            Self::GetDelivery { .. } => Route::GetDelivery,
            Self::Redeliver { .. } => Route::Redeliver,
            Self::RunLogs { .. } => Route::RunLogs,
            Self::WorkflowRun { .. } => Route::WorkflowRun,
            Self::Other => Route::Other,
        }
    }
}

fn classify(method: &Method, path: &str) -> Endpoint {
    let mut segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // GitHub Enterprise Server serves the API under /api/v3; accept that base too.
    if segments.len() > 2 && segments[0] == "api" && segments[1] == "v3" {
        segments.drain(..2);
    }
    let (hook, rest): (HookRef, &[&str]) =
        match segments.as_slice() {
            ["app", "installations", id, "access_tokens"] if method == Method::POST => {
                return id.parse().map_or(Endpoint::Other, |installation_id| {
                    Endpoint::AccessTokens { installation_id }
                });
            }
            ["repos", owner, repo, "actions", "runs", run, rest @ ..] if method == Method::GET => {
                let Ok(run_id) = run.parse() else {
                    return Endpoint::Other;
                };
                let attempt = match rest {
                    [] => {
                        return Endpoint::WorkflowRun {
                            owner: owner.to_lowercase(),
                            repo: repo.to_lowercase(),
                            run_id,
                        };
                    }
                    ["logs"] => None,
                    ["attempts", n, "logs"] => match n.parse() {
                        Ok(n) => Some(n),
                        Err(_) => return Endpoint::Other,
                    },
                    _ => return Endpoint::Other,
                };
                return Endpoint::RunLogs {
                    owner: owner.to_lowercase(),
                    repo: repo.to_lowercase(),
                    run_id,
                    attempt,
                };
            }
            ["app", "hook", "deliveries", rest @ ..] => (HookRef::App, rest),
            [
                "repos",
                owner,
                repo,
                "hooks",
                hook_id,
                "deliveries",
                rest @ ..,
            ] => match hook_id.parse() {
                Ok(hook_id) => (HookRef::repo(owner, repo, hook_id).normalized(), rest),
                Err(_) => return Endpoint::Other,
            },
            ["orgs", org, "hooks", hook_id, "deliveries", rest @ ..] => match hook_id.parse() {
                Ok(hook_id) => (HookRef::org(org, hook_id).normalized(), rest),
                Err(_) => return Endpoint::Other,
            },
            _ => return Endpoint::Other,
        };
    match (rest, method) {
        ([], &Method::GET) => Endpoint::ListDeliveries { hook },
        ([id], &Method::GET) => id
            .parse()
            .map_or(Endpoint::Other, |id| Endpoint::GetDelivery { hook, id }),
        ([id, "attempts"], &Method::POST) => id
            .parse()
            .map_or(Endpoint::Other, |id| Endpoint::Redeliver { hook, id }),
        _ => Endpoint::Other,
    }
}

/// The `Authorization` header, split.
enum Credential {
    None,
    /// `Bearer x` or `token x`.
    Secret(String),
    Malformed,
}

fn credential(headers: &HeaderMap) -> Credential {
    let Some(value) = headers.get("authorization") else {
        return Credential::None;
    };
    let Ok(value) = value.to_str() else {
        return Credential::Malformed;
    };
    let (scheme, secret) = value.split_once(' ').unwrap_or((value, ""));
    if (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        && !secret.trim().is_empty()
    {
        Credential::Secret(secret.trim().to_owned())
    } else {
        Credential::Malformed
    }
}

fn looks_like_jwt(secret: &str) -> bool {
    secret.split('.').count() == 3
}

fn token_valid(state: &FakeState, secret: &str) -> bool {
    secret == FakeGitHub::PAT
        || state
            .tokens
            .get(secret)
            .is_some_and(|t| t.expires_at > Utc::now())
}

fn auth_kind(state: &FakeState, credential: &Credential) -> AuthKind {
    match credential {
        Credential::None => AuthKind::None,
        Credential::Secret(s) if token_valid(state, s) => AuthKind::Token,
        Credential::Secret(s) if looks_like_jwt(s) => AuthKind::Jwt,
        _ => AuthKind::Other,
    }
}

fn unauthorized(message: &str) -> Response {
    error_body(401, message, "https://docs.github.com/rest")
}

/// Checks an App JWT the way GitHub does; the error is the 401 to answer.
fn require_jwt(shared: &Shared, credential: &Credential) -> Result<(), &'static str> {
    let Credential::Secret(token) = credential else {
        return Err("You must authenticate with a JSON web token (JWT) to access this endpoint.");
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(token, &shared.decoding_key, &validation)
        .map_err(|_| "A JSON web token could not be decoded")?
        .claims;
    let issuer_ok = match &claims["iss"] {
        Value::Number(n) => n.as_u64() == Some(FakeGitHub::APP_ID),
        Value::String(s) => {
            s == FakeGitHub::CLIENT_ID || s.parse::<u64>().ok() == Some(FakeGitHub::APP_ID)
        }
        _ => false,
    };
    if !issuer_ok {
        return Err("Integration not found");
    }
    let now = Utc::now().timestamp();
    let Some(iat) = claims["iat"].as_i64() else {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued.",
        );
    };
    let Some(exp) = claims["exp"].as_i64() else {
        return Err(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.",
        );
    };
    if iat > now + IAT_SKEW_SECS {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing a time in the past.",
        );
    }
    if exp <= now {
        return Err(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.",
        );
    }
    if exp - iat > JWT_MAX_LIFETIME_SECS {
        return Err("'Expiration time' claim ('exp') is too far in the future.");
    }
    Ok(())
}

/// Checks an installation token (or the PAT).
pub(super) fn require_token(shared: &Shared, headers: &HeaderMap) -> Result<(), &'static str> {
    match credential(headers) {
        Credential::Secret(s) if token_valid(&shared.lock(), &s) => Ok(()),
        _ => Err("Bad credentials"),
    }
}

fn require_for_hook(
    shared: &Shared,
    hook: &HookRef,
    headers: &HeaderMap,
) -> Result<(), &'static str> {
    match hook {
        HookRef::App => require_jwt(shared, &credential(headers)),
        _ => require_token(shared, headers),
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let endpoint = classify(&method, uri.path());
    let route = endpoint.route();
    let fired = {
        let mut state = shared.lock();
        let kind = auth_kind(&state, &credential(&headers));
        state.requests.push(RecordedRequest {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            route,
            auth_kind: kind,
        });
        *state.calls.entry(route).or_default() += 1;
        let now = Utc::now().timestamp();
        if now >= state.rate_reset {
            state.rate_reset = now + 3600;
            state.rate_used = 0;
        }
        state.rate_used += 1;
        faults::take(&mut state.faults, route, false)
    };
    let mut response = match fired {
        Some(faults::Fired::Delay(millis)) => {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            dispatch(&shared, endpoint, &uri, &headers, &body).await
        }
        Some(fired) => faults::respond(fired),
        None => dispatch(&shared, endpoint, &uri, &headers, &body).await,
    };
    add_rate_headers(&shared, &mut response);
    response
}

fn add_rate_headers(shared: &Shared, response: &mut Response) {
    let (limit, used, reset) = {
        let state = shared.lock();
        (state.rate_limit, state.rate_used, state.rate_reset)
    };
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: HeaderValue| {
        if !headers.contains_key(name) {
            headers.insert(name, value);
        }
    };
    set("x-ratelimit-limit", HeaderValue::from(limit));
    set(
        "x-ratelimit-remaining",
        HeaderValue::from(limit.saturating_sub(used)),
    );
    set("x-ratelimit-reset", HeaderValue::from(reset));
    set("x-ratelimit-used", HeaderValue::from(used));
    set("x-ratelimit-resource", HeaderValue::from_static("core"));
    set(
        "x-github-api-version-selected",
        HeaderValue::from_static("2022-11-28"),
    );
}

async fn dispatch(
    shared: &Arc<Shared>,
    endpoint: Endpoint,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let checked = match &endpoint {
        Endpoint::AccessTokens { .. } => require_jwt(shared, &credential(headers)),
        Endpoint::ListDeliveries { hook }
        | Endpoint::GetDelivery { hook, .. }
        | Endpoint::Redeliver { hook, .. } => require_for_hook(shared, hook, headers),
        Endpoint::RunLogs { .. } | Endpoint::WorkflowRun { .. } => require_token(shared, headers),
        Endpoint::Other => Ok(()),
    };
    if let Err(message) = checked {
        return unauthorized(message);
    }
    match endpoint {
        Endpoint::AccessTokens { installation_id } => issue_token(shared, installation_id, body),
        Endpoint::ListDeliveries { hook } => list_deliveries(shared, &hook, uri),
        Endpoint::GetDelivery { hook, id } => get_delivery(shared, &hook, id),
        Endpoint::Redeliver { hook, id } => redeliver(shared, &hook, id).await,
        Endpoint::RunLogs {
            owner,
            repo,
            run_id,
            attempt,
        } => super::logs::run_logs(shared, &owner, &repo, run_id, attempt),
        Endpoint::WorkflowRun {
            owner,
            repo,
            run_id,
        } => super::logs::workflow_run(shared, &owner, &repo, run_id),
        Endpoint::Other => not_found("https://docs.github.com/rest"),
    }
}

fn not_found(documentation_url: &str) -> Response {
    error_body(404, "Not Found", documentation_url)
}

fn issue_token(shared: &Shared, installation_id: u64, body: &Bytes) -> Response {
    let requested: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let permissions = match &requested["permissions"] {
        Value::Object(p) if !p.is_empty() => Value::Object(p.clone()),
        _ => json!({"actions": "read"}),
    };
    let mut state = shared.lock();
    state.token_counter += 1;
    let digest = Sha256::digest(format!(
        "{}:{installation_id}:{}",
        shared.archive_secret, state.token_counter
    ));
    let token = format!("ghs_{}", &hex::encode(digest)[..36]);
    let lifetime = chrono::Duration::from_std(state.token_lifetime)
        .unwrap_or_else(|_| chrono::Duration::hours(1));
    let expires_at = Utc::now() + lifetime;
    state
        .tokens
        .insert(token.clone(), IssuedToken { expires_at });
    *state.tokens_issued.entry(installation_id).or_default() += 1;
    let body = json!({
        "token": token,
        "expires_at": expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "permissions": permissions,
        "repository_selection": "all",
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// GitHub's `status` text for a delivery's status code.
fn status_text(code: u16) -> String {
    match code {
        200..=299 => "OK".into(),
        0 => "failed to connect to host".into(),
        _ => format!("Invalid HTTP Response: {code}"),
    }
}

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn summary(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "guid": d.guid,
        "delivered_at": rfc3339(d.delivered_at),
        "redelivery": d.redelivery,
        "duration": d.duration,
        "status": status_text(d.status_code),
        "status_code": d.status_code,
        "event": d.event,
        "action": d.action,
        "installation_id": d.installation_id,
        "repository_id": d.repository_id,
        "throttled_at": null,
    })
}

/// The opaque cursor meaning "deliveries older than `id`".
fn encode_cursor(id: i64) -> String {
    hex::encode(format!("v1:{id}"))
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let bytes = hex::decode(cursor).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("v1:")?
        .parse()
        .ok()
}

fn list_deliveries(shared: &Shared, hook: &HookRef, uri: &Uri) -> Response {
    let mut per_page = PER_PAGE_DEFAULT;
    let mut before: Option<i64> = None;
    for (key, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "per_page" => match value.parse::<usize>() {
                Ok(n) => per_page = n.clamp(1, PER_PAGE_MAX),
                Err(_) => {
                    return error_body(422, "Invalid per_page", "https://docs.github.com/rest");
                }
            },
            "cursor" if !value.is_empty() => match decode_cursor(&value) {
                Some(id) => before = Some(id),
                None => return error_body(400, "Invalid cursor", "https://docs.github.com/rest"),
            },
            _ => {}
        }
    }
    let state = shared.lock();
    let all: &[Delivery] = state.hooks.get(hook).map_or(&[], Vec::as_slice);
    let end = before.map_or(all.len(), |b| all.partition_point(|d| d.id < b));
    let start = end.saturating_sub(per_page);
    let page: Vec<Value> = all[start..end].iter().rev().map(summary).collect();
    let mut response = axum::Json(Value::Array(page)).into_response();
    if start > 0 {
        let link = format!(
            "<{}{}?per_page={per_page}&cursor={}>; rel=\"next\"",
            shared.base_url,
            uri.path(),
            encode_cursor(all[start].id)
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert("link", value);
        }
    }
    response
}

fn find(state: &FakeState, hook: &HookRef, id: i64) -> Option<Delivery> {
    let list = state.hooks.get(hook)?;
    let index = list.binary_search_by_key(&id, |d| d.id).ok()?;
    Some(list[index].clone())
}

const DELIVERY_DOCS: &str =
    "https://docs.github.com/rest/webhooks/repo-deliveries#get-a-delivery-for-a-repository-webhook";

fn get_delivery(shared: &Shared, hook: &HookRef, id: i64) -> Response {
    let state = shared.lock();
    let Some(d) = find(&state, hook, id) else {
        return not_found(DELIVERY_DOCS);
    };
    let body = serde_json::to_vec(&*d.payload).unwrap_or_default();
    let (target_type, target_id) = match hook {
        HookRef::App => ("integration", Some(FakeGitHub::APP_ID as i64)),
        HookRef::Repo { .. } => ("repository", d.repository_id),
        HookRef::Org { .. } => ("organization", None),
    };
    let mut detail = summary(&d);
    detail["url"] = json!(
        state
            .redelivery_target
            .clone()
            .unwrap_or_else(|| "https://example.com/webhook".into())
    );
    detail["request"] = json!({
        "headers": {
            "Accept": "*/*",
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/fake",
            "X-GitHub-Delivery": d.guid,
            "X-GitHub-Event": d.event,
            "X-GitHub-Hook-ID": hook.hook_id().to_string(),
            "X-GitHub-Hook-Installation-Target-ID": target_id.unwrap_or(0).to_string(),
            "X-GitHub-Hook-Installation-Target-Type": target_type,
            "X-Hub-Signature-256": crate::sign(&state.webhook_secret, &body),
        },
        "payload": *d.payload,
    });
    detail["response"] = json!({
        "headers": {"Content-Type": "text/plain; charset=utf-8"},
        "payload": d.response_body,
    });
    axum::Json(detail).into_response()
}

async fn redeliver(shared: &Shared, hook: &HookRef, id: i64) -> Response {
    let (original, target, secret, outcome) = {
        let mut state = shared.lock();
        let Some(original) = find(&state, hook, id) else {
            return not_found(DELIVERY_DOCS);
        };
        *state.redeliveries.entry(id).or_default() += 1;
        (
            original,
            state.redelivery_target.clone(),
            state.webhook_secret.clone(),
            state.redelivery_outcome,
        )
    };
    let started = Instant::now();
    let (status_code, response_body) = match target {
        Some(url) => {
            let body = serde_json::to_vec(&*original.payload).unwrap_or_default();
            let sent = shared
                .client
                .post(&url)
                .header("content-type", "application/json")
                .header("user-agent", "GitHub-Hookshot/fake")
                .header("x-github-delivery", &original.guid)
                .header("x-github-event", &original.event)
                .header("x-github-hook-id", hook.hook_id().to_string())
                .header("x-hub-signature-256", crate::sign(&secret, &body))
                .body(body)
                .send()
                .await;
            match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    (status, response.text().await.unwrap_or_default())
                }
                Err(_) => (0, String::new()),
            }
        }
        None => (outcome, String::new()),
    };
    let duration = started.elapsed().as_secs_f64();
    {
        let mut state = shared.lock();
        let new_id = state.next_delivery_id;
        state.next_delivery_id += 1;
        let attempt = Delivery {
            id: new_id,
            redelivery: true,
            status_code,
            delivered_at: Utc::now(),
            duration,
            response_body,
            ..original
        };
        state.hooks.entry(hook.clone()).or_default().push(attempt);
    }
    (StatusCode::ACCEPTED, axum::Json(json!({}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(12345)), Some(12345));
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(decode_cursor(&hex::encode("v2:1")), None);
    }

    #[test]
    fn paths_are_classified() {
        let e = classify(&Method::GET, "/repos/Octo/Repo/hooks/7/deliveries/99");
        assert!(
            matches!(e, Endpoint::GetDelivery { hook: HookRef::Repo { ref owner, hook_id: 7, .. }, id: 99 } if owner == "octo")
        );
        let e = classify(&Method::POST, "/api/v3/app/hook/deliveries/5/attempts");
        assert!(matches!(
            e,
            Endpoint::Redeliver {
                hook: HookRef::App,
                id: 5
            }
        ));
        let e = classify(&Method::GET, "/repos/o/r/actions/runs/9/attempts/2/logs");
        assert!(matches!(
            e,
            Endpoint::RunLogs {
                run_id: 9,
                attempt: Some(2),
                ..
            }
        ));
        assert!(matches!(
            classify(&Method::DELETE, "/app/hook/deliveries"),
            Endpoint::Other
        ));
    }
}
