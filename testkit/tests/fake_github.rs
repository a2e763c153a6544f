//! The fake GitHub API over real HTTP: what the retry and leech tests rely on.

use std::io::Read;
use std::sync::{Arc, Mutex};

use gma_testkit::github::{
    AuthKind, FakeGitHub, Fault, HookRef, Logs, NewDelivery, Route, logs_zip,
};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn get(url: &str, auth: Option<&str>) -> reqwest::Response {
    let mut request = client().get(url);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    request.send().await.unwrap()
}

async fn installation_token(gh: &FakeGitHub, installation: u64) -> String {
    let response = client()
        .post(format!(
            "{}/app/installations/{installation}/access_tokens",
            gh.url()
        ))
        .bearer_auth(FakeGitHub::app_jwt())
        .json(&json!({"permissions": {"actions": "read"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["permissions"], json!({"actions": "read"}));
    assert_eq!(body["repository_selection"], "all");
    let expires = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert!((expires - now() - 3600).abs() < 5, "a token lives one hour");
    body["token"].as_str().unwrap().to_owned()
}

async fn installation_token_unchecked(gh: &FakeGitHub, installation: u64) -> String {
    let response = client()
        .post(format!(
            "{}/app/installations/{installation}/access_tokens",
            gh.url()
        ))
        .bearer_auth(FakeGitHub::app_jwt())
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        (rel.trim() == "rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

#[tokio::test]
async fn app_jwts_and_tokens_are_checked_like_github() {
    let gh = FakeGitHub::start().await;
    let list = format!("{}/app/hook/deliveries", gh.url());
    let bearer = |jwt: String| format!("Bearer {jwt}");

    let ok = get(&list, Some(&bearer(FakeGitHub::app_jwt()))).await;
    assert_eq!(ok.status(), 200);
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-used",
        "x-ratelimit-resource",
    ] {
        assert!(ok.headers().contains_key(name), "{name} missing");
    }
    let numeric_iss = FakeGitHub::sign_jwt(
        &json!({"iat": now() - 60, "exp": now() + 540, "iss": FakeGitHub::APP_ID}),
    );
    assert_eq!(get(&list, Some(&bearer(numeric_iss))).await.status(), 200);
    let client_id_iss = FakeGitHub::sign_jwt(
        &json!({"iat": now() - 60, "exp": now() + 540, "iss": FakeGitHub::CLIENT_ID}),
    );
    assert_eq!(get(&list, Some(&bearer(client_id_iss))).await.status(), 200);

    let wrong_key =
        jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("data/wrong-app-key.pem")).unwrap();
    let wrong_key_jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &json!({"iat": now() - 60, "exp": now() + 540, "iss": FakeGitHub::APP_ID}),
        &wrong_key,
    )
    .unwrap();
    let refused = [
        (
            "expired",
            FakeGitHub::sign_jwt(
                &json!({"iat": now() - 700, "exp": now() - 100, "iss": FakeGitHub::APP_ID}),
            ),
        ),
        (
            "wrong iss",
            FakeGitHub::sign_jwt(&json!({"iat": now() - 60, "exp": now() + 540, "iss": 1})),
        ),
        (
            "iat ahead",
            FakeGitHub::sign_jwt(
                &json!({"iat": now() + 300, "exp": now() + 600, "iss": FakeGitHub::APP_ID}),
            ),
        ),
        (
            "too long",
            FakeGitHub::sign_jwt(
                &json!({"iat": now() - 60, "exp": now() + 900, "iss": FakeGitHub::APP_ID}),
            ),
        ),
        ("wrong key", wrong_key_jwt),
        ("a PAT", FakeGitHub::PAT.to_owned()),
    ];
    for (what, jwt) in refused {
        let response = get(&list, Some(&bearer(jwt))).await;
        assert_eq!(response.status(), 401, "{what}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
        assert!(body["documentation_url"].is_string(), "{what}");
    }
    assert_eq!(get(&list, None).await.status(), 401);

    // Repository hooks take an installation token or the PAT, in either scheme.
    let token = installation_token(&gh, 7).await;
    installation_token(&gh, 7).await;
    assert_eq!(gh.tokens_issued(7), 2);
    assert_eq!(gh.tokens_issued(8), 0);
    let repo_list = format!("{}/repos/octo/demo/hooks/3/deliveries", gh.url());
    assert_eq!(
        get(&repo_list, Some(&format!("token {token}")))
            .await
            .status(),
        200
    );
    assert_eq!(get(&repo_list, Some(&bearer(token))).await.status(), 200);
    let pat = format!("Bearer {}", FakeGitHub::PAT);
    assert_eq!(get(&repo_list, Some(&pat)).await.status(), 200);
    assert_eq!(
        get(&repo_list, Some("token ghs_unknown")).await.status(),
        401
    );
    let app_jwt_on_repo = bearer(FakeGitHub::app_jwt());
    assert_eq!(get(&repo_list, Some(&app_jwt_on_repo)).await.status(), 401);
    // Tokens are not accepted where GitHub wants the App JWT.
    let jwt_route = client()
        .post(format!("{}/app/installations/7/access_tokens", gh.url()))
        .header("authorization", pat)
        .send()
        .await
        .unwrap();
    assert_eq!(jwt_route.status(), 401);

    // An expired installation token is refused.
    gh.set_token_lifetime(std::time::Duration::ZERO);
    let expired = installation_token_unchecked(&gh, 7).await;
    assert_eq!(
        get(&repo_list, Some(&format!("token {expired}")))
            .await
            .status(),
        401
    );

    let kinds: Vec<AuthKind> = gh.requests().iter().map(|r| r.auth_kind).collect();
    assert_eq!(kinds[0], AuthKind::Jwt);
    assert!(kinds.contains(&AuthKind::Token));
    assert!(kinds.contains(&AuthKind::None));
}

#[tokio::test]
async fn pagination_walks_every_delivery_once_newest_first() {
    let gh = FakeGitHub::start().await;
    let hook = HookRef::org("Octo-Org", 99);
    let mut ids = vec![gh.add_delivery(hook.clone(), NewDelivery::new("g0", "push", 500))];
    ids.extend(gh.add_deliveries(
        hook.clone(),
        (1..250).map(|n| {
            let status = if n % 10 == 0 { 500 } else { 200 };
            NewDelivery::new(&format!("g{n}"), "push", status)
        }),
    ));
    // Another hook's deliveries never show up in this list.
    gh.add_delivery(HookRef::App, NewDelivery::new("other", "push", 200));
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let auth = format!("token {}", FakeGitHub::PAT);
    let mut url = format!(
        "{}/orgs/octo-org/hooks/99/deliveries?per_page=100",
        gh.url()
    );
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let response = get(&url, Some(&auth)).await;
        assert_eq!(response.status(), 200);
        pages += 1;
        let next = next_link(&response);
        let page: Vec<Value> = response.json().await.unwrap();
        if pages == 1 {
            let first = page[0].as_object().unwrap();
            let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    "action",
                    "delivered_at",
                    "duration",
                    "event",
                    "guid",
                    "id",
                    "installation_id",
                    "redelivery",
                    "repository_id",
                    "status",
                    "status_code",
                    "throttled_at"
                ]
            );
            assert_eq!(page[0]["guid"], "g249");
            assert_eq!(page[0]["status"], "OK");
            // A delivery added mid-walk is not seen by this walk and does not shift it.
            gh.add_delivery(hook.clone(), NewDelivery::new("late", "push", 200));
        }
        seen.extend(page.iter().map(|d| d["id"].as_i64().unwrap()));
        if let Some(d) = page.iter().find(|d| d["status_code"] == 500) {
            assert_eq!(d["status"], "Invalid HTTP Response: 500");
        }
        match next {
            Some(next) => {
                assert!(
                    next.starts_with(&format!("{}/orgs/octo-org/hooks/99/deliveries?", gh.url()))
                );
                assert!(next.contains("per_page=100"));
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected, "every delivery once, newest first");
    assert_eq!(gh.calls(Route::ListDeliveries), 3);

    // Default page size is 30.
    let response = get(
        &format!("{}/orgs/octo-org/hooks/99/deliveries", gh.url()),
        Some(&auth),
    )
    .await;
    let page: Vec<Value> = response.json().await.unwrap();
    assert_eq!(page.len(), 30);
    assert_eq!(page[0]["guid"], "late");
}

/// A webhook receiver on loopback that records what it got and answers `status`.
async fn receiver(status: u16) -> (String, Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let store = got.clone();
    let app = axum::Router::new().route(
        "/webhook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let store = store.clone();
                async move {
                    store.lock().unwrap().push((headers, body.to_vec()));
                    axum::http::StatusCode::from_u16(status).unwrap()
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

#[tokio::test]
async fn redelivery_really_delivers_a_signed_payload_and_records_the_attempt() {
    let gh = FakeGitHub::start().await;
    let payload = json!({"action": "opened", "number": 7, "repository": {"id": 55}});
    let id = gh.add_delivery(
        HookRef::App,
        NewDelivery {
            action: Some("opened".into()),
            payload: payload.clone(),
            installation_id: Some(9),
            repository_id: Some(55),
            ..NewDelivery::new("guid-7", "pull_request", 502)
        },
    );
    let (url, got) = receiver(202).await;
    gh.set_redelivery_target(&url, "s3cret");
    let jwt = format!("Bearer {}", FakeGitHub::app_jwt());

    let detail: Value = get(
        &format!("{}/app/hook/deliveries/{id}", gh.url()),
        Some(&jwt),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(detail["request"]["payload"], payload);
    assert_eq!(detail["request"]["headers"]["X-GitHub-Delivery"], "guid-7");
    assert_eq!(
        detail["request"]["headers"]["X-GitHub-Event"],
        "pull_request"
    );
    let body = serde_json::to_vec(&payload).unwrap();
    assert_eq!(
        detail["request"]["headers"]["X-Hub-Signature-256"],
        gma_testkit::sign("s3cret", &body)
    );
    assert_eq!(detail["status_code"], 502);
    assert_eq!(detail["installation_id"], 9);
    let missing = get(
        &format!("{}/app/hook/deliveries/999999", gh.url()),
        Some(&jwt),
    )
    .await;
    assert_eq!(missing.status(), 404);

    let response = client()
        .post(format!("{}/app/hook/deliveries/{id}/attempts", gh.url()))
        .header("authorization", &jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    assert_eq!(gh.redelivery_requests(id), 1);

    let received = got.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let (headers, received_body) = &received[0];
    assert_eq!(received_body, &body);
    assert_eq!(headers["x-github-delivery"], "guid-7");
    assert_eq!(headers["x-github-event"], "pull_request");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["x-hub-signature-256"].to_str().unwrap(),
        gma_testkit::sign("s3cret", received_body)
    );

    let all = gh.deliveries(&HookRef::App);
    assert_eq!(all.len(), 2);
    let attempt = &all[1];
    assert!(attempt.id > id && attempt.redelivery);
    assert_eq!(
        (attempt.guid.as_str(), attempt.status_code),
        ("guid-7", 202)
    );
    // The new attempt heads the list.
    let list: Vec<Value> = get(&format!("{}/app/hook/deliveries", gh.url()), Some(&jwt))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["id"], attempt.id);
    assert_eq!(list[0]["redelivery"], true);

    // An unreachable target is recorded as status 0.
    gh.set_redelivery_target("http://127.0.0.1:9/webhook", "s3cret");
    let response = client()
        .post(format!("{}/app/hook/deliveries/{id}/attempts", gh.url()))
        .header("authorization", &jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(gh.deliveries(&HookRef::App)[2].status_code, 0);
    assert_eq!(gh.redelivery_requests(id), 2);
}

#[tokio::test]
async fn faults_fire_the_given_number_of_times() {
    let gh = FakeGitHub::start().await;
    let id = gh.add_delivery(HookRef::App, NewDelivery::new("g", "push", 500));
    let jwt = format!("Bearer {}", FakeGitHub::app_jwt());
    let list = format!("{}/app/hook/deliveries", gh.url());

    gh.inject(
        Route::ListDeliveries,
        Fault::Status {
            code: 502,
            times: 2,
        },
    );
    let statuses = [
        get(&list, Some(&jwt)).await.status().as_u16(),
        get(&list, Some(&jwt)).await.status().as_u16(),
        get(&list, Some(&jwt)).await.status().as_u16(),
    ];
    assert_eq!(statuses, [502, 502, 200]);

    gh.inject(
        Route::Any,
        Fault::RateLimited {
            status: 429,
            retry_after_secs: 7,
            times: 1,
        },
    );
    let limited = get(&list, Some(&jwt)).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "7");
    let body: Value = limited.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("secondary rate limit")
    );

    gh.inject(
        Route::ListDeliveries,
        Fault::RateLimited {
            status: 403,
            retry_after_secs: 30,
            times: 1,
        },
    );
    let limited = get(&list, Some(&jwt)).await;
    assert_eq!(limited.status(), 403);
    assert_eq!(limited.headers()["retry-after"], "30");
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
    let reset: i64 = limited.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset >= now() + 25);
    assert_eq!(get(&list, Some(&jwt)).await.status(), 200);

    gh.inject(
        Route::ListDeliveries,
        Fault::Delay {
            millis: 300,
            times: 1,
        },
    );
    let slow = client()
        .get(&list)
        .header("authorization", &jwt)
        .timeout(std::time::Duration::from_millis(100))
        .send()
        .await;
    assert!(slow.unwrap_err().is_timeout());
    assert_eq!(get(&list, Some(&jwt)).await.status(), 200);

    // "Crash after k recoveries": two redeliveries pass, then every one fails.
    gh.inject(
        Route::Redeliver,
        Fault::After {
            ok_calls: 2,
            then: Box::new(Fault::Always { code: 500 }),
        },
    );
    let attempts = format!("{}/app/hook/deliveries/{id}/attempts", gh.url());
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = client()
            .post(&attempts)
            .header("authorization", &jwt)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [202, 202, 500, 500]);
    assert_eq!(gh.redelivery_requests(id), 2);
    gh.clear_faults();
    let response = client()
        .post(&attempts)
        .header("authorization", &jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(gh.calls(Route::Redeliver), 5);
    assert_eq!(gh.calls(Route::ListDeliveries), 8);
    assert_eq!(gh.calls(Route::Any), 13);
}

#[tokio::test]
async fn run_logs_redirect_to_an_archive_host_that_refuses_authorization() {
    let gh = FakeGitHub::start().await;
    let archive = logs_zip(&[
        (
            "build",
            &[
                ("Set up job", "setup\n"),
                ("Run tests", "ok\n##[error]boom\n"),
            ],
        ),
        ("lint", &[("Run clippy", "clean\n")]),
    ]);
    gh.add_workflow_run("Octo", "Demo", 100, 1, Logs::zip(archive.clone()));
    gh.add_workflow_run("octo", "demo", 100, 2, Logs::Generated { bytes: 100_000 });
    gh.add_workflow_run("octo", "demo", 101, 1, Logs::Status(410));
    gh.add_workflow_run("octo", "demo", 102, 1, Logs::InProgress);
    let token = format!("Bearer {}", installation_token(&gh, 5).await);
    let runs = format!("{}/repos/octo/demo/actions/runs", gh.url());

    assert_eq!(
        get(&format!("{runs}/100/attempts/1/logs"), None)
            .await
            .status(),
        401
    );
    let redirect = get(&format!("{runs}/100/attempts/1/logs"), Some(&token)).await;
    assert_eq!(redirect.status(), 302);
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(gh.archive_url()));
    assert!(location.contains("sig=") && location.contains("expires="));

    let refused = get(&location, Some(&token)).await;
    assert!(matches!(refused.status().as_u16(), 400 | 403));
    assert_eq!(gh.archive_auth_refusals(), 1);
    let tampered = get(&location.replace("sig=", "sig=00"), None).await;
    assert_eq!(tampered.status(), 403);

    let served = get(&location, None).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "application/zip");
    let bytes = served.bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), archive.as_slice());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut names: Vec<String> = (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().unwrap().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "1_build.txt",
            "2_lint.txt",
            "build/1_Set up job.txt",
            "build/2_Run tests.txt",
            "lint/1_Run clippy.txt"
        ]
    );
    let mut whole = String::new();
    zip.by_name("1_build.txt")
        .unwrap()
        .read_to_string(&mut whole)
        .unwrap();
    assert_eq!(whole, "setup\nok\n##[error]boom\n");

    let direct = gh.signed_archive_url("octo", "demo", 100, 1).unwrap();
    assert_eq!(get(&direct, None).await.bytes().await.unwrap(), archive);
    assert!(gh.signed_archive_url("octo", "demo", 101, 1).is_none());

    // The latest attempt is what /runs/{id}/logs serves: here a generated archive.
    let latest = get(&format!("{runs}/100/logs"), Some(&token)).await;
    let location = latest.headers()["location"].to_str().unwrap().to_owned();
    let generated = get(&location, None).await.bytes().await.unwrap();
    let zip = zip::ZipArchive::new(std::io::Cursor::new(generated.to_vec())).unwrap();
    assert_eq!(zip.len(), 1);

    assert_eq!(
        get(&format!("{runs}/101/logs"), Some(&token))
            .await
            .status(),
        410
    );
    assert_eq!(
        get(&format!("{runs}/102/logs"), Some(&token))
            .await
            .status(),
        404
    );
    assert_eq!(
        get(&format!("{runs}/103/logs"), Some(&token))
            .await
            .status(),
        404
    );

    // A truncated body: the full Content-Length is promised, then the connection closes.
    gh.inject(Route::ArchiveDownload, Fault::TruncatedBody { times: 1 });
    let cut = get(&location, None).await;
    assert_eq!(cut.status(), 200);
    assert!(cut.bytes().await.is_err(), "a truncated body is an error");
    assert_eq!(get(&location, None).await.bytes().await.unwrap(), generated);
    assert_eq!(gh.calls(Route::RunLogs), 6);
}
