//! Every status of `POST /webhook`, and what lands.

use axum::body::Body;
use axum::http::Request;
use bytes::Bytes;
use gma_testkit::{Delivery, sign};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{BODY, Ingest, SECRET, delivery, padded_json};

#[tokio::test]
async fn lands_once_and_answers_duplicate_after() {
    let app = Ingest::start();
    let d = delivery("6f1c3a4e-0000-4000-8000-000000000001");
    let answer = app.send(&d).await;
    assert_eq!(
        (answer.status, answer.json()),
        (201, json!({"status": "ok"}))
    );
    let answer = app.send(&d).await;
    assert_eq!(
        (answer.status, answer.json()),
        (200, json!({"status": "duplicate"}))
    );
    // A redelivery carries the same id with a different body and signature: still one row.
    let mut redelivered = Delivery::json(&d.id, "issues", r#"{"action":"edited"}"#, SECRET);
    redelivered
        .extra
        .push(("x-github-hook-id".into(), "9".into()));
    assert_eq!(app.status_of(&redelivered).await, 200);
    let rows = app.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["action"], "opened");
}

#[tokio::test]
async fn missing_delivery_headers_are_400_naming_the_header() {
    let app = Ingest::start();
    let mut d = delivery("");
    let answer = app.send(&d).await;
    assert_eq!(answer.status, 400);
    let message = answer.error();
    assert!(message.contains("X-GitHub-Delivery"), "{message}");
    d.id = "id-1".into();
    d.event = String::new();
    let answer = app.send(&d).await;
    assert_eq!(answer.status, 400);
    let message = answer.error();
    assert!(message.contains("X-GitHub-Event"), "{message}");
    assert_eq!(app.stored_count(), 0);
}

#[tokio::test]
async fn unusable_delivery_headers_are_400_saying_why() {
    let app = Ingest::start();
    for (id, why) in [
        ("has space", "without spaces"),
        (&"x".repeat(257), "at most 256"),
    ] {
        let answer = app.send(&delivery(id)).await;
        assert_eq!(answer.status, 400, "{id}");
        let message = answer.error();
        assert!(
            message.contains("X-GitHub-Delivery") && message.contains(why),
            "{message}"
        );
    }
    let mut request = delivery("latin-1").request();
    request.headers_mut().insert(
        "x-github-event",
        axum::http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
    );
    let answer = app.call(request.map(Body::from)).await;
    assert_eq!(answer.status, 400);
    let message = answer.error();
    assert!(message.contains("not visible ASCII"), "{message}");
    assert_eq!(app.stored_count(), 0);
}

