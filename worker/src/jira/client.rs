//! [`JiraClient`]: one method per Jira call the worker and the CLI make. Every call goes through
//! `call`, which paces it with the shared [`Limiter`], sends it with Basic auth, classifies the
//! answer into a [`JiraError`] and retries what is safe to retry (see the parent module).

use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;

use super::error::{JiraError, describe_error_body};
use super::health::JiraHealth;
use super::limiter::Limiter;

use crate::metrics::pipeline;
use crate::settings::JiraSettings;
use crate::store::Store;

/// How long one request may take, answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per call, the first included.
const ATTEMPTS: u32 = 4;
/// Longest `Retry-After` waited for inside the client; longer ones go back to the caller (the
/// message is released with that delay instead of holding a task).
const MAX_INLINE_WAIT: Duration = Duration::from_secs(10);
/// Cap on any `Retry-After` we honour.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// Waited after a 429/503 without `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(8);

/// Least time a request is given: with less lease left on the lock it is sent under, it is not
/// sent at all.
const MIN_REQUEST_TIME: Duration = Duration::from_millis(500);
/// Kept between the end of a request's time and the end of its lock's lease, for the clocks and
/// the network on the way back.
const LEASE_MARGIN: Duration = Duration::from_millis(250);

/// Runs right before a request leaves — after its rate-limiter slot, each time it is sent — so
/// that what it records (a creation intent and its time) is as close to the real send as can be;
/// an `Err` keeps the request unsent.
pub type BeforeSend<'a> = dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>
    + Send
    + Sync
    + 'a;

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

/// Whether a request may be sent again after an outcome that leaves its effect unknown.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Idempotent {
    Yes,
    No,
}

/// One request, described for sending, retrying and error messages.
struct Call<'a> {
    op: &'static str,
    /// Which rate schedule it counts against (Jira limits per endpoint).
    endpoint: &'static str,
    method: Method,
    path: &'a [&'a str],
    query: &'a [(&'a str, String)],
    body: Option<&'a Value>,
    idempotent: Idempotent,
}

