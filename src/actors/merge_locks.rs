//! Locks on what a merge touches: the identities it links and the users that own them.
//! Merges that share neither run side by side, so that their flushes of sled are
//! shared; merges that share one run one at a time.
//!
//! A merge takes its identities first, then their owners, each set in ascending order:
//! every merge takes keys in one order (identities sort before users), so no two wait
//! for each other. An entry lives in the table only while someone holds or waits for
//! it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::sync::locked;

use super::record::Identity;

/// What a merge locks.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum LockKey {
    /// An identity it links.
    Identity(Identity),
    /// A user that owns one of them (after merges).
    User(u64),
}

/// A key's lock, and how many hold it or wait for it (the entry goes with the last).
#[derive(Debug)]
struct Entry {
    lock: Arc<AsyncMutex<()>>,
    holders: usize,
}

type Table = Mutex<HashMap<LockKey, Entry>>;

/// The locks of one node's merges.
#[derive(Debug, Default)]
pub(super) struct MergeLocks {
    table: Arc<Table>,
}

/// One key held, or waited for; let go when dropped (a merge whose caller went away
/// while it waited leaves nothing behind).
pub(super) struct Held {
    key: LockKey,
    guard: Option<OwnedMutexGuard<()>>,
    table: Arc<Table>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.guard = None;
        let mut table = locked(&self.table);
        let last = table.get_mut(&self.key).is_some_and(|entry| {
            entry.holders -= 1;
            entry.holders == 0
        });
        if last {
            table.remove(&self.key);
        }
    }
}

impl MergeLocks {
    /// Takes every key of `keys`, in ascending order, waiting for those held.
    pub(super) async fn lock(&self, keys: BTreeSet<LockKey>) -> Vec<Held> {
        let mut all = Vec::with_capacity(keys.len());
        for key in keys {
            let lock = {
                let mut table = locked(&self.table);
                let entry = table.entry(key.clone()).or_insert_with(|| Entry {
                    lock: Arc::default(),
                    holders: 0,
                });
                entry.holders += 1;
                Arc::clone(&entry.lock)
            };
            let mut held = Held {
                key,
                guard: None,
                table: Arc::clone(&self.table),
            };
            held.guard = Some(lock.lock_owned().await);
            all.push(held);
        }
        all
    }

    /// Keys in the table (held or waited for).
    #[cfg(test)]
    fn len(&self) -> usize {
        locked(&self.table).len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn keys(users: &[u64]) -> BTreeSet<LockKey> {
        users.iter().map(|user| LockKey::User(*user)).collect()
    }

    #[test]
    fn identities_sort_before_users() {
        let identity = LockKey::Identity(("zzz".into(), "zzz".into()));
        assert!(identity < LockKey::User(0));
    }

    #[actix_rt::test]
    async fn disjoint_keys_are_held_at_once_and_shared_ones_wait() {
        let locks = Arc::new(MergeLocks::default());
        let first = locks.lock(keys(&[1, 2])).await;
        let _disjoint = tokio::time::timeout(Duration::from_secs(5), locks.lock(keys(&[3])))
            .await
            .expect("a disjoint key is free");
        let waiting = {
            let locks = Arc::clone(&locks);
            tokio::spawn(async move { locks.lock(keys(&[0, 2])).await.len() })
        };
        // Once it holds key 0 and waits for key 2, the table has keys 0 to 3.
        for _ in 0..1000 {
            if locks.len() == 4 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(locks.len(), 4);
        assert!(!waiting.is_finished(), "key 2 is held");
        drop(first);
        assert_eq!(waiting.await.unwrap(), 2);
    }

    #[actix_rt::test]
    async fn released_keys_leave_the_table() {
        let locks = MergeLocks::default();
        let held = locks.lock(keys(&[1, 2, 3])).await;
        assert_eq!(locks.len(), 3);
        drop(held);
        assert_eq!(locks.len(), 0);
    }

    #[actix_rt::test]
    async fn a_waiter_given_up_leaves_nothing_behind() {
        use futures_util::FutureExt as _;
        let locks = MergeLocks::default();
        let held = locks.lock(keys(&[1])).await;
        // Takes key 0, then waits for key 1; dropped while it waits.
        assert!(locks.lock(keys(&[0, 1])).now_or_never().is_none());
        assert_eq!(locks.len(), 1, "only the held key");
        drop(held);
        assert_eq!(locks.len(), 0);
        assert_eq!(locks.lock(keys(&[0, 1])).await.len(), 2);
    }
}