#[tokio::test]
async fn missing_wrong_or_malformed_signatures_are_401() {
    let app = Ingest::start();
    let mut d = delivery("sig-1");
    d.signature = None;
    let answer = app.send(&d).await;
    let message = answer.error();
    assert_eq!(
        (answer.status, message.contains("X-Hub-Signature-256")),
        (401, true),
        "{message}"
    );

    d.extra.push((
        "x-hub-signature".into(),
        "sha1=0123456789abcdef0123456789abcdef01234567".into(),
    ));
    let answer = app.send(&d).await;
    let message = answer.error();
    assert_eq!(
        (answer.status, message.contains("SHA-1")),
        (401, true),
        "{message}"
    );

    d.signature = Some(sign("some-other-secret", BODY.as_bytes()));
    let answer = app.send(&d).await;
    let message = answer.error();
    assert_eq!(
        (answer.status, message.contains("does not match")),
        (401, true),
        "{message}"
    );

    d.signature = Some("sha256=not-hex".into());
    assert_eq!(app.send(&d).await.status, 401);

    // Signed over a different body than the one sent (a body changed in transit).
    d.signature = Some(sign(SECRET, br#"{"action":"closed"}"#));
    assert_eq!(app.send(&d).await.status, 401);
    assert_eq!(app.stored_count(), 0);
}

#[tokio::test]
async fn empty_and_non_json_bodies_are_400() {
    let app = Ingest::start();
    let answer = app.send(&Delivery::json("e-1", "push", "", SECRET)).await;
    let message = answer.error();
    assert_eq!(
        (answer.status, message.contains("empty")),
        (400, true),
        "{message}"
    );
    for (i, body) in ["not json", "{\"a\":", "[1,2,3]", "{\"a\":1} {\"b\":2}"]
        .iter()
        .enumerate()
    {
        let answer = app
            .send(&Delivery::json(&format!("j-{i}"), "push", *body, SECRET))
            .await;
        let message = answer.error();
        assert_eq!(
            (answer.status, message.contains("JSON")),
            (400, true),
            "{body}: {message}"
        );
    }
    assert_eq!(app.stored_count(), 0);
}

#[tokio::test]
async fn content_types_other_than_json_or_a_form_are_415() {
    let app = Ingest::start();
    let mut d = delivery("ct-1");
    d.content_type = "text/plain".into();
    let answer = app.send(&d).await;
    let message = answer.error();
    assert_eq!(
        (answer.status, message.contains("application/json")),
        (415, true),
        "{message}"
    );
    let mut request = delivery("ct-none").request();
    request.headers_mut().remove("content-type");
    let answer = app.call(request.map(Body::from)).await;
    let message = answer.error();
    assert_eq!(
        (answer.status, message.contains("(none)")),
        (415, true),
        "{message}"
    );
    d.content_type = "application/json; charset=utf-8".into();
    assert_eq!(app.status_of(&d).await, 201);
}

#[tokio::test]
async fn two_secrets_are_accepted_and_a_third_is_refused() {
    let app = Ingest::with_config(|config| {
        config.secrets =
            gma_ingest::secret::parse_secret_list("GMA_WEBHOOK_SECRETS", "old-secret\nnew-secret");
    });
    let send = |id: &str, secret: &str| Delivery::json(id, "push", BODY, secret);
    assert_eq!(app.status_of(&send("r-1", "old-secret")).await, 201);
    assert_eq!(app.status_of(&send("r-2", "new-secret")).await, 201);
    assert_eq!(app.status_of(&send("r-3", "third-secret")).await, 401);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"gma_ingest_signature_matches_total{secret="GMA_WEBHOOK_SECRETS:1"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"gma_ingest_signature_matches_total{secret="GMA_WEBHOOK_SECRETS:2"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains("old-secret") && !metrics.contains("new-secret"));
    assert_eq!(app.stored_count(), 2);
}

#[tokio::test]
async fn exactly_the_limit_lands_and_one_byte_more_is_413() {
    let app = Ingest::start();
    let limit = gma_ingest::DEFAULT_MAX_BODY_BYTES as usize;
    assert_eq!(limit, 26_214_400);
    let over = Delivery::json("big-over", "create", padded_json(limit + 1), SECRET);
    let answer = app.send(&over).await;
    let message = answer.error();
    assert_eq!(
        (answer.status, message.contains("26214400")),
        (413, true),
        "{message}"
    );

    let exact = Delivery::json("big-exact", "create", padded_json(limit), SECRET);
    assert_eq!(app.status_of(&exact).await, 201);
    let rows = app.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["payload_size"], limit as i64);
    let payload = rows[0]["payload"].as_str().unwrap();
    assert_eq!(payload.chars().count(), limit);
    assert_eq!(rows[0]["action"], "created");
}

/// How a streamed body ends.
#[derive(Clone, Copy)]
enum End {
    /// It is complete.
    Close,
    /// It stops arriving, the connection held open.
    Hang,
    /// The connection breaks.
    Break,
}

/// `d`'s request with a body of `chunks` arriving one by one, without a declared length, ended
/// by `end`.
fn streamed(d: &Delivery, chunks: Vec<Vec<u8>>, end: End) -> Request<Body> {
    let mut request = d.request();
    request.headers_mut().remove("content-length");
    let head = futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))));
    let tail = futures::stream::once(async move {
        match end {
            End::Close => Ok(Bytes::new()),
            End::Hang => futures::future::pending().await,
            End::Break => Err(std::io::Error::other("connection reset")),
        }
    });
    let body = Body::from_stream(futures::StreamExt::chain(head, tail));
    request.map(|_| body)
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_413_and_a_declared_one_before_any_is_read() {
    let app = Ingest::with_config(|config| config.max_body_bytes = 1000);
    let d = delivery("stream-big");
    let chunks = vec![vec![b'a'; 600], vec![b'a'; 600]];
    let answer = app.call(streamed(&d, chunks, End::Hang)).await;
    assert_eq!(answer.status, 413, "refused without waiting for the end");
    assert_eq!(answer.headers["connection"], "close");
    // A declared length over the limit is refused before any of the body is read.
    let mut request = streamed(&d, Vec::new(), End::Hang);
    request.headers_mut().insert("content-length", 5000.into());
    assert_eq!(app.call(request).await.status, 413);
    assert_eq!(app.stored_count(), 0);
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_408_and_one_that_breaks_is_400() {
    let app = Ingest::with_config(|config| {
        config.body_timeout = std::time::Duration::from_millis(200);
    });
    let d = delivery("slow-1");
    let half = BODY.as_bytes()[..10].to_vec();
    let answer = app.call(streamed(&d, vec![half.clone()], End::Hang)).await;
    assert_eq!(answer.status, 408);
    assert_eq!(answer.headers["connection"], "close");
    let message = answer.error();
    assert!(message.contains("did not arrive"), "{message}");

    let answer = app.call(streamed(&d, vec![half], End::Break)).await;
    assert_eq!(answer.status, 400);
    let message = answer.error();
    assert!(
        message.contains("could not be read completely"),
        "{message}"
    );

    let whole = BODY.as_bytes().to_vec();
    let answer = app.call(streamed(&d, vec![whole], End::Close)).await;
    assert_eq!(answer.status, 201, "the same delivery, whole, lands");
    assert_eq!(app.stored_count(), 1);
}

#[tokio::test]
async fn hook_headers_are_recorded_in_any_case_and_absent_ones_are_null() {
    let app = Ingest::start();
    let mut d = delivery("hook-1");
    d.extra = vec![
        ("X-GITHUB-HOOK-ID".into(), "123456".into()),
        (
            "x-github-hook-installation-target-type".into(),
            "integration".into(),
        ),
        ("X-GitHub-Hook-Installation-Target-ID".into(), "987".into()),
    ];
    assert_eq!(app.status_of(&d).await, 201);
    assert_eq!(app.status_of(&delivery("hook-2")).await, 201);
    let mut rows = app.rows();
    rows.sort_by(|a, b| a["delivery_id"].as_str().cmp(&b["delivery_id"].as_str()));
    assert_eq!(rows[0]["hook_id"], 123456);
    assert_eq!(rows[0]["target_type"], "integration");
    assert_eq!(rows[0]["target_id"], 987);
    assert_eq!(rows[0]["signature"], sign(SECRET, BODY.as_bytes()));
    assert_eq!(rows[0]["event"], "issues");
    assert!(rows[1].get("hook_id").is_none_or(Value::is_null));
    assert!(rows[1].get("target_type").is_none_or(Value::is_null));
}

#[tokio::test]
async fn a_form_encoded_delivery_stores_the_json_of_its_payload_field() {
    let app = Ingest::start();
    let json = r#"{"action":"opened","repository":{"full_name":"a/b & c","id":3},"text":"x=1+2%"}"#;
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", json)
        .finish();
    let mut d = Delivery::json("form-1", "issues", body.clone(), SECRET);
    d.content_type = "application/x-www-form-urlencoded".into();
    assert_eq!(d.signature, Some(sign(SECRET, body.as_bytes())));
    assert_eq!(app.status_of(&d).await, 201);
    let rows = app.rows();
    assert_eq!(rows[0]["payload"], json);
    assert_eq!(rows[0]["repository"], "a/b & c");
    assert_eq!(rows[0]["payload_sha256"], hex::encode(Sha256::digest(json)));

    let mut missing = Delivery::json("form-2", "issues", "other=1", SECRET);
    missing.content_type = "application/x-www-form-urlencoded".into();
    let answer = app.send(&missing).await;
    assert_eq!(answer.status, 400);
    assert!(answer.error().contains("payload"));
}
