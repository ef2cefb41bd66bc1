//! Jira status changes on a twin: Done closes its GitHub issue with the reason its resolution
//! means, leaving Done reopens it; a redelivery, a route without the switch, an issue that is no
//! twin and a late older change do nothing.

use super::*;

async fn each_resolution_closes_with_its_reason(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    for (number, resolution, expected) in [
        (1, "Done", "completed"),
        (2, "Won't Do", "not_planned"),
        (3, "Duplicate", "not_planned"),
        // The route's github_state_reasons overrides the default (not_planned).
        (4, "Cannot Reproduce", "completed"),
    ] {
        let (_, key) = opened(&s, number).await;
        let moved = s.jira.move_issue(&key, "Done", Some(resolution), &human());
        assert_eq!(jira_event(&s, &moved).await, Outcome::Done);
        assert_eq!(
            state(&s, number),
            ("closed".to_owned(), Some(expected.to_owned())),
            "{resolution}"
        );
    }
    assert_eq!(patches(&s.github), 4);
    let audited = hookbridge_tests::audit::records(&s.dir.path().join("audit"))
        .iter()
        .filter(|r| r["action"] == "github.issue.closed")
        .count();
    assert_eq!(audited, 4);
}
on_both_backends!(each_resolution_closes_with_its_reason);

async fn back_to_to_do_reopens(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    let (_, key) = opened(&s, 7).await;
    let done = s.jira.move_issue(&key, "Done", Some("Done"), &human());
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    assert_eq!(state(&s, 7).0, "closed");
    let back = s.jira.move_issue(&key, "To Do", None, &human());
    assert_eq!(jira_event(&s, &back).await, Outcome::Done);
    assert_eq!(
        state(&s, 7),
        ("open".to_owned(), Some("reopened".to_owned()))
    );
    // To Do → In Progress is no way out of Done: nothing on GitHub.
    let progress = s.jira.move_issue(&key, "In Progress", None, &human());
    assert_eq!(jira_event(&s, &progress).await, Outcome::Done);
    assert_eq!(patches(&s.github), 2);
}
on_both_backends!(back_to_to_do_reopens);

async fn a_redelivered_webhook_changes_nothing_more(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    let (_, key) = opened(&s, 8).await;
    let done = s.jira.move_issue(&key, "Done", Some("Won't Do"), &human());
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    // Jira's retry of the same delivery, and the same event under another delivery id.
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    let mut replay = done.clone();
    replay.identifier = uuid::Uuid::new_v4().to_string();
    assert_eq!(jira_event(&s, &replay).await, Outcome::Done);
    assert_eq!(patches(&s.github), 1);
    let comment = s.jira.comment_as(&key, "Closing: out of scope.", &human());
    for _ in 0..2 {
        assert_eq!(jira_event(&s, &comment).await, Outcome::Done);
    }
    let mut replay = comment.clone();
    replay.identifier = uuid::Uuid::new_v4().to_string();
    assert_eq!(jira_event(&s, &replay).await, Outcome::Done);
    assert_eq!(s.github.comments(REPO, 8).len(), 1);
}
on_both_backends!(a_redelivered_webhook_changes_nothing_more);

async fn a_route_without_sync_from_jira_does_nothing(backend: Backend) {
    let s = setup(backend, NOT_SYNCED).await;
    let (_, key) = opened(&s, 14).await;
    let done = s.jira.move_issue(&key, "Done", Some("Done"), &human());
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    let comment = s.jira.comment_as(&key, "hello", &human());
    assert_eq!(jira_event(&s, &comment).await, Outcome::Done);
    assert_eq!(state(&s, 14).0, "open");
    assert_eq!(patches(&s.github), 0);
    assert!(s.github.comments(REPO, 14).is_empty());
}
on_both_backends!(a_route_without_sync_from_jira_does_nothing);

async fn an_older_mapping_is_found_through_its_remote_link(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    let (_, key) = opened(&s, 15).await;
    assert!(s.store.read(&JiraTwin(&key)).await.expect("read").is_some());
    // A mapping made before the reverse key existed: only the forward mapping and the link.
    let mut tx = Transaction::new();
    tx.delete(&JiraTwin(&key));
    assert!(s.store.commit(&tx).await.expect("commit"));
    let done = s.jira.move_issue(&key, "Done", Some("Won't Do"), &human());
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    assert_eq!(
        state(&s, 15),
        ("closed".to_owned(), Some("not_planned".to_owned()))
    );
    let stored = s.store.read(&JiraTwin(&key)).await.expect("read");
    assert_eq!(
        stored.map(|t| (t.repository, t.number)),
        Some((REPO.to_owned(), 15))
    );
}
on_both_backends!(an_older_mapping_is_found_through_its_remote_link);

/// A Jira issue that is nobody's twin (no reverse key, and its link is not confirmed by a forward
/// mapping) is left alone.
#[tokio::test]
async fn an_issue_that_is_no_twin_is_left_alone() {
    let s = setup(Backend::Embedded, SYNCED).await;
    let (_, key) = opened(&s, 16).await;
    let mut tx = Transaction::new();
    tx.delete(&JiraTwin(&key));
    tx.delete(&IssueMapping(&IssueIdentity::new(REPO, 16)));
    assert!(s.store.commit(&tx).await.expect("commit"));
    let done = s.jira.move_issue(&key, "Done", Some("Done"), &human());
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    assert_eq!(patches(&s.github), 0);
    assert_eq!(state(&s, 16).0, "open");
}

async fn a_late_older_change_is_not_applied(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    let (_, key) = opened(&s, 17).await;
    let done = s.jira.move_issue(&key, "Done", Some("Done"), &human());
    let back = s.jira.move_issue(&key, "To Do", None, &human());
    // Jira delivers the newer change first, the older one late.
    assert_eq!(jira_event(&s, &back).await, Outcome::Done);
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    assert_eq!(state(&s, 17).0, "open");
    assert_eq!(patches(&s.github), 0);
}
on_both_backends!(a_late_older_change_is_not_applied);
