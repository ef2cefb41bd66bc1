//! Issues, comments, transitions, assignees, remote links and search: the calls that read and
//! change the issues hookbridge keeps in step with GitHub and the Change Requests it tracks.

use reqwest::Method;
use serde_json::{Value, json};

use super::send::{BeforeSend, Call, Idempotent};
use super::{CreatedIssue, JiraClient, Transition, remote_link_body};
use crate::jira::error::JiraError;

impl JiraClient {
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
}
