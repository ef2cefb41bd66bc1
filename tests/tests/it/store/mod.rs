//! Coordination-store conformance: every case runs against both backends, the embedded SQLite
//! store and Redis (started by `scripts/with-test-services.sh`), because the worker's exactly-once
//! guarantees rest on the [`Store`] semantics and must not depend on which backend it gets.
//!
//! Each test gets a fresh store: a temp dir, or a unique key prefix on the shared test Redis.
//! "Two processes" are two separately opened stores (a second SQLite connection to the same file,
//! a second Redis connection with the same prefix). Expiry is awaited by polling with a deadline;
//! that something did *not* happen is checked until a point in time has passed.
//!
//! Transactions and lists have their cases in `transactions.rs`.
//!
//! Run: `scripts/with-test-services.sh cargo test -p hookbridge-tests --test it store`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use hookbridge_tests::wait::eventually;
use hookbridge_worker::store::{
    EMBEDDED_FILE_NAME, LockGuard, LockName, Store, StoreError, StoreKey,
};
use tokio::sync::Barrier;
use tokio::time::Instant;

/// A key of these tests: any text, holding text. The worker itself only uses the typed keys of
/// `store::keys`; the map's semantics are the same whatever the key type.
struct Raw<'a>(&'a str);

impl StoreKey for Raw<'_> {
    type Value = String;
    const PREFIX: &'static str = "conformance:";
    fn suffix(&self) -> String {
        self.0.to_owned()
    }
}

/// The key/value map with text keys and values, through [`Raw`].
trait RawMap {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn put(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<(), StoreError>;
    async fn put_fenced(
        &self,
        guard: &LockGuard,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError>;
    async fn delete_fenced(&self, guard: &LockGuard, key: &str) -> Result<bool, StoreError>;
}

impl RawMap for Store {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read(&Raw(key)).await
    }
    async fn put(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<(), StoreError> {
        self.write(&Raw(key), &value.to_owned(), ttl).await
    }
    async fn put_fenced(
        &self,
        guard: &LockGuard,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.write_fenced(guard, &Raw(key), &value.to_owned(), ttl)
            .await
    }
    async fn delete_fenced(&self, guard: &LockGuard, key: &str) -> Result<bool, StoreError> {
        self.remove_fenced(guard, &Raw(key)).await
    }
}

/// How long any awaited condition may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);
/// A TTL long enough never to run out during a test.
const LONG: Duration = Duration::from_secs(600);
/// A TTL short enough to wait for.
const SHORT: Duration = Duration::from_secs(1);

enum Backend {
    Embedded(tempfile::TempDir),
    Redis { url: String, prefix: String },
}

/// One fresh store of either backend, and how to open it a second time.
struct Harness {
    store: Store,
    backend: Backend,
}

fn redis_url() -> String {
    std::env::var("HOOKBRIDGE_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!(
            "HOOKBRIDGE_TEST_REDIS_URL is not set, so the Redis store cannot be tested. Run the \
             tests with `make test`, or wrap the command: \
             `scripts/with-test-services.sh cargo test -p hookbridge-tests --test it store` \
             (it installs and starts a private Redis)"
        )
    })
}

impl Harness {
    async fn embedded() -> Self {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let store = Store::open_embedded(&dir.path().join(EMBEDDED_FILE_NAME))
            .expect("open the embedded store");
        Self {
            store,
            backend: Backend::Embedded(dir),
        }
    }

    async fn redis() -> Self {
        let url = redis_url();
        let prefix = format!("hbtest:{}:", uuid::Uuid::new_v4().simple());
        let store = Store::connect_redis(&url, &prefix)
            .await
            .unwrap_or_else(|e| panic!("connect to the test Redis at {url}: {e}"));
        Self {
            store,
            backend: Backend::Redis { url, prefix },
        }
    }

    /// The same store opened again, standing in for another worker process.
    async fn another_process(&self) -> Store {
        match &self.backend {
            Backend::Embedded(dir) => Store::open_embedded(&dir.path().join(EMBEDDED_FILE_NAME))
                .expect("open the embedded store a second time"),
            Backend::Redis { url, prefix } => Store::connect_redis(url, prefix)
                .await
                .expect("connect to the test Redis a second time"),
        }
    }
}

