//! A webhook delivery as GitHub sends it: the body, its `X-Hub-Signature-256`, the delivery
//! headers; as an HTTP request to hand to a router, or (with `net`) sent over a socket.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// `X-Hub-Signature-256` for `body` under `secret`, computed independently of gma's own code.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A webhook delivery to send.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `X-GitHub-Delivery`.
    pub id: String,
    /// `X-GitHub-Event`.
    pub event: String,
    /// The raw body.
    pub body: Vec<u8>,
    /// `Content-Type`.
    pub content_type: String,
    /// `X-Hub-Signature-256`, if any.
    pub signature: Option<String>,
    /// Further headers.
    pub extra: Vec<(String, String)>,
}

impl Delivery {
    /// A JSON delivery signed with `secret`.
    pub fn json(id: &str, event: &str, body: impl Into<Vec<u8>>, secret: &str) -> Self {
        let body = body.into();
        Self {
            id: id.into(),
            event: event.into(),
            signature: Some(sign(secret, &body)),
            body,
            content_type: "application/json".into(),
            extra: Vec::new(),
        }
    }

    /// Every header it is sent with, in order: content type, delivery id, event, signature (if
    /// any), then the extra ones. `Content-Length` is left to the sender.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![
            ("content-type".to_owned(), self.content_type.clone()),
            ("x-github-delivery".to_owned(), self.id.clone()),
            ("x-github-event".to_owned(), self.event.clone()),
        ];
        if let Some(signature) = &self.signature {
            headers.push(("x-hub-signature-256".to_owned(), signature.clone()));
        }
        headers.extend(self.extra.iter().cloned());
        headers
    }

    /// `POST /webhook` with its headers, `Content-Length` and body, as an HTTP client sends it:
    /// for driving a router without a socket.
    ///
    /// # Panics
    /// When a header name or value is not valid HTTP (a broken test).
    pub fn request(&self) -> http::Request<Vec<u8>> {
        let mut request = http::Request::post("/webhook");
        for (name, value) in self.headers() {
            request = request.header(name, value);
        }
        request
            .header(http::header::CONTENT_LENGTH, self.body.len())
            .body(self.body.clone())
            .expect("a delivery's headers are valid HTTP")
    }

    /// Sends it to `base_url` + `/webhook` and returns the status and the JSON body.
    ///
    /// # Errors
    /// The client's error when the request fails (connection refused, reset).
    #[cfg(feature = "net")]
    pub async fn send(
        &self,
        client: &reqwest::Client,
        base_url: &str,
    ) -> reqwest::Result<(u16, serde_json::Value)> {
        let mut request = client
            .post(format!("{base_url}/webhook"))
            .body(self.body.clone());
        for (name, value) in self.headers() {
            request = request.header(name, value);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Ok((status, json))
    }
}
