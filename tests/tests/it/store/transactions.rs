//! Store transactions, lists and counters, on both backends: conditions checked and writes
//! applied as one step, or nothing written; lists appended at the back and taken from the front,
//! bounded and expiring as a whole; counters that every process adds to.

use std::sync::Arc;
use std::time::Duration;

use hookbridge_worker::store::{Store, StoreCounters, StoreList, Transaction};
use tokio::time::Instant;

use hookbridge_tests::wait::eventually;

use super::{Harness, LONG, PATIENCE, Raw, RawMap, SHORT, holds_until, lock};

/// A list of these tests: text items.
struct Items<'a>(&'a str);

impl StoreList for Items<'_> {
    type Item = String;
    const PREFIX: &'static str = "conformance-list:";
    fn suffix(&self) -> String {
        self.0.to_owned()
    }
}

/// A counter family of these tests, labelled by a name.
struct Tally;

impl StoreCounters for Tally {
    type Labels = String;
    const PREFIX: &'static str = "conformance-counters";
}

async fn tally(store: &Store) -> Vec<(String, u64)> {
    let mut all = store.counters(&Tally).await.unwrap();
    all.sort();
    all
}

async fn items(store: &Store, list: &str) -> Vec<String> {
    store.list(&Items(list), 0, 1000).await.unwrap()
}

async fn a_transaction_writes_everything_when_its_conditions_hold(h: &Harness) {
    let s = &h.store;
    let read = s.read_versioned(&Raw("record")).await.unwrap();
    assert_eq!(read.value, None);
    let mut tx = Transaction::new();
    tx.expect_unchanged(&Raw("record"), &read);
    tx.put(&Raw("record"), &"v1".to_owned(), Some(LONG))
        .unwrap();
    tx.put(&Raw("applied:d1"), &"yes".to_owned(), None).unwrap();
    tx.push(
        &Items("history"),
        &"created".to_owned(),
        Some(10),
        Some(LONG),
    )
    .unwrap();
    tx.mark_done("d1", LONG);
    assert!(s.commit(&tx).await.unwrap());
    let other = h.another_process().await;
    assert_eq!(other.get("record").await.unwrap().as_deref(), Some("v1"));
    assert_eq!(
        other.get("applied:d1").await.unwrap().as_deref(),
        Some("yes")
    );
    assert_eq!(items(&other, "history").await, vec!["created"]);
    assert!(other.is_done("d1").await.unwrap());

    // The same transaction again: its condition (absent) no longer holds; nothing is written.
    s.put("applied:d1", "changed", None).await.unwrap();
    assert!(!s.commit(&tx).await.unwrap());
    assert_eq!(
        s.get("applied:d1").await.unwrap().as_deref(),
        Some("changed")
    );
    assert_eq!(items(s, "history").await.len(), 1);
}

async fn a_value_changed_since_it_was_read_fails_the_transaction(h: &Harness) {
    let s = &h.store;
    s.put("record", "v1", None).await.unwrap();
    let read = s.read_versioned(&Raw("record")).await.unwrap();
    assert_eq!(read.value.as_deref(), Some("v1"));
    // Another process writes in between.
    h.another_process()
        .await
        .put("record", "v2", None)
        .await
        .unwrap();
    let mut tx = Transaction::new();
    tx.expect_unchanged(&Raw("record"), &read);
    tx.put(&Raw("record"), &"v1-plus".to_owned(), None).unwrap();
    tx.push(&Items("history"), &"lost".to_owned(), None, None)
        .unwrap();
    assert!(!s.commit(&tx).await.unwrap());
    assert_eq!(s.get("record").await.unwrap().as_deref(), Some("v2"));
    assert!(items(s, "history").await.is_empty());
    // A value that expired counts as absent.
    s.put("short", "v", Some(SHORT)).await.unwrap();
    eventually("the value to expire", PATIENCE, || async {
        s.get("short").await.unwrap().is_none()
    })
    .await;
    let mut tx = Transaction::new();
    tx.expect_absent(&Raw("short"));
    tx.put(&Raw("short"), &"again".to_owned(), None).unwrap();
    assert!(s.commit(&tx).await.unwrap());
    assert_eq!(s.get("short").await.unwrap().as_deref(), Some("again"));
}