/// Polls `check` until `until` has passed, failing as soon as it returns false.
async fn holds_until<F, Fut>(what: &str, until: Instant, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    while Instant::now() < until {
        assert!(check().await, "{what}: stopped holding before the deadline");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(check().await, "{what}: stopped holding at the deadline");
}

async fn lock(store: &Store, key: &str, ttl: Duration) -> LockGuard {
    store
        .try_lock(&LockName::test(key), ttl)
        .await
        .expect("try_lock")
        .unwrap_or_else(|| panic!("lock {key} is unexpectedly held"))
}

// --- the cases ---------------------------------------------------------------------------------

async fn reports_its_backend_and_is_ready(h: &Harness) {
    h.store.check_ready().await.expect("check_ready");
    let expected = match h.backend {
        Backend::Embedded(_) => "embedded",
        Backend::Redis { .. } => "redis",
    };
    assert_eq!(h.store.backend_name(), expected);
}

async fn is_done_is_false_until_mark_done(h: &Harness) {
    let s = &h.store;
    assert!(!s.is_done("delivery-1").await.unwrap());
    s.mark_done("delivery-1", LONG).await.unwrap();
    assert!(s.is_done("delivery-1").await.unwrap());
    assert!(
        !s.is_done("delivery-2").await.unwrap(),
        "marks are per delivery"
    );
    // Marking twice (a redelivery that raced the first) is harmless.
    s.mark_done("delivery-1", LONG).await.unwrap();
    assert!(s.is_done("delivery-1").await.unwrap());
}

async fn done_marks_expire(h: &Harness) {
    let s = &h.store;
    s.mark_done("short", SHORT).await.unwrap();
    s.mark_done("long", LONG).await.unwrap();
    assert!(s.is_done("short").await.unwrap());
    eventually("the short mark expires", PATIENCE, || async {
        !s.is_done("short").await.unwrap()
    })
    .await;
    assert!(s.is_done("long").await.unwrap());
}

async fn a_held_lock_cannot_be_taken(h: &Harness) {
    let s = &h.store;
    let other = h.another_process().await;
    let guard = lock(s, "gh:acme/app#1", LONG).await;
    assert_eq!(guard.key, LockName::test("gh:acme/app#1").as_str());
    assert!(
        s.try_lock(&LockName::test("gh:acme/app#1"), LONG)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        other
            .try_lock(&LockName::test("gh:acme/app#1"), LONG)
            .await
            .unwrap()
            .is_none()
    );
    // Locks are per key.
    lock(&other, "gh:acme/app#2", LONG).await;
}

async fn an_expired_lock_goes_to_the_next_caller_and_fences_out_the_old_holder(h: &Harness) {
    let s = &h.store;
    let other = h.another_process().await;
    let old = lock(s, "gh:1", SHORT).await;
    assert!(s.put_fenced(&old, "map:gh:1", "OLD-1", None).await.unwrap());

    let deadline = Instant::now() + PATIENCE;
    let new = loop {
        if let Some(guard) = other.try_lock(&LockName::test("gh:1"), LONG).await.unwrap() {
            break guard;
        }
        assert!(
            Instant::now() < deadline,
            "the expired lock was not free within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        new.token > old.token,
        "tokens must grow: {} then {}",
        old.token,
        new.token
    );

    // The old holder, unaware, is fenced out of everything.
    assert!(!s.put_fenced(&old, "map:gh:1", "STALE", None).await.unwrap());
    assert!(!s.delete_fenced(&old, "map:gh:1").await.unwrap());
    assert!(!s.extend_lock(&old, LONG).await.unwrap());
    s.unlock(&old).await.unwrap();
    assert_eq!(s.get("map:gh:1").await.unwrap().as_deref(), Some("OLD-1"));

    // ...and its unlock did not free the new holder's lock.
    assert!(
        s.try_lock(&LockName::test("gh:1"), LONG)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.put_fenced(&new, "map:gh:1", "NEW-1", None).await.unwrap());
    assert!(s.extend_lock(&new, LONG).await.unwrap());
    assert_eq!(
        other.get("map:gh:1").await.unwrap().as_deref(),
        Some("NEW-1")
    );
}

async fn a_lock_that_expired_untaken_is_no_longer_the_holders(h: &Harness) {
    let s = &h.store;
    let guard = lock(s, "gh:lapsed", SHORT).await;
    assert!(s.put_fenced(&guard, "k", "v1", None).await.unwrap());
    // Probe with writes, not extensions: a successful extension would keep the lock alive.
    eventually("the lock lapses", PATIENCE, || async {
        !s.put_fenced(&guard, "k", "v2", None).await.unwrap()
    })
    .await;
    // Nobody took it, yet the holder's rights ended with its TTL.
    assert!(!s.extend_lock(&guard, LONG).await.unwrap());
    assert!(!s.delete_fenced(&guard, "k").await.unwrap());
    assert!(s.get("k").await.unwrap().is_some());
    let next = lock(s, "gh:lapsed", LONG).await;
    assert!(next.token > guard.token);
}

async fn unlock_frees_the_lock_and_tokens_keep_growing(h: &Harness) {
    let s = &h.store;
    let other = h.another_process().await;
    let mut last = 0;
    for round in 0..6 {
        // Alternate "processes", so growth does not depend on one connection's state.
        let store = if round % 2 == 0 { s } else { &other };
        let guard = lock(store, "gh:cycle", LONG).await;
        assert!(
            guard.token > last,
            "round {round}: token {} after {last}",
            guard.token
        );
        last = guard.token;
        store.unlock(&guard).await.unwrap();
        // Unlocking twice is harmless.
        store.unlock(&guard).await.unwrap();
    }
    // A freed lock fences its old holder too.
    let gone = LockGuard {
        key: "gh:cycle".into(),
        token: last,
    };
    assert!(!s.put_fenced(&gone, "k", "v", None).await.unwrap());
    assert!(!s.extend_lock(&gone, LONG).await.unwrap());
}

async fn extend_lock_keeps_the_lock_past_its_first_ttl(h: &Harness) {
    let s = &h.store;
    let other = h.another_process().await;
    let guard = lock(s, "gh:long-work", SHORT).await;
    let first_expiry = Instant::now() + SHORT;
    assert!(s.extend_lock(&guard, LONG).await.unwrap());
    holds_until(
        "the extended lock stays held",
        first_expiry + Duration::from_millis(500),
        || async {
            other
                .try_lock(&LockName::test("gh:long-work"), LONG)
                .await
                .unwrap()
                .is_none()
        },
    )
    .await;
    assert!(s.put_fenced(&guard, "k", "v", None).await.unwrap());
}

async fn twenty_concurrent_callers_get_exactly_one_lock(h: &Harness) {
    let stores = [h.store.clone(), h.another_process().await];
    let barrier = Arc::new(Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = stores[i % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .try_lock(&LockName::test("gh:contended"), LONG)
                .await
                .unwrap()
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        if let Some(guard) = task.await.unwrap() {
            winners.push(guard);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    // The winner really holds it.
    let winner = &winners[0];
    assert!(h.store.put_fenced(winner, "k", "v", None).await.unwrap());
}

async fn get_put_and_overwrite(h: &Harness) {
    let s = &h.store;
    let other = h.another_process().await;
    assert_eq!(s.get("missing").await.unwrap(), None);
    s.put("cr:CR-1", r#"{"status":"Approved"}"#, None)
        .await
        .unwrap();
    assert_eq!(
        other.get("cr:CR-1").await.unwrap().as_deref(),
        Some(r#"{"status":"Approved"}"#)
    );
    s.put("cr:CR-1", "newer", Some(LONG)).await.unwrap();
    assert_eq!(s.get("cr:CR-1").await.unwrap().as_deref(), Some("newer"));
    // Keys and values are opaque text: separators, spaces, non-ASCII, empty values.
    for (key, value) in [
        ("gh:acme/app#7 title", "JIRA-7"),
        ("ключ:🔑", "значение ✓"),
        ("empty", ""),
    ] {
        s.put(key, value, None).await.unwrap();
        assert_eq!(s.get(key).await.unwrap().as_deref(), Some(value), "{key}");
    }
}

async fn values_expire_and_a_put_without_ttl_clears_the_old_ttl(h: &Harness) {
    let s = &h.store;
    let guard = lock(s, "gh:ttl", LONG).await;
    s.put("plain", "v", Some(SHORT)).await.unwrap();
    assert!(
        s.put_fenced(&guard, "fenced", "v", Some(SHORT))
            .await
            .unwrap()
    );
    s.put("made-permanent", "v", Some(SHORT)).await.unwrap();
    s.put("made-permanent", "w", None).await.unwrap();
    s.put("fenced-permanent", "v", Some(SHORT)).await.unwrap();
    assert!(
        s.put_fenced(&guard, "fenced-permanent", "w", None)
            .await
            .unwrap()
    );
    assert_eq!(s.get("plain").await.unwrap().as_deref(), Some("v"));
    eventually("the TTL'd values expire", PATIENCE, || async {
        s.get("plain").await.unwrap().is_none() && s.get("fenced").await.unwrap().is_none()
    })
    .await;
    assert_eq!(s.get("made-permanent").await.unwrap().as_deref(), Some("w"));
    assert_eq!(
        s.get("fenced-permanent").await.unwrap().as_deref(),
        Some("w")
    );
}

async fn delete_fenced_removes_only_for_the_holder(h: &Harness) {
    let s = &h.store;
    let guard = lock(s, "gh:intent", LONG).await;
    assert!(
        s.put_fenced(&guard, "intent:gh:9", "creating", None)
            .await
            .unwrap()
    );
    assert!(s.delete_fenced(&guard, "intent:gh:9").await.unwrap());
    assert_eq!(s.get("intent:gh:9").await.unwrap(), None);
    // Deleting what is not there, while holding the lock, is still a success.
    assert!(s.delete_fenced(&guard, "intent:gh:9").await.unwrap());

    s.put("intent:gh:10", "creating", None).await.unwrap();
    let stranger = LockGuard {
        key: "gh:intent".into(),
        token: guard.token + 1,
    };
    assert!(!s.delete_fenced(&stranger, "intent:gh:10").await.unwrap());
    assert_eq!(
        s.get("intent:gh:10").await.unwrap().as_deref(),
        Some("creating")
    );
}

async fn a_guard_fences_only_with_its_own_lock(h: &Harness) {
    let s = &h.store;
    let b = lock(s, "gh:b", LONG).await;
    // A guard for the right key with a token that is not the holder's holds nothing.
    let forged = LockGuard {
        key: b.key.clone(),
        token: b.token + 1000,
    };
    assert!(!s.put_fenced(&forged, "k", "v", None).await.unwrap());
    assert!(!s.extend_lock(&forged, LONG).await.unwrap());
    s.unlock(&forged).await.unwrap();
    assert!(
        s.try_lock(&LockName::test("gh:b"), LONG)
            .await
            .unwrap()
            .is_none(),
        "a forged unlock freed the lock"
    );
    let nobody = LockGuard {
        key: "gh:never-locked".into(),
        token: 1,
    };
    assert!(!s.put_fenced(&nobody, "k", "v", None).await.unwrap());
    assert!(!s.extend_lock(&nobody, LONG).await.unwrap());
    s.unlock(&nobody).await.unwrap();
    assert_eq!(s.get("k").await.unwrap(), None);
}

async fn locks_values_and_done_marks_do_not_collide(h: &Harness) {
    let s = &h.store;
    s.put("x", "value", None).await.unwrap();
    s.put("lock:x", "value", None).await.unwrap();
    s.put("fence:x", "not a number", None).await.unwrap();
    s.put("done:x", "value", None).await.unwrap();
    assert!(!s.is_done("x").await.unwrap());
    let guard = lock(s, "x", LONG).await;
    s.mark_done("x", LONG).await.unwrap();
    assert_eq!(s.get("x").await.unwrap().as_deref(), Some("value"));
    assert_eq!(s.get("lock:x").await.unwrap().as_deref(), Some("value"));
    assert!(s.put_fenced(&guard, "x", "fenced", None).await.unwrap());
    s.unlock(&guard).await.unwrap();
    let next = lock(s, "x", LONG).await;
    assert!(next.token > guard.token);
}

/// Two processes reserving from one schedule get distinct slots, `interval` apart: the waits they
/// are told, sorted, step by (about) one interval each.
async fn slot_reservations_from_two_processes_share_one_schedule(h: &Harness) {
    let other = h.another_process().await;
    let interval = Duration::from_millis(50);
    let mut waits = Vec::new();
    for i in 0..10 {
        let store = if i % 2 == 0 { &h.store } else { &other };
        waits.push(store.reserve_slot("jira:create", interval).await.unwrap());
    }
    // Reservations were made back to back (far less than 50 ms apart), so slot k starts about
    // k intervals from the first: each wait is larger than the one before.
    for pair in waits.windows(2) {
        assert!(pair[1] > pair[0], "waits not increasing: {waits:?}");
    }
    let last = waits[9];
    assert!(
        last >= Duration::from_millis(400) && last <= Duration::from_millis(460),
        "10th slot should start ~450 ms out, got {last:?} ({waits:?})"
    );
    // Another schedule is independent.
    assert!(
        h.store
            .reserve_slot("jira:comment", interval)
            .await
            .unwrap()
            < Duration::from_millis(5)
    );
}

/// `hold_off` pushes every later reservation past the delay, for every process.
async fn hold_off_delays_every_process(h: &Harness) {
    let other = h.another_process().await;
    h.store
        .hold_off("jira:create", Duration::from_secs(2))
        .await
        .unwrap();
    let wait = other
        .reserve_slot("jira:create", Duration::from_millis(10))
        .await
        .unwrap();
    assert!(
        wait > Duration::from_millis(1800) && wait <= Duration::from_secs(2),
        "{wait:?}"
    );
    // A shorter hold-off does not pull the schedule back in.
    h.store
        .hold_off("jira:create", Duration::from_millis(100))
        .await
        .unwrap();
    let wait = h
        .store
        .reserve_slot("jira:create", Duration::from_millis(10))
        .await
        .unwrap();
    assert!(wait > Duration::from_millis(1800), "{wait:?}");
}

macro_rules! store_tests {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let harness = super::Harness::embedded().await;
                    super::$case(&harness).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let harness = super::Harness::redis().await;
                    super::$case(&harness).await;
                }
            )*
        }
    };
}

mod transactions;

store_tests!(
    reports_its_backend_and_is_ready,
    is_done_is_false_until_mark_done,
    done_marks_expire,
    a_held_lock_cannot_be_taken,
    an_expired_lock_goes_to_the_next_caller_and_fences_out_the_old_holder,
    a_lock_that_expired_untaken_is_no_longer_the_holders,
    unlock_frees_the_lock_and_tokens_keep_growing,
    extend_lock_keeps_the_lock_past_its_first_ttl,
    twenty_concurrent_callers_get_exactly_one_lock,
    get_put_and_overwrite,
    values_expire_and_a_put_without_ttl_clears_the_old_ttl,
    delete_fenced_removes_only_for_the_holder,
    a_guard_fences_only_with_its_own_lock,
    locks_values_and_done_marks_do_not_collide,
    slot_reservations_from_two_processes_share_one_schedule,
    hold_off_delays_every_process,
);

// --- backend-specific ----------------------------------------------------------------------------

#[tokio::test]
async fn redis_down_is_unavailable_not_a_hang() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(15),
        Store::connect_redis(&format!("redis://127.0.0.1:{port}/"), "hbtest:"),
    )
    .await
    .expect("connect_redis must give up by itself");
    let err = match result {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => e,
    };
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(err.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn redis_prefixes_keep_deployments_apart() {
    let url = redis_url();
    let a = Store::connect_redis(&url, &format!("hbtest:{}:", uuid::Uuid::new_v4().simple()))
        .await
        .unwrap();
    let b = Store::connect_redis(&url, &format!("hbtest:{}:", uuid::Uuid::new_v4().simple()))
        .await
        .unwrap();
    lock(&a, "gh:1", LONG).await;
    lock(&b, "gh:1", LONG).await;
    a.put("k", "a", None).await.unwrap();
    a.mark_done("d", LONG).await.unwrap();
    assert_eq!(b.get("k").await.unwrap(), None);
    assert!(!b.is_done("d").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_store_serves_two_processes_with_interleaved_writes() {
    let h = Harness::embedded().await;
    let other = h.another_process().await;
    // Many small transactions from both connections at once: none may fail with "database is
    // locked" (the busy timeout makes writers wait their turn).
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 {
            h.store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            let key = format!("gh:{}", i % 5);
            if let Some(guard) = store.try_lock(&LockName::test(&key), LONG).await.unwrap() {
                assert!(
                    store
                        .put_fenced(&guard, &format!("map:{key}"), &i.to_string(), None)
                        .await
                        .unwrap()
                );
                store.unlock(&guard).await.unwrap();
            }
            store.mark_done(&format!("d{i}"), LONG).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for i in 0..40 {
        assert!(h.store.is_done(&format!("d{i}")).await.unwrap(), "d{i}");
    }
}
