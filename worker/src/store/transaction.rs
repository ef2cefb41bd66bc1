//! All-or-nothing writes: a [`Transaction`] checks its conditions and applies its writes in one
//! atomic step of the backend (one Lua script in Redis, one `BEGIN IMMEDIATE` transaction in
//! SQLite), so an effect and the records that say it happened cannot be separated by a crash.
//!
//! The conditions are optimistic: "this key still holds what I read" ([`Versioned`]) or "I still
//! hold this lock". A transaction whose condition fails writes nothing and reports it, and the
//! caller reads again and decides again. This is how a Change Request record, its history, the
//! Slack alert its change calls for and the delivery's done-mark are written together.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys::StoreKey;
use super::{LockGuard, StoreError, encode};

/// A list in the store and the type of its items (see [`super::keys`]): items are appended at
/// the back, read and removed from the front.
pub trait StoreList {
    /// What one item is.
    type Item: Serialize + DeserializeOwned;
    /// The namespace of this kind of list (no prefix begins another one).
    const PREFIX: &'static str;
    /// What follows the prefix.
    fn suffix(&self) -> String;

    /// The whole key.
    fn name(&self) -> String {
        format!("{}{}", Self::PREFIX, self.suffix())
    }
}

/// A family of counters in the store (see [`super::keys`]): one integer per label set, only ever
/// increased, so that every process — workers and short-lived CLI runs alike — adds to the same
/// figures (the governance metrics).
pub trait StoreCounters {
    /// What tells one counter of the family from another (serialised as its field name).
    type Labels: Serialize + DeserializeOwned;
    /// The namespace of this family (no prefix begins another one).
    const PREFIX: &'static str;

    /// The whole key.
    fn name(&self) -> String {
        Self::PREFIX.to_owned()
    }
}

/// A value as read, remembered exactly so that a transaction can require it to be unchanged.
#[derive(Debug, Clone)]
pub struct Versioned<V> {
    pub value: Option<V>,
    pub(super) raw: Option<String>,
}

/// A condition checked before any write of a transaction.
#[derive(Debug, Clone)]
pub(crate) enum Condition {
    /// The key/value entry `key` holds exactly `raw` (`None`: absent or expired).
    Unchanged { key: String, raw: Option<String> },
    /// The lock of `guard` is still held by it.
    Holds(LockGuard),
}

/// One write of a transaction.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    Put {
        key: String,
        value: String,
        ttl: Option<Duration>,
    },
    Delete {
        key: String,
    },
    /// Appends `item`; keeps only the newest `keep` items when set; the whole list expires
    /// `ttl` after this write when set.
    Push {
        list: String,
        item: String,
        keep: Option<usize>,
        ttl: Option<Duration>,
    },
    /// Removes the `count` oldest items.
    PopFront {
        list: String,
        count: usize,
    },
    /// Adds `by` to the counter `field` of the family `counters`.
    Increment {
        counters: String,
        field: String,
        by: u64,
    },
    /// Marks a delivery done, as [`super::Store::mark_done`] does.
    MarkDone {
        delivery: String,
        ttl: Duration,
    },
}

/// Conditions and writes applied together, or not at all.
#[derive(Debug, Clone, Default)]
pub struct Transaction {
    pub(crate) conditions: Vec<Condition>,
    pub(crate) writes: Vec<Write>,
}

impl Transaction {
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `key` to still hold what `read` saw.
    pub fn expect_unchanged<K: StoreKey>(&mut self, key: &K, read: &Versioned<K::Value>) {
        self.conditions.push(Condition::Unchanged {
            key: key.name(),
            raw: read.raw.clone(),
        });
    }

    /// Requires `key` to be absent (or expired).
    pub fn expect_absent<K: StoreKey>(&mut self, key: &K) {
        self.conditions.push(Condition::Unchanged {
            key: key.name(),
            raw: None,
        });
    }

    /// Requires `guard` to still hold its lock.
    pub fn expect_held(&mut self, guard: &LockGuard) {
        self.conditions.push(Condition::Holds(guard.clone()));
    }

    /// Writes `value` at `key` (`ttl: None` keeps it until overwritten).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the value cannot be encoded.
    pub fn put<K: StoreKey>(
        &mut self,
        key: &K,
        value: &K::Value,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        self.writes.push(Write::Put {
            key: key.name(),
            value: encode::<K::Value>(K::PREFIX, value)?,
            ttl,
        });
        Ok(())
    }

    /// Deletes `key`.
    pub fn delete<K: StoreKey>(&mut self, key: &K) {
        self.writes.push(Write::Delete { key: key.name() });
    }

    /// Appends `item` to `list`, keeping the newest `keep` items when set; the list expires `ttl`
    /// after this write when set.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the item cannot be encoded.
    pub fn push<L: StoreList>(
        &mut self,
        list: &L,
        item: &L::Item,
        keep: Option<usize>,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        self.writes.push(Write::Push {
            list: list.name(),
            item: encode::<L::Item>(L::PREFIX, item)?,
            keep,
            ttl,
        });
        Ok(())
    }

    /// Removes the `count` oldest items of `list`.
    pub fn pop_front<L: StoreList>(&mut self, list: &L, count: usize) {
        self.writes.push(Write::PopFront {
            list: list.name(),
            count,
        });
    }

    /// Adds `by` to the counter of `counters` labelled `labels`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the labels cannot be encoded.
    pub fn increment<C: StoreCounters>(
        &mut self,
        counters: &C,
        labels: &C::Labels,
        by: u64,
    ) -> Result<(), StoreError> {
        self.writes.push(Write::Increment {
            counters: counters.name(),
            field: encode::<C::Labels>(C::PREFIX, labels)?,
            by,
        });
        Ok(())
    }

    /// Marks `delivery` done for `ttl`.
    pub fn mark_done(&mut self, delivery: &str, ttl: Duration) {
        self.writes.push(Write::MarkDone {
            delivery: delivery.to_owned(),
            ttl,
        });
    }

    /// Whether the transaction writes nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}