async fn a_transaction_fenced_by_a_lost_lock_writes_nothing(h: &Harness) {
    let s = &h.store;
    let guard = lock(s, "dispatcher", SHORT).await;
    let mut tx = Transaction::new();
    tx.expect_held(&guard);
    tx.push(&Items("outbox"), &"a".to_owned(), None, None)
        .unwrap();
    assert!(s.commit(&tx).await.unwrap());
    eventually("the lock to expire", PATIENCE, || async {
        let probe = s
            .try_lock(
                &hookbridge_worker::store::LockName::test("dispatcher"),
                LONG,
            )
            .await
            .unwrap();
        probe.is_some()
    })
    .await;
    let mut tx = Transaction::new();
    tx.expect_held(&guard);
    tx.pop_front(&Items("outbox"), 1);
    assert!(!s.commit(&tx).await.unwrap());
    assert_eq!(items(s, "outbox").await, vec!["a"]);
}

async fn lists_keep_order_bound_and_pop_from_the_front(h: &Harness) {
    let s = &h.store;
    for i in 1..=7 {
        let mut tx = Transaction::new();
        tx.push(&Items("bounded"), &format!("item-{i}"), Some(5), None)
            .unwrap();
        assert!(s.commit(&tx).await.unwrap());
    }
    let all = items(s, "bounded").await;
    assert_eq!(all, ["item-3", "item-4", "item-5", "item-6", "item-7"]);
    assert_eq!(
        s.list(&Items("bounded"), 1, 2).await.unwrap(),
        ["item-4", "item-5"]
    );
    assert!(s.list(&Items("bounded"), 9, 2).await.unwrap().is_empty());
    let mut tx = Transaction::new();
    tx.pop_front(&Items("bounded"), 2);
    assert!(s.commit(&tx).await.unwrap());
    assert_eq!(items(s, "bounded").await, ["item-5", "item-6", "item-7"]);
    // Popping more than there is empties the list; pushing starts it again in order.
    let mut tx = Transaction::new();
    tx.pop_front(&Items("bounded"), 10);
    tx.push(&Items("bounded"), &"fresh".to_owned(), Some(5), None)
        .unwrap();
    assert!(s.commit(&tx).await.unwrap());
    assert_eq!(items(s, "bounded").await, ["fresh"]);
    assert!(items(s, "never-written").await.is_empty());
}

