//! The HTTP side shared by the node's HTTP integration tests: a started `cairn-node` with a client
//! for it, requests that return or check status and body, and the oversized-body check.
//! Each test file adds its own API-specific helpers in `impl Api` / `impl TestNode` blocks.
#![allow(dead_code)]

use std::ops::Deref;
use std::path::Path;
use std::time::Duration;

use cairn_compat::NodeProc;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Query or form pairs.
pub type Pairs<'a> = &'a [(&'a str, &'a str)];

/// One HTTP answer.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    /// The value of header `k`, if present.
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).map(|v| v.to_str().expect("header is ASCII"))
    }
}

/// An HTTP client for one node (cheap to clone into spawned tasks).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    /// Sends `method path?query` with an optional form body and extra headers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: Pairs<'_>,
        form: Option<Pairs<'_>>,
        headers: Pairs<'_>,
    ) -> Resp {
        let mut rb = self.http.request(method.clone(), format!("{}{path}", self.base)).query(query);
        if let Some(f) = form {
            rb = rb.form(f);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let resp = rb.send().await.unwrap_or_else(|e| panic!("{method} {path} {query:?}: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_else(|e| panic!("{method} {path}: reading body: {e}"));
        Resp { status, headers, body }
    }

    /// Sends `method path?query` with an optional form body; returns status and body text.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: Pairs<'_>,
        form: Option<Pairs<'_>>,
    ) -> (StatusCode, String) {
        let r = self.send(method, path, query, form, &[]).await;
        (r.status, r.body)
    }

    /// A call that must answer 200 with the body `want`.
    pub async fn expect_body(&self, method: Method, path: &str, query: Pairs<'_>, form: Option<Pairs<'_>>, want: &str) {
        let (status, body) = self.call(method.clone(), path, query, form).await;
        assert_eq!(status, StatusCode::OK, "{method} {path} {query:?} {form:?}: {body}");
        assert_eq!(body, want, "{method} {path} {query:?} {form:?}");
    }

    /// A GET that must answer 200 with JSON.
    pub async fn json(&self, path: &str, query: Pairs<'_>) -> Value {
        let (status, body) = self.call(Method::GET, path, query, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path} {query:?}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// A GET that must answer 200; returns the body.
    pub async fn text(&self, path: &str) -> String {
        let (status, body) = self.call(Method::GET, path, &[], None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// POSTs the form-encoded `body` to `path`; it must be refused with 413 and a `caused: …` body.
    pub async fn assert_body_too_large(&self, path: &str, body: String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("oversized request");
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let text = resp.text().await.unwrap_or_default();
        assert!(text.starts_with("caused: "), "413 body: {text:?}");
    }
}

/// A running node plus an HTTP client for it.
pub struct TestNode {
    pub proc: NodeProc,
    pub api: Api,
}

impl Deref for TestNode {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl TestNode {
    /// Starts `cairn-node` with the `extra` flags; every request times out after `timeout`.
    pub fn start_with_timeout(extra: &[&str], timeout: Duration) -> TestNode {
        let proc = NodeProc::start_with(Path::new(env!("CARGO_BIN_EXE_cairn-node")), extra);
        let base = proc.http_base();
        let http = reqwest::Client::builder().timeout(timeout).build().expect("http client");
        TestNode { proc, api: Api { base, http } }
    }
}