impl<'a> Call<'a> {
    /// A read: `GET`, no body, safe to send again.
    fn get(
        op: &'static str,
        endpoint: &'static str,
        path: &'a [&'a str],
        query: &'a [(&'a str, String)],
    ) -> Self {
        Self {
            op,
            endpoint,
            method: Method::GET,
            path,
            query,
            body: None,
            idempotent: Idempotent::Yes,
        }
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

    /// `GET /rest/api/3/myself`: the user the credentials belong to; what proves at start, and
    /// after an outage, that Jira takes this worker's requests.
    ///
    /// # Errors
    /// [`JiraError::Unavailable`] when Jira refuses the credentials or cannot be reached.
    pub async fn myself(&self) -> Result<Value, JiraError> {
        self.call(Call::get(
            "read the bridge's own user",
            "myself",
            &["rest", "api", "3", "myself"],
            &[],
        ))
        .await
    }

    /// `POST /rest/api/3/issue` with a complete body (`{"fields": …}`).
    ///
    /// # Errors
    /// [`JiraError`], classified; a timeout is *not* retried (the issue may exist).
    pub async fn create_issue_raw(&self, body: &Value) -> Result<CreatedIssue, JiraError> {
        self.create_issue_raw_then(body, None).await
    }

    /// [`JiraClient::create_issue_raw`], running `before_send` right before each time the request
    /// is sent (see [`BeforeSend`]).
    ///
    /// # Errors
    /// [`JiraError`], classified; [`JiraError::NotSent`] when `before_send` failed.
    pub async fn create_issue_raw_then(
        &self,
        body: &Value,
        before_send: Option<&BeforeSend<'_>>,
    ) -> Result<CreatedIssue, JiraError> {
        let answer = self
            .call_with(
                Call {
                    op: "create issue",
                    endpoint: "issue.create",
                    method: Method::POST,
                    path: &["rest", "api", "3", "issue"],
                    query: &[],
                    body: Some(body),
                    idempotent: Idempotent::No,
                },
                before_send,
            )
            .await?;
        match (answer["id"].as_str(), answer["key"].as_str()) {
            (Some(id), Some(key)) => Ok(CreatedIssue {
                id: id.to_owned(),
                key: key.to_owned(),
            }),
            _ => Err(JiraError::Protocol {
                op: "create issue",
                message: "no id/key in the answer".into(),
            }),
        }
    }

    /// `POST /rest/api/3/issue/{key}/remotelink`; Jira updates the link with the same `globalId`
    /// instead of adding a second one, so this is idempotent.
    ///
    /// # Errors
    /// [`JiraError`], classified.
    pub async fn add_remote_link(
        &self,
        key: &str,
        global_id: &str,
        url: &str,
        title: &str,
    ) -> Result<(), JiraError> {
        self.post_remote_link(key, &remote_link_body(global_id, url, title))
            .await
    }

    /// `POST /rest/api/3/issue/{key}/remotelink` with a complete body ("Create or update remote
    /// issue link": a link with the body's `globalId` is updated, not added again).
    ///
    /// # Errors
    /// [`JiraError`], classified; 404 when there is no such issue.
    pub async fn post_remote_link(&self, key: &str, body: &Value) -> Result<(), JiraError> {
        self.call(Call {
            op: "add remote link",
            endpoint: "issue.remotelink",
            method: Method::POST,
            path: &["rest", "api", "3", "issue", key, "remotelink"],
            query: &[],
            body: Some(body),
            idempotent: Idempotent::Yes,
        })
        .await
        .map(drop)
    }

    /// `GET /rest/api/3/issue/{key}/remotelink`: the issue's remote links as Jira lists them (an
    /// array of `{globalId, object: {url, title}, …}`).
    ///
    /// # Errors
    /// [`JiraError`], classified; 404 when there is no such issue.
    pub async fn remote_links(&self, key: &str) -> Result<Vec<Value>, JiraError> {
        let answer = self
            .call(Call::get(
                "read remote links",
                "issue.remotelink",
                &["rest", "api", "3", "issue", key, "remotelink"],
                &[],
            ))
            .await?;
        Ok(answer.as_array().cloned().unwrap_or_default())
    }

    /// `PUT /rest/api/3/issue/{key}` (sets whole field values: idempotent).
    ///
    /// # Errors
    /// [`JiraError`], classified.
    pub async fn edit_issue(&self, key: &str, body: &Value) -> Result<(), JiraError> {
        self.call(Call {
            op: "edit issue",
            endpoint: "issue.edit",
            method: Method::PUT,
            path: &["rest", "api", "3", "issue", key],
            query: &[],
            body: Some(body),
            idempotent: Idempotent::Yes,
        })
        .await
        .map(drop)
    }

    /// `PUT /rest/api/3/issue/{key}/comment/{id}` with `{"body": adf}` (a whole value:
    /// idempotent).
    ///
    /// # Errors
    /// [`JiraError`], classified (404 for a comment that is gone).
    pub async fn edit_comment(
        &self,
        key: &str,
        id: &str,
        adf_body: &Value,
    ) -> Result<(), JiraError> {
        let body = json!({"body": adf_body});
        self.call(Call {
            op: "edit comment",
            endpoint: "issue.comment.edit",
            method: Method::PUT,
            path: &["rest", "api", "3", "issue", key, "comment", id],
            query: &[],
            body: Some(&body),
            idempotent: Idempotent::Yes,
        })
        .await
        .map(drop)
    }

    /// `DELETE /rest/api/3/issue/{key}/comment/{id}` (204). Not repeated here after an unknown
    /// outcome: a second delete answers 404, so the caller reads the comments again instead.
    ///
    /// # Errors
    /// [`JiraError`], classified.
    pub async fn delete_comment(&self, key: &str, id: &str) -> Result<(), JiraError> {
        self.call(Call {
            op: "delete comment",
            endpoint: "issue.comment.delete",
            method: Method::DELETE,
            path: &["rest", "api", "3", "issue", key, "comment", id],
            query: &[],
            body: None,
            idempotent: Idempotent::No,
        })
        .await
        .map(drop)
    }

    /// `PUT /rest/api/3/issue/{key}/assignee` with `{"accountId": …}`; `None` unassigns (sets a
    /// whole value: idempotent). Jira answers 204, 400 for an unknown user, 404 for an unknown
    /// issue.
    ///
    /// # Errors
    /// [`JiraError`], classified.
    pub async fn assign(&self, key: &str, account_id: Option<&str>) -> Result<(), JiraError> {
        let body = json!({"accountId": account_id});
        self.call(Call {
            op: "assign issue",
            endpoint: "issue.assignee",
            method: Method::PUT,
            path: &["rest", "api", "3", "issue", key, "assignee"],
            query: &[],
            body: Some(&body),
            idempotent: Idempotent::Yes,
        })
        .await
        .map(drop)
    }

    /// `GET /rest/api/3/issue/{key}`.
    ///
    /// # Errors
    /// [`JiraError`], classified (404 for an unknown issue).
    pub async fn get_issue(&self, key: &str, fields: &str) -> Result<Value, JiraError> {
        self.call(Call::get(
            "get issue",
            "issue.get",
            &["rest", "api", "3", "issue", key],
            &[("fields", fields.to_owned())],
        ))
        .await
    }

    /// `POST /rest/api/3/issue/{key}/comment`; returns the comment id.
    ///
    /// # Errors
    /// [`JiraError`], classified; a timeout is *not* retried (the comment may exist).
    pub async fn add_comment(&self, key: &str, adf_body: &Value) -> Result<String, JiraError> {
        let body = json!({"body": adf_body});
        let answer = self
            .call(Call {
                op: "add comment",
                endpoint: "issue.comment",
                method: Method::POST,
                path: &["rest", "api", "3", "issue", key, "comment"],
                query: &[],
                body: Some(&body),
                idempotent: Idempotent::No,
            })
            .await?;
        answer["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or(JiraError::Protocol {
                op: "add comment",
                message: "no id in the answer".into(),
            })
    }

    /// Every comment body of an issue (`GET …/comment`, all pages).
    ///
    /// # Errors
    /// [`JiraError`], classified.
    pub async fn list_comment_bodies(&self, key: &str) -> Result<Vec<Value>, JiraError> {
        Ok(self
            .list_comments(key)
            .await?
            .into_iter()
            .map(|(_, body)| body)
            .collect())
    }

    /// Every comment of the issue as `(id, body)`, oldest first, read consistently.
    ///
    /// # Errors
    /// [`JiraError`], classified.
    pub async fn list_comments(&self, key: &str) -> Result<Vec<(String, Value)>, JiraError> {
        let mut bodies = Vec::new();
        loop {
            let page = self
                .call(Call::get(
                    "list comments",
                    "issue.comments",
                    &["rest", "api", "3", "issue", key, "comment"],
                    &[
                        ("startAt", bodies.len().to_string()),
                        ("maxResults", "100".to_owned()),
                    ],
                ))
                .await?;
            let comments = page["comments"].as_array().cloned().unwrap_or_default();
            let got = comments.len();
            bodies.extend(comments.into_iter().map(|mut c| {
                let id = c["id"].as_str().unwrap_or_default().to_owned();
                (id, c["body"].take())
            }));
            let total = page["total"].as_u64().map(|t| t as usize);
            if got == 0 || total.is_some_and(|t| bodies.len() >= t) {
                return Ok(bodies);
            }
        }
    }

    /// The transitions the issue can take now.
    ///
    /// # Errors
    /// [`JiraError`], classified.
    pub async fn get_transitions(&self, key: &str) -> Result<Vec<Transition>, JiraError> {
        let answer = self
            .call(Call::get(
                "get transitions",
                "issue.transitions",
                &["rest", "api", "3", "issue", key, "transitions"],
                &[],
            ))
            .await?;
        Ok(answer["transitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some(Transition {
                    id: t["id"].as_str()?.to_owned(),
                    name: t["name"].as_str().unwrap_or_default().to_owned(),
                    to_name: t["to"]["name"].as_str().unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }

    /// Applies transition `id`. Applying it twice usually fails the second time with 400 (the
    /// issue is no longer in a state that offers it), so after a timeout or a 5xx it is not sent
    /// again here: the caller reads the transitions afresh before trying again.
    ///
    /// # Errors
    /// [`JiraError`], classified.
    pub async fn transition(&self, key: &str, id: &str) -> Result<(), JiraError> {
        self.transition_with(key, id, None).await
    }

    /// Applies transition `id` setting `fields` on its screen (e.g.
    /// `{"resolution": {"name": "Done"}}`); otherwise as [`JiraClient::transition`].
    ///
    /// # Errors
    /// [`JiraError`], classified.
    pub async fn transition_with(
        &self,
        key: &str,
        id: &str,
        fields: Option<&Value>,
    ) -> Result<(), JiraError> {
        let mut body = json!({"transition": {"id": id}});
        if let Some(fields) = fields {
            body["fields"] = fields.clone();
        }
        self.call(Call {
            op: "transition issue",
            endpoint: "issue.transition",
            method: Method::POST,
            path: &["rest", "api", "3", "issue", key, "transitions"],
            query: &[],
            body: Some(&body),
            idempotent: Idempotent::No,
        })
        .await
        .map(drop)
    }

    /// Keys of the issues `jql` finds, at most `max`, through `/rest/api/3/search/jql` (the old
    /// `/search` answers 410), following `nextPageToken`. Search lags behind writes.
    ///
    /// # Errors
    /// [`JiraError`], classified.
    pub async fn search_keys(&self, jql: &str, max: usize) -> Result<Vec<String>, JiraError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        while keys.len() < max {
            let mut body = json!({
                "jql": jql,
                "maxResults": (max - keys.len()).min(100),
                "fields": ["key"],
            });
            if let Some(token) = &token {
                body["nextPageToken"] = json!(token);
            }
            let page = self
                .call(Call {
                    op: "search issues",
                    endpoint: "search",
                    method: Method::POST,
                    path: &["rest", "api", "3", "search", "jql"],
                    query: &[],
                    body: Some(&body),
                    idempotent: Idempotent::Yes,
                })
                .await?;
            keys.extend(
                page["issues"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i["key"].as_str().map(str::to_owned)),
            );
            token = page["nextPageToken"].as_str().map(str::to_owned);
            if page["isLast"].as_bool().unwrap_or(true) || token.is_none() {
                break;
            }
        }
        keys.truncate(max);
        Ok(keys)
    }

    /// Project keys and names (`GET /rest/api/3/project`).
    ///
    /// # Errors
    /// [`JiraError`], classified.
    pub async fn projects(&self) -> Result<Vec<(String, String)>, JiraError> {
        let answer = self
            .call(Call::get(
                "list projects",
                "project",
                &["rest", "api", "3", "project"],
                &[],
            ))
            .await?;
        Ok(answer
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p["key"].as_str()?.to_owned(),
                    p["name"].as_str().unwrap_or_default().to_owned(),
                ))
            })
            .collect())
    }

    /// The issue types a project can create (`GET /rest/api/3/issue/createmeta/{key}/issuetypes`,
    /// every page).
    ///
    /// # Errors
    /// [`JiraError`], classified (404 for an unknown project).
    pub async fn issue_types(&self, project: &str) -> Result<Vec<String>, JiraError> {
        let mut names = Vec::new();
        loop {
            let start = names.len().to_string();
            let answer = self
                .call(Call::get(
                    "list issue types",
                    "createmeta",
                    &[
                        "rest",
                        "api",
                        "3",
                        "issue",
                        "createmeta",
                        project,
                        "issuetypes",
                    ],
                    &[("startAt", start), ("maxResults", "50".to_owned())],
                ))
                .await?;
            let page: Vec<String> = answer["issueTypes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect();
            let total = answer["total"]
                .as_u64()
                .and_then(|t| usize::try_from(t).ok());
            let done = page.is_empty() || total.is_none_or(|t| names.len() + page.len() >= t);
            names.extend(page);
            if done {
                return Ok(names);
            }
        }
    }

    /// Every field of the site, system and custom (`GET /rest/api/3/field`).
    ///
    /// # Errors
    /// [`JiraError`], classified.
    pub async fn fields(&self) -> Result<Vec<JiraField>, JiraError> {
        let answer = self
            .call(Call::get(
                "list fields",
                "field",
                &["rest", "api", "3", "field"],
                &[],
            ))
            .await?;
        Ok(answer
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| {
                let text = |v: &Value| v.as_str().map(str::to_owned);
                Some(JiraField {
                    id: text(&f["id"])?,
                    name: text(&f["name"]).unwrap_or_default(),
                    custom: f["custom"].as_bool().unwrap_or(false),
                    schema_type: text(&f["schema"]["type"]),
                    items: text(&f["schema"]["items"]),
                    custom_type: text(&f["schema"]["custom"]),
                })
            })
            .collect())
    }

    fn url(&self, call: &Call<'_>) -> Result<Url, JiraError> {
        let mut url = self.inner.base.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|()| {
                JiraError::Config("JIRA_BASE_URL cannot be a base for paths".into())
            })?;
            segments.pop_if_empty();
            segments.extend(call.path);
        }
        if !call.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    /// Sends `call` with pacing and the retries the module docs describe; returns the JSON body
    /// of a 2xx (`Null` when empty).
    async fn call(&self, call: Call<'_>) -> Result<Value, JiraError> {
        self.call_with(call, None).await
    }

    /// [`JiraClient::call`] with `before_send` run right before each send. Work under a store lock
    /// ([`crate::store::lock::leased`]) never has a request outlive the lock's lease: after the
    /// rate-limiter wait, a request is sent only when enough lease is left, and it is given no
    /// more time than that.
    async fn call_with(
        &self,
        call: Call<'_>,
        before_send: Option<&BeforeSend<'_>>,
    ) -> Result<Value, JiraError> {
        let url = self.url(&call)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= ATTEMPTS;
            self.inner.limiter.acquire(call.endpoint).await;
            let timeout = self.time_for(&call)?;
            if let Some(before_send) = before_send {
                before_send().await.map_err(|reason| JiraError::NotSent {
                    op: call.op,
                    reason,
                })?;
            }
            let started = std::time::Instant::now();
            let mut request = self
                .inner
                .http
                .request(call.method.clone(), url.clone())
                .timeout(timeout)
                .basic_auth(&self.inner.email, Some(self.inner.token.expose_secret()))
                .header("Accept", "application/json");
            if let Some(body) = call.body {
                request = request.json(body);
            }
            let outcome = request.send().await;
            let response = match outcome {
                Ok(response) => response,
                Err(e) => {
                    pipeline::jira_request(call.endpoint, None);
                    let connect = e.is_connect();
                    let message = transport_message(&e);
                    tracing::debug!(
                        op = call.op,
                        method = %call.method,
                        endpoint = call.endpoint,
                        attempt,
                        millis = started.elapsed().as_millis() as u64,
                        error = %message,
                        "Jira request failed"
                    );
                    let error = JiraError::Transport {
                        op: call.op,
                        message,
                        connect,
                    };
                    let may_retry = connect || call.idempotent == Idempotent::Yes;
                    if may_retry && !last {
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                    if let JiraError::Transport {
                        connect: true,
                        message,
                        ..
                    } = &error
                    {
                        // Not one request's problem: no connection could be made at all.
                        let reason = format!("Jira cannot be reached: {message}");
                        self.inner.health.mark_down(&reason);
                        return Err(JiraError::Unavailable {
                            op: call.op,
                            reason,
                            credentials_refused: false,
                        });
                    }
                    return Err(error);
                }
            };
            let status = response.status();
            pipeline::jira_request(call.endpoint, Some(status.as_u16()));
            if status == StatusCode::UNAUTHORIZED {
                let body = response.text().await.unwrap_or_default();
                let reason = format!(
                    "Jira refused the credentials (401: {}); check JIRA_EMAIL and JIRA_API_TOKEN",
                    describe_error_body(&body)
                );
                self.inner.health.mark_down(&reason);
                return Err(JiraError::Unavailable {
                    op: call.op,
                    reason,
                    credentials_refused: true,
                });
            }
            // Any other answer proves Jira is there and takes these credentials.
            self.inner.health.mark_up();
            let near_limit = response
                .headers()
                .get("x-ratelimit-nearlimit")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let retry_after = retry_after(response.headers());
            tracing::debug!(
                op = call.op,
                method = %call.method,
                endpoint = call.endpoint,
                attempt,
                status = status.as_u16(),
                millis = started.elapsed().as_millis() as u64,
                "Jira answered"
            );
            if status.is_success() {
                self.inner.limiter.answered(near_limit);
                let bytes = response.bytes().await.map_err(|e| JiraError::Protocol {
                    op: call.op,
                    message: transport_message(&e),
                })?;
                if bytes.is_empty() {
                    return Ok(Value::Null);
                }
                return serde_json::from_slice(&bytes).map_err(|e| JiraError::Protocol {
                    op: call.op,
                    message: format!("body is not JSON: {e}"),
                });
            }
            let body = response.text().await.unwrap_or_default();
            if status == StatusCode::TOO_MANY_REQUESTS
                || (status == StatusCode::SERVICE_UNAVAILABLE && retry_after.is_some())
            {
                let wait = retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
                self.inner.limiter.throttled(call.endpoint, wait).await;
                if !last && wait <= MAX_INLINE_WAIT {
                    // The limiter holds every request back until `wait` has passed.
                    continue;
                }
                return Err(JiraError::Throttled {
                    op: call.op,
                    status: status.as_u16(),
                    retry_after: wait,
                });
            }
            if status.is_server_error() {
                let error = JiraError::Server {
                    op: call.op,
                    status: status.as_u16(),
                    message: describe_error_body(&body),
                };
                if call.idempotent == Idempotent::Yes && !last {
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                return Err(error);
            }
            return Err(JiraError::Rejected {
                op: call.op,
                status: status.as_u16(),
                message: describe_error_body(&body),
            });
        }
    }
}

