//! Talking to the operator's page of a running process: where it listens (its log line), and a
//! client that keeps its own cookies and does not follow redirects (tests look at them).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::process::Proc;

/// The URL the process announced for its operator's page (`"the operator's page"` log line).
///
/// # Panics
/// When no such line comes within `timeout`.
pub fn admin_url(proc: &mut Proc, timeout: Duration) -> String {
    proc.wait_for("the operator's page announcement", timeout, |line| {
        let event: Value = serde_json::from_str(line).ok()?;
        (event["message"] == "the operator's page")
            .then(|| event["url"].as_str().map(str::to_owned))
            .flatten()
    })
}

/// A client of one operator's page.
pub struct Admin {
    pub base: String,
    pub http: reqwest::Client,
    /// Sent as `Authorization: Bearer` when set.
    pub token: Option<String>,
}

impl Admin {
    /// A client of the page at `base`, with a cookie jar, never following redirects.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .no_proxy()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            token: None,
        }
    }

    #[must_use]
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `GET path` asking for JSON: the status and the body (`Null` when it is not JSON).
    pub async fn json(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .request(reqwest::Method::GET, path)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// `GET path` as a browser asks: the status and the HTML.
    pub async fn html(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .request(reqwest::Method::GET, path)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    }

    /// `POST path` with `form`, asking for JSON: the status and the body.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .request(reqwest::Method::POST, path)
            .header("accept", "application/json")
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The CSRF token the page's forms carry (read from the dead-letters page's HTML).
    pub async fn csrf(&self) -> String {
        let (status, html) = self.html("/").await;
        assert_eq!(status, 200, "{html}");
        let marker = "name=\"csrf\" value=\"";
        if let Some(at) = html.find(marker) {
            let rest = &html[at + marker.len()..];
            return rest[..rest.find('"').unwrap_or(0)].to_owned();
        }
        // The overview has no form without a token; the dead-letter list has one when it has rows.
        let (_, html) = self.html("/dead-letters").await;
        let at = html.find(marker).expect("a form with a CSRF token");
        let rest = &html[at + marker.len()..];
        rest[..rest.find('"').unwrap_or(0)].to_owned()
    }
}