/// The operator's pages read lists newest first, a page at a time, with their length.
async fn lists_read_newest_first_a_page_at_a_time_with_their_length(h: &Harness) {
    let s = &h.store;
    let mut tx = Transaction::new();
    for i in 1..=7 {
        tx.push(&Items("recent"), &format!("item-{i}"), Some(5), None)
            .unwrap();
    }
    assert!(s.commit(&tx).await.unwrap());
    assert_eq!(s.list_len(&Items("recent")).await.unwrap(), 5);
    assert_eq!(
        s.list_newest(&Items("recent"), 0, 2).await.unwrap(),
        ["item-7", "item-6"]
    );
    assert_eq!(
        s.list_newest(&Items("recent"), 2, 2).await.unwrap(),
        ["item-5", "item-4"]
    );
    assert_eq!(
        s.list_newest(&Items("recent"), 4, 2).await.unwrap(),
        ["item-3"]
    );
    assert!(
        s.list_newest(&Items("recent"), 5, 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.list_newest(&Items("recent"), 0, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.list_len(&Items("never-written")).await.unwrap(), 0);
    // An expired list has no length either.
    let mut tx = Transaction::new();
    tx.push(&Items("fleeting"), &"a".to_owned(), None, Some(SHORT))
        .unwrap();
    assert!(s.commit(&tx).await.unwrap());
    assert_eq!(s.list_len(&Items("fleeting")).await.unwrap(), 1);
    eventually("the list to expire", PATIENCE, || async {
        s.list_len(&Items("fleeting")).await.unwrap() == 0
            && s.list_newest(&Items("fleeting"), 0, 5)
                .await
                .unwrap()
                .is_empty()
    })
    .await;
}

async fn a_list_expires_as_a_whole_after_its_last_push(h: &Harness) {
    let s = &h.store;
    let mut tx = Transaction::new();
    tx.push(&Items("short"), &"a".to_owned(), None, Some(SHORT))
        .unwrap();
    tx.push(&Items("long"), &"a".to_owned(), None, Some(LONG))
        .unwrap();
    assert!(s.commit(&tx).await.unwrap());
    let mut tx = Transaction::new();
    tx.push(&Items("short"), &"b".to_owned(), None, Some(SHORT))
        .unwrap();
    assert!(s.commit(&tx).await.unwrap());
    assert_eq!(items(s, "short").await, ["a", "b"]);
    eventually("the list to expire", PATIENCE, || async {
        items(s, "short").await.is_empty()
    })
    .await;
    assert_eq!(items(s, "long").await, ["a"]);
    // A push without a TTL makes the list permanent again.
    let mut tx = Transaction::new();
    tx.push(&Items("made-permanent"), &"a".to_owned(), None, Some(SHORT))
        .unwrap();
    tx.push(&Items("made-permanent"), &"b".to_owned(), None, None)
        .unwrap();
    assert!(s.commit(&tx).await.unwrap());
    holds_until(
        "the list to stay",
        Instant::now() + SHORT + Duration::from_millis(500),
        || async { items(s, "made-permanent").await.len() == 2 },
    )
    .await;
}

/// Twenty read-decide-commit loops over one counter, from two processes at once: every increment
/// lands exactly once, because a commit on a value that changed since it was read fails.
async fn optimistic_increments_from_two_processes_never_lose_one(h: &Harness) {
    let other = h.another_process().await;
    let stores = Arc::new([h.store.clone(), other]);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let stores = stores.clone();
        tasks.push(tokio::spawn(async move {
            let s = &stores[i % 2];
            loop {
                let read = s.read_versioned(&Raw("counter")).await.unwrap();
                let n: u64 = read.value.as_deref().map_or(0, |v| v.parse().unwrap());
                let mut tx = Transaction::new();
                tx.expect_unchanged(&Raw("counter"), &read);
                tx.put(&Raw("counter"), &(n + 1).to_string(), None).unwrap();
                tx.push(&Items("increments"), &format!("{i}"), None, None)
                    .unwrap();
                if s.commit(&tx).await.unwrap() {
                    break;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(h.store.get("counter").await.unwrap().as_deref(), Some("20"));
    assert_eq!(items(&h.store, "increments").await.len(), 20);
}

/// Counters from two processes at once, with no read in between: every increment lands; an
/// increment in a transaction whose condition fails does not.
async fn counters_add_up_across_processes_and_follow_their_transaction(h: &Harness) {
    assert!(tally(&h.store).await.is_empty());
    let other = h.another_process().await;
    let stores = Arc::new([h.store.clone(), other]);
    let mut tasks = Vec::new();
    for i in 0..20u64 {
        let stores = stores.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = Transaction::new();
            let label = if i % 4 == 0 { "rare" } else { "common" };
            tx.increment(&Tally, &label.to_owned(), 1).unwrap();
            tx.increment(&Tally, &"weight".to_owned(), i).unwrap();
            assert!(stores[(i % 2) as usize].commit(&tx).await.unwrap());
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let want = vec![
        ("common".to_owned(), 15),
        ("rare".to_owned(), 5),
        ("weight".to_owned(), (0..20).sum()),
    ];
    assert_eq!(tally(&h.store).await, want);
    h.store.put("guard", "changed", None).await.unwrap();
    let mut tx = Transaction::new();
    tx.expect_absent(&Raw("guard"));
    tx.increment(&Tally, &"rare".to_owned(), 100).unwrap();
    assert!(!h.store.commit(&tx).await.unwrap());
    assert_eq!(tally(&h.store).await, want);
}

store_tests!(
    counters_add_up_across_processes_and_follow_their_transaction,
    a_transaction_writes_everything_when_its_conditions_hold,
    a_value_changed_since_it_was_read_fails_the_transaction,
    a_transaction_fenced_by_a_lost_lock_writes_nothing,
    lists_keep_order_bound_and_pop_from_the_front,
    lists_read_newest_first_a_page_at_a_time_with_their_length,
    a_list_expires_as_a_whole_after_its_last_push,
    optimistic_increments_from_two_processes_never_lose_one,
);
