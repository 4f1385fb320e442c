//! Node-wide totals per activity type (`GET /api/v1/activities`), kept up to date by
//! user actors from the difference each change makes to their own totals.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tracing::warn;

use crate::domain::Timestamp;
use crate::storage::{StorageError, Store};
use crate::sync::locked;

use super::record::UserRecord;
use super::view::{activity_summaries, ActivitySummary};

/// Totals over every user.
#[derive(Default)]
pub struct ActivityTotals {
    totals: Mutex<BTreeMap<String, ActivitySummary>>,
}

impl ActivityTotals {
    /// Adds the difference between one user's totals before and after a change.
    pub fn adjust(
        &self,
        before: &BTreeMap<String, ActivitySummary>,
        after: &BTreeMap<String, ActivitySummary>,
    ) {
        if before == after {
            return;
        }
        let mut totals = locked(&self.totals);
        // Every type either side names: a user that leaves the node takes its counts.
        for name in before
            .keys()
            .chain(after.keys().filter(|k| !before.contains_key(*k)))
        {
            let was = before.get(name).map_or(0, |s| s.count);
            let now = after.get(name);
            let total = totals.entry(name.clone()).or_insert(ActivitySummary {
                count: 0,
                last_at: None,
            });
            total.count = (total.count + now.map_or(0, |s| s.count)).saturating_sub(was);
            total.last_at = total.last_at.max(now.and_then(|s| s.last_at));
        }
    }

    /// Adds the totals of the stored users `wanted` picks (at recovery, or when a node
    /// takes them over); returns how many were counted.
    pub fn add_stored(
        &self,
        store: &Store,
        wanted: impl Fn(u64) -> bool,
        now: Timestamp,
    ) -> Result<usize, StorageError> {
        self.stored(store, wanted, now, false)
    }

    /// Takes away the totals of the stored users `wanted` picks (this node hands them
    /// over).
    pub fn remove_stored(
        &self,
        store: &Store,
        wanted: impl Fn(u64) -> bool,
        now: Timestamp,
    ) -> Result<usize, StorageError> {
        self.stored(store, wanted, now, true)
    }

    /// Reads the records in one pass over storage (a million users: one scan, not a
    /// million lookups). A record that does not decode is skipped and logged: its user
    /// is rebuilt from the journal when it loads.
    fn stored(
        &self,
        store: &Store,
        wanted: impl Fn(u64) -> bool,
        now: Timestamp,
        removing: bool,
    ) -> Result<usize, StorageError> {
        let mut counted = 0;
        for entry in store.records_where::<UserRecord>(wanted) {
            let record = match entry {
                Ok(record) => record,
                Err(StorageError::Decode(reason)) => {
                    warn!(%reason, "a user record does not decode; its activity is not counted");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let summaries = activity_summaries(&record, now);
            if removing {
                let none = summaries
                    .iter()
                    .map(|(name, s)| {
                        let gone = ActivitySummary {
                            count: 0,
                            last_at: s.last_at,
                        };
                        (name.clone(), gone)
                    })
                    .collect();
                self.adjust(&summaries, &none);
            } else {
                self.adjust(&BTreeMap::new(), &summaries);
            }
            counted += 1;
        }
        Ok(counted)
    }

    /// Returns the totals, ordered by activity type.
    pub fn snapshot(&self) -> Vec<(String, ActivitySummary)> {
        let totals = locked(&self.totals);
        totals.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;

    fn summary(count: u64, last: i64) -> ActivitySummary {
        ActivitySummary {
            count,
            last_at: Some(Timestamp::from_millis(last)),
        }
    }

    #[test]
    fn adds_each_users_difference() {
        let totals = ActivityTotals::default();
        let empty = BTreeMap::new();
        let one = BTreeMap::from([("v".to_owned(), summary(1, 10))]);
        let two = BTreeMap::from([("v".to_owned(), summary(3, 5))]);
        totals.adjust(&empty, &one);
        totals.adjust(&empty, &two);
        totals.adjust(&two, &BTreeMap::from([("v".to_owned(), summary(4, 20))]));
        assert_eq!(totals.snapshot(), vec![("v".to_owned(), summary(5, 20))]);
        // A user that leaves (given to another node) takes its counts.
        totals.adjust(&one, &empty);
        assert_eq!(totals.snapshot(), vec![("v".to_owned(), summary(4, 20))]);
    }
}
