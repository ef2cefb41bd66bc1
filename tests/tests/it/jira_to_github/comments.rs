//! A person's Jira comment becomes one GitHub comment; the bridge's own comments go nowhere.

use super::*;

async fn a_human_jira_comment_becomes_one_github_comment(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    let (_, key) = opened(&s, 9).await;
    let comment = s
        .jira
        .comment_as(&key, "Reproduced on staging.\nSee the logs.", &human());
    assert_eq!(jira_event(&s, &comment).await, Outcome::Done);
    let comments = s.github.comments(REPO, 9);
    assert_eq!(comments.len(), 1);
    let body = &comments[0].body;
    assert!(body.contains("**Ann Lee**"), "{body}");
    let id = comment.payload()["comment"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(
        body.contains(&format!("/browse/{key}?focusedCommentId={id}")),
        "{body}"
    );
    assert!(body.contains("> Reproduced on staging."), "{body}");
    assert!(
        body.trim_end()
            .ends_with(&format!("<!-- hookbridge:jira-comment {key}/{id} -->")),
        "{body}"
    );
}
on_both_backends!(a_human_jira_comment_becomes_one_github_comment);

async fn the_bridges_own_jira_comments_go_nowhere(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    let (issue, key) = opened(&s, 10).await;
    // A GitHub comment mirrored into Jira by the bridge (it carries the bridge's marker)…
    let github_comment = envelope(
        "issue_comment",
        &delivery_id(),
        &issue.comment(555, "octocat", "Looks like a race."),
    );
    assert_eq!(deliver(&s.pipeline, &github_comment).await, Outcome::Done);
    let mirrored = twin(&s.jira, &issue).comments.len() - 1;
    // …comes back as comment_created: marked, and by the bridge's account.
    let echo = s
        .jira
        .comment_created_for(&key, mirrored, &s.jira.bridge_user());
    assert_eq!(jira_event(&s, &echo).await, Outcome::Done);
    // The marker alone is enough (whoever Jira names as the author)…
    let by_someone = s.jira.comment_created_for(&key, mirrored, &human());
    assert_eq!(jira_event(&s, &by_someone).await, Outcome::Done);
    // …and so is the bridge's account alone.
    let plain = s
        .jira
        .comment_as(&key, "no marker here", &s.jira.bridge_user());
    assert_eq!(jira_event(&s, &plain).await, Outcome::Done);
    assert!(s.github.comments(REPO, 10).is_empty());
    assert!(s.github.requests().iter().all(|r| r.method != "POST"));
}
on_both_backends!(the_bridges_own_jira_comments_go_nowhere);
