//! [`JiraClient`]: one method per Jira call the worker and the CLI make. Every call goes through
//! `call`, which paces it with the shared [`Limiter`], sends it with Basic auth, classifies the
//! answer into a [`JiraError`] and retries what is safe to retry (see the parent module).
//!
//! # Layout
//! - this file: the client, how it is built, and the values its calls return;
//! - `send`: one request's way out and back — pacing, the time it may take under a lock's lease,
//!   Basic auth, classification of the answer, and the retries that are safe;
//! - `issues`: issues, comments, transitions, assignees, remote links and search;
//! - `discovery`: what the site has — the bridge's own user, projects, issue types, fields.

mod discovery;
mod issues;
mod send;

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use url::Url;

use super::error::JiraError;
use super::health::JiraHealth;
use super::limiter::Limiter;

use crate::settings::JiraSettings;
use crate::store::Store;

pub use send::BeforeSend;
use send::{CONNECT_TIMEOUT, REQUEST_TIMEOUT};

/// The Jira issue `create_issue_raw` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedIssue {
    pub id: String,
    pub key: String,
}

/// A transition the issue can take now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub id: String,
    pub name: String,
    /// The status it leads to.
    pub to_name: String,
}

/// One field of a Jira site, as `GET /rest/api/3/field` describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JiraField {
    pub id: String,
    pub name: String,
    pub custom: bool,
    /// `schema.type`: `user`, `array`, `string`, `option`, …
    pub schema_type: Option<String>,
    /// `schema.items` of an array: `user` for a multi-user picker.
    pub items: Option<String>,
    /// `schema.custom`, the custom field type
    /// (`com.atlassian.jira.plugin.system.customfieldtypes:multiuserpicker`, …).
    pub custom_type: Option<String>,
}

impl JiraField {
    /// What the field is for hookbridge's purposes: `user picker`, `multi-user picker` (both fit
    /// `CR_APPROVER_FIELD`), `text area` (fits `CR_SIGNATURE_FIELD`), or its schema type.
    pub fn kind(&self) -> String {
        let custom = self.custom_type.as_deref().unwrap_or_default();
        if custom.ends_with(":multiuserpicker")
            || (self.schema_type.as_deref() == Some("array")
                && self.items.as_deref() == Some("user"))
        {
            "multi-user picker".into()
        } else if custom.ends_with(":userpicker") || self.schema_type.as_deref() == Some("user") {
            "user picker".into()
        } else if custom.ends_with(":textarea") {
            "text area".into()
        } else if custom.ends_with(":textfield") {
            "text field".into()
        } else {
            self.schema_type.clone().unwrap_or_else(|| "other".into())
        }
    }
}

/// A Jira client; cheap to clone (clones share the connection pool and the limiter).
#[derive(Clone)]
pub struct JiraClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    email: String,
    token: SecretString,
    limiter: Limiter,
    request_timeout: Duration,
    health: JiraHealth,
}

impl std::fmt::Debug for JiraClient {
    // Never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JiraClient")
            .field("base", &self.inner.base.as_str())
            .field("email", &self.inner.email)
            .field("limiter", &self.inner.limiter)
            .finish_non_exhaustive()
    }
}

/// The body of `POST /rest/api/3/issue/{key}/remotelink`: a link back to GitHub, keyed by
/// `global_id` (the dry run writes this same body to the audit trail).
pub fn remote_link_body(global_id: &str, url: &str, title: &str) -> Value {
    json!({
        "globalId": global_id,
        "application": {"type": "com.github", "name": "GitHub"},
        "relationship": "GitHub issue",
        "object": {"url": url, "title": title},
    })
}

impl JiraClient {
    /// A client pacing itself locally.
    ///
    /// # Errors
    /// [`JiraError::Config`] when the HTTP client cannot be built.
    pub fn new(settings: &JiraSettings) -> Result<Self, JiraError> {
        Self::with_store(settings, None)
    }

    /// A client whose request schedule is shared through `store` with every other worker process
    /// using it (see [`Limiter`]).
    ///
    /// # Errors
    /// [`JiraError::Config`] when the HTTP client cannot be built.
    pub fn with_store(settings: &JiraSettings, store: Option<Store>) -> Result<Self, JiraError> {
        Self::with_timeout(settings, store, REQUEST_TIMEOUT)
    }

    /// [`JiraClient::with_store`] with another limit on how long one request may take (30 s by
    /// default); tests use a short one to see what a timeout does.
    ///
    /// # Errors
    /// [`JiraError::Config`] when the HTTP client cannot be built.
    pub fn with_timeout(
        settings: &JiraSettings,
        store: Option<Store>,
        request_timeout: Duration,
    ) -> Result<Self, JiraError> {
        let http = reqwest::Client::builder()
            .timeout(request_timeout)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("hookbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| JiraError::Config(e.to_string()))?;
        let mut base = settings.base_url.clone();
        // Credentials in the URL would end up in error messages and logs.
        if !base.username().is_empty() || base.password().is_some() {
            return Err(JiraError::Config(
                "JIRA_BASE_URL must not hold a user name or password; use JIRA_EMAIL and JIRA_API_TOKEN"
                    .into(),
            ));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                email: settings.email.clone(),
                token: settings.api_token.clone(),
                limiter: Limiter::new(settings.rate_per_sec, store),
                request_timeout,
                health: JiraHealth::default(),
            }),
        })
    }

    /// The limiter, for metrics and tests.
    pub fn limiter(&self) -> &Limiter {
        &self.inner.limiter
    }

    /// Whether Jira takes requests at all, as the answers so far say.
    pub fn health(&self) -> &JiraHealth {
        &self.inner.health
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_base_url_are_refused() {
        let err = JiraClient::new(&JiraSettings {
            base_url: Url::parse("https://bot:s3cret@acme.atlassian.net").unwrap(),
            email: "bot@acme.test".into(),
            api_token: SecretString::from("t".to_owned()),
            rate_per_sec: 10.0,
        })
        .unwrap_err();
        assert!(!err.is_transient());
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let client = JiraClient::new(&JiraSettings {
            base_url: Url::parse("https://acme.atlassian.net").unwrap(),
            email: "bot@acme.test".into(),
            api_token: SecretString::from("s3cret-token".to_owned()),
            rate_per_sec: 10.0,
        })
        .unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert!(shown.contains("acme.atlassian.net"));
    }
}
