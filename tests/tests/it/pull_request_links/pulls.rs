//! A pull request linked by its branch, title or closing keyword; its link following its state;
//! the merge comment, once.

use super::*;

async fn links_by_branch_title_and_closing_keyword(backend: Backend) {
    let s = setup(backend, LINKING).await;
    let one = s.synced_issue(1).await;
    let two = s.synced_issue(2).await;
    let three = s.synced_issue(3).await;
    let ops = s.jira_issue("OPS").await;

    // By branch name.
    let mut by_branch = GithubPullRequest::new("octo/api", 10);
    by_branch.branch = format!("feature/{one}-login");
    assert_eq!(s.pull(&by_branch.event("opened")).await, Outcome::Done);
    let link = s.link(&one, &by_branch.html_url());
    assert_eq!(link["object"]["title"], "PR #10: Pull request 10");
    assert_eq!(link["globalId"], by_branch.html_url());
    assert_eq!(link["object"]["status"]["resolved"], false);

    // By title, a key of another allowed project too.
    let mut by_title = GithubPullRequest::new("octo/api", 11);
    by_title.title = format!("{two}: faster login ({ops})");
    assert_eq!(s.pull(&by_title.event("opened")).await, Outcome::Done);
    assert_eq!(
        s.link(&two, &by_title.html_url())["object"]["title"],
        format!("PR #11: {two}: faster login ({ops})")
    );
    s.link(&ops, &by_title.html_url());

    // By GitHub's closing keyword, for a synced issue: the link is on its Jira twin. An issue that
    // was never synced, and another repository's issue, name nothing.
    let mut fixes = GithubPullRequest::new("octo/api", 12);
    fixes.body = "Fixes #3.\n\nAlso fixes #77 and closes other/repo#1".to_owned();
    assert_eq!(s.pull(&fixes.event("opened")).await, Outcome::Done);
    s.link(&three, &fixes.html_url());

    // Nothing else was linked anywhere.
    for issue in s.fake.issues() {
        let pulls: Vec<Value> = s
            .fake
            .remote_links(&issue.key)
            .into_iter()
            .filter(|l| l["relationship"] == "GitHub pull request")
            .collect();
        let expected = usize::from(issue.key == one)
            + usize::from(issue.key == two || issue.key == ops)
            + usize::from(issue.key == three);
        assert_eq!(pulls.len(), expected, "{}: {pulls:#?}", issue.key);
    }
}

#[tokio::test]
async fn links_by_branch_title_and_closing_keyword_embedded() {
    links_by_branch_title_and_closing_keyword(Backend::Embedded).await;
}

#[tokio::test]
async fn links_by_branch_title_and_closing_keyword_redis() {
    links_by_branch_title_and_closing_keyword(Backend::Redis).await;
}

async fn the_link_follows_the_pull_request(backend: Backend) {
    let s = setup(backend, LINKING).await;
    let one = s.synced_issue(1).await;
    let mut pull = GithubPullRequest::new("octo/api", 20);
    pull.title = format!("{one}: first try");
    let opened = pull.event("opened");
    assert_eq!(s.pull(&opened).await, Outcome::Done);
    assert_eq!(
        s.link(&one, &pull.html_url())["object"]["status"]["resolved"],
        false
    );

    // An edit of the body alone changes nothing the link shows: nothing is sent.
    let posts = s.remote_link_posts();
    pull.body = "More words.".to_owned();
    assert_eq!(s.pull(&pull.event("edited")).await, Outcome::Done);
    assert_eq!(s.remote_link_posts(), posts);

    // Edited: the same link gets the new title.
    pull.title = format!("{one}: second try");
    assert_eq!(s.pull(&pull.event("edited")).await, Outcome::Done);
    let link = s.link(&one, &pull.html_url());
    assert_eq!(
        link["object"]["title"],
        format!("PR #20: {one}: second try")
    );

    // Closed without a merge: resolved.
    pull.state = "closed".to_owned();
    assert_eq!(s.pull(&pull.event("closed")).await, Outcome::Done);
    let link = s.link(&one, &pull.html_url());
    assert_eq!(link["object"]["status"]["resolved"], true);
    assert_eq!(link["object"]["status"]["icon"]["title"], "Closed");

    // The `opened` delivery arriving late (GitHub does not order them) sets nothing back.
    assert_eq!(s.pull(&opened).await, Outcome::Done);
    assert_eq!(
        s.link(&one, &pull.html_url())["object"]["status"]["resolved"],
        true
    );

    // Reopened: open again.
    pull.state = "open".to_owned();
    assert_eq!(s.pull(&pull.event("reopened")).await, Outcome::Done);
    let link = s.link(&one, &pull.html_url());
    assert_eq!(link["object"]["status"]["resolved"], false);
    assert_eq!(link["object"]["status"]["icon"]["title"], "Open");

    // The key dropped from the title: the link still follows the pull request.
    pull.title = "no key any more".to_owned();
    pull.state = "closed".to_owned();
    assert_eq!(s.pull(&pull.event("closed")).await, Outcome::Done);
    let link = s.link(&one, &pull.html_url());
    assert_eq!(link["object"]["status"]["resolved"], true);
    assert_eq!(s.merge_comments(&one), 0, "closed, not merged: no comment");
}

