//! Every key the worker keeps in the store, each tied to the type of its value: the one place that
//! knows a key's prefix. A key can only be read as what was written under it, and because no
//! prefix is the beginning of another, two features cannot write to the same key.
//!
//! Values are JSON; a value that does not parse as its key's type is reported as
//! [`super::StoreError::Corrupt`], never guessed at.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::events::github::IssueIdentity;
use crate::github_sync::{CommentRecord, Intent, Mapping};

/// A key of the store's key/value map and the type of the value kept there.
pub trait StoreKey {
    /// What is kept at this key.
    type Value: Serialize + DeserializeOwned;
    /// The namespace of this kind of key (no prefix begins another one).
    const PREFIX: &'static str;
    /// What follows the prefix.
    fn suffix(&self) -> String;

    /// The whole key.
    fn name(&self) -> String {
        format!("{}{}", Self::PREFIX, self.suffix())
    }
}

/// The Jira issue that mirrors a GitHub issue.
pub struct IssueMapping<'a>(pub &'a IssueIdentity);

impl StoreKey for IssueMapping<'_> {
    type Value = Mapping;
    const PREFIX: &'static str = "map:";
    fn suffix(&self) -> String {
        self.0.to_string()
    }
}

/// A Jira create that may have happened for a GitHub issue (crash recovery).
pub struct IssueCreateIntent<'a>(pub &'a IssueIdentity);

impl StoreKey for IssueCreateIntent<'_> {
    type Value = Intent;
    const PREFIX: &'static str = "intent:create:";
    fn suffix(&self) -> String {
        self.0.to_string()
    }
}

/// A GitHub comment that has its Jira twin.
pub struct CommentSynced<'a>(pub &'a IssueIdentity, pub u64);

impl StoreKey for CommentSynced<'_> {
    type Value = CommentRecord;
    const PREFIX: &'static str = "comment:";
    fn suffix(&self) -> String {
        format!("{}:{}", self.0, self.1)
    }
}

/// A Jira comment that may have been posted for a GitHub comment (crash recovery).
pub struct CommentIntent<'a>(pub &'a IssueIdentity, pub u64);

impl StoreKey for CommentIntent<'_> {
    type Value = Intent;
    const PREFIX: &'static str = "intent:comment:";
    fn suffix(&self) -> String {
        format!("{}:{}", self.0, self.1)
    }
}

/// The name of a lock; one constructor per kind of lock, so lock names cannot collide either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockName(String);

impl LockName {
    /// Serialises all work on one GitHub issue.
    pub fn github_issue(identity: &IssueIdentity) -> Self {
        Self(format!("issue:{identity}"))
    }

    /// A lock for tests of the store itself.
    pub fn test(name: &str) -> Self {
        Self(format!("test:{name}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for LockName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every key prefix, for the test below; a new key type adds its prefix here.
#[cfg(test)]
pub(crate) const ALL_PREFIXES: &[&str] = &[
    <IssueMapping<'static> as StoreKey>::PREFIX,
    <IssueCreateIntent<'static> as StoreKey>::PREFIX,
    <CommentSynced<'static> as StoreKey>::PREFIX,
    <CommentIntent<'static> as StoreKey>::PREFIX,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_prefix_begins_another() {
        for (i, a) in ALL_PREFIXES.iter().enumerate() {
            for (j, b) in ALL_PREFIXES.iter().enumerate() {
                assert!(
                    i == j || !b.starts_with(a),
                    "prefix {a:?} begins {b:?}: their keys could collide"
                );
            }
        }
    }
}
