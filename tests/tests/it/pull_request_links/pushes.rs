//! A push's commits linked once each; keys Jira does not have skipped quietly.

use super::*;

async fn a_push_links_each_commit_once(backend: Backend) {
    let s = setup(backend, LINKING).await;
    let one = s.synced_issue(1).await;
    let ops = s.jira_issue("OPS").await;
    let first = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
    let second = "b1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
    let third = "c1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
    let first_message = format!("{one}: fix the login\n\nLonger text.");
    let second_message = format!("More on {one} and {ops}");
    let commits = [
        (first, first_message.as_str()),
        (second, second_message.as_str()),
        (third, "no key here, UTF-8 only"),
    ];
    let push = push_event("octo/api", "feature/x", &commits);
    let body = envelope("push", &delivery_id(), &push);
    assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
    let url = |sha: &str| format!("https://github.com/octo/api/commit/{sha}");
    let link = s.link(&one, &url(first));
    assert_eq!(
        link["object"]["title"],
        format!("Commit a1b2c3d: {one}: fix the login")
    );
    s.link(&one, &url(second));
    s.link(&ops, &url(second));
    assert!(s.links_to(&one, &url(third)).is_empty());
    let posts = s.remote_link_posts();

    // The same delivery again: nothing new, not even a request.
    assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
    assert_eq!(s.remote_link_posts(), posts);

    // The same commits pushed to another branch at once: GitHub marks them not distinct; their
    // links exist already, nothing is sent.
    let mut to_release = push_event("octo/api", "release", &commits);
    for commit in to_release["commits"].as_array_mut().expect("commits") {
        commit["distinct"] = false.into();
    }
    assert_eq!(
        deliver(&s.pipeline, &envelope("push", &delivery_id(), &to_release)).await,
        Outcome::Done
    );
    assert_eq!(s.remote_link_posts(), posts);

    // The same commits as distinct again (another delivery, e.g. after the branch was deleted
    // and pushed anew): the same links, updated, none added.
    let to_main = push_event("octo/api", "main", &commits);
    assert_eq!(
        deliver(&s.pipeline, &envelope("push", &delivery_id(), &to_main)).await,
        Outcome::Done
    );
    let link = s.link(&one, &url(first));
    assert!(
        link["object"]["summary"]
            .as_str()
            .is_some_and(|t| t.contains("pushed to main")),
        "{link}"
    );
    s.link(&one, &url(second));
    s.link(&ops, &url(second));

    // A deleted branch: no commits, nothing.
    let mut deleted = push_event("octo/api", "feature/x", &[]);
    deleted["deleted"] = true.into();
    let posts = s.remote_link_posts();
    assert_eq!(
        deliver(&s.pipeline, &envelope("push", &delivery_id(), &deleted)).await,
        Outcome::Done
    );
    assert_eq!(s.remote_link_posts(), posts);
}

#[tokio::test]
async fn a_push_links_each_commit_once_embedded() {
    a_push_links_each_commit_once(Backend::Embedded).await;
}

#[tokio::test]
async fn a_push_links_each_commit_once_redis() {
    a_push_links_each_commit_once(Backend::Redis).await;
}

async fn unknown_keys_are_skipped_quietly(backend: Backend) {
    let s = setup(backend, LINKING).await;
    let one = s.synced_issue(1).await;
    let mut pull = GithubPullRequest::new("octo/api", 40);
    pull.title = format!("DEMO-999 and {one}");
    assert_eq!(s.pull(&pull.event("opened")).await, Outcome::Done);
    s.link(&one, &pull.html_url());
    assert_eq!(s.pull(&pull.merge("octocat")).await, Outcome::Done);
    assert_eq!(s.merge_comments(&one), 1);
    let push = push_event(
        "octo/api",
        "main",
        &[("d1b2c3d4e5f6", "OPS-404: nothing there")],
    );
    assert_eq!(
        deliver(&s.pipeline, &envelope("push", &delivery_id(), &push)).await,
        Outcome::Done
    );
    let records = hookbridge_tests::audit::records(&s.audit_dir());
    let skipped: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "jira.remote_link.skipped")
        .collect();
    assert!(
        skipped.iter().any(|r| r["subject"] == "DEMO-999"),
        "{skipped:#?}"
    );
    assert!(skipped.iter().all(|r| r["outcome"] == "skipped"));
    assert!(
        !records
            .iter()
            .any(|r| r["action"] == "message.dead_lettered"),
        "nothing dead-lettered"
    );
}

#[tokio::test]
async fn unknown_keys_are_skipped_quietly_embedded() {
    unknown_keys_are_skipped_quietly(Backend::Embedded).await;
}

#[tokio::test]
async fn unknown_keys_are_skipped_quietly_redis() {
    unknown_keys_are_skipped_quietly(Backend::Redis).await;
}