#[tokio::test]
async fn the_link_follows_the_pull_request_embedded() {
    the_link_follows_the_pull_request(Backend::Embedded).await;
}

#[tokio::test]
async fn the_link_follows_the_pull_request_redis() {
    the_link_follows_the_pull_request(Backend::Redis).await;
}

async fn a_merge_comments_once(backend: Backend) {
    let s = setup(backend, LINKING).await;
    let one = s.synced_issue(1).await;
    let two = s.synced_issue(2).await;
    let mut pull = GithubPullRequest::new("octo/api", 30);
    pull.branch = format!("{one}-and-more");
    pull.body = "Resolves #2".to_owned();
    assert_eq!(s.pull(&pull.event("opened")).await, Outcome::Done);
    let merged = pull.merge("monalisa");
    let body = envelope("pull_request", &delivery_id(), &merged);
    // Two workers at once, then the same delivery again, then the same event under another
    // delivery id (a second hook, or a redelivery GitHub made anew).
    let second = s.second_worker();
    let (a, b) = tokio::join!(deliver(&s.pipeline, &body), deliver(&second, &body));
    assert_eq!((a, b), (Outcome::Done, Outcome::Done));
    assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
    assert_eq!(s.pull(&merged).await, Outcome::Done);
    for key in [&one, &two] {
        assert_eq!(s.merge_comments(key), 1, "{key}: one merge comment");
        let link = s.link(key, &pull.html_url());
        assert_eq!(link["object"]["status"]["resolved"], true);
        assert_eq!(link["object"]["status"]["icon"]["title"], "Merged");
    }
    let comment = &s.fake.issue(&one).expect("issue").comments[0];
    hookbridge_worker::jira::adf::validate(comment).expect("ADF");
    let text = hookbridge_worker::jira::adf::document_text(comment);
    assert!(text.contains("#30") && text.contains("@monalisa"), "{text}");
    // An edit after the merge changes no comment.
    pull.title = "merged, renamed".to_owned();
    assert_eq!(s.pull(&pull.event("edited")).await, Outcome::Done);
    assert_eq!(s.merge_comments(&one), 1);
}

#[tokio::test]
async fn a_merge_comments_once_embedded() {
    a_merge_comments_once(Backend::Embedded).await;
}

#[tokio::test]
async fn a_merge_comments_once_redis() {
    a_merge_comments_once(Backend::Redis).await;
}

/// The comment's POST reaches Jira but its answer does not come back in time (a crash window:
/// Jira did it, the worker cannot know): the retry finds the comment by its marker instead of
/// posting it again.
async fn a_merge_comment_whose_answer_was_lost_is_not_posted_again(backend: Backend) {
    let fake = Arc::new(JiraFake::start(FakeConfig::default()).await);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(backend, dir.path(), "hbpulls").await;
    let mut impatient = parts(&fake, store.clone(), dir.path(), "test", LINKING);
    let client = JiraClient::with_timeout(
        &fake.settings(100.0),
        Some(store.clone()),
        Duration::from_secs(1),
    )
    .expect("client");
    impatient.jira = JiraOps::live(client, impatient.audit.clone());
    let s = Setup {
        pipeline: Arc::new(router(impatient).0),
        fake,
        store,
        toml: LINKING.to_owned(),
        dir,
    };
    let one = s.synced_issue(1).await;
    let mut pull = GithubPullRequest::new("octo/api", 31);
    pull.title = format!("{one} done");
    assert_eq!(s.pull(&pull.event("opened")).await, Outcome::Done);
    let path = format!("/rest/api/3/issue/{one}/comment");
    s.fake
        .stall_next(axum::http::Method::POST, &path, Duration::from_secs(2));
    let body = envelope("pull_request", &delivery_id(), &pull.merge("octocat"));
    assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
    assert_eq!(s.merge_comments(&one), 1);
    let posted = s
        .fake
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .count();
    assert_eq!(posted, 1, "the comment was not posted a second time");
}

#[tokio::test]
async fn a_merge_comment_whose_answer_was_lost_is_not_posted_again_embedded() {
    a_merge_comment_whose_answer_was_lost_is_not_posted_again(Backend::Embedded).await;
}

#[tokio::test]
async fn a_merge_comment_whose_answer_was_lost_is_not_posted_again_redis() {
    a_merge_comment_whose_answer_was_lost_is_not_posted_again(Backend::Redis).await;
}