impl JiraClient {
    /// How long `call` may take now: the request timeout, cut to the lease left on the lock the
    /// work runs under (less a margin); [`JiraError::NotSent`] when that is too little.
    fn time_for(&self, call: &Call<'_>) -> Result<Duration, JiraError> {
        let Some(left) = crate::store::lock::remaining() else {
            return Ok(self.inner.request_timeout);
        };
        let usable = left.saturating_sub(LEASE_MARGIN);
        if usable < MIN_REQUEST_TIME {
            return Err(JiraError::NotSent {
                op: call.op,
                reason: format!(
                    "the lock it is sent under has {} ms of lease left",
                    left.as_millis()
                ),
            });
        }
        Ok(usable.min(self.inner.request_timeout))
    }
}

/// Full-jitter exponential backoff for attempt `n` (1-based).
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << attempt.min(10))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(rand::rng().random_range(0.0..=1.0))
}

/// `Retry-After` in seconds (Jira sends seconds), capped.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s).min(MAX_RETRY_AFTER))
}

/// A transport error without the URL's query (which could hold data) and without any header.
fn transport_message(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "broken answer body"
    } else {
        "request failed"
    };
    let host = e
        .url()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        format!("{kind} ({host})")
    } else {
        format!("{kind} ({host}): {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_its_cap() {
        for attempt in 1..20 {
            assert!(backoff(attempt) <= BACKOFF_CAP);
        }
    }

    #[test]
    fn retry_after_is_seconds_and_capped() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert("retry-after", "99999".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

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

    #[test]
    fn urls_escape_keys_and_keep_a_base_path() {
        let client = JiraClient::new(&JiraSettings {
            base_url: Url::parse("http://127.0.0.1:9/jira").unwrap(),
            email: "bot@acme.test".into(),
            api_token: SecretString::from("t".to_owned()),
            rate_per_sec: 10.0,
        })
        .unwrap();
        let url = client
            .url(&Call::get(
                "x",
                "x",
                &["rest", "api", "3", "issue", "A B/../C"],
                &[("fields", "key,summary".into())],
            ))
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/jira/rest/api/3/issue/A%20B%2F..%2FC?fields=key%2Csummary"
        );
    }
}
