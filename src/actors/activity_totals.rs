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
        wanted: impl Fn(u64) -> bool + Sync,
        now: Timestamp,
    ) -> Result<usize, StorageError> {
        let (sums, counted) = stored_sums(store, wanted, now)?;
        self.adjust(&BTreeMap::new(), &sums);
        Ok(counted)
    }

    /// Takes away the totals of the stored users `wanted` picks (this node hands them
    /// over).
    pub fn remove_stored(
        &self,
        store: &Store,
        wanted: impl Fn(u64) -> bool + Sync,
        now: Timestamp,
    ) -> Result<usize, StorageError> {
        let (sums, counted) = stored_sums(store, wanted, now)?;
        let gone = sums
            .iter()
            .map(|(name, sum)| {
                let gone = ActivitySummary {
                    count: 0,
                    last_at: sum.last_at,
                };
                (name.clone(), gone)
            })
            .collect();
        self.adjust(&sums, &gone);
        Ok(counted)
    }

    /// Returns the totals, ordered by activity type.
    pub fn snapshot(&self) -> Vec<(String, ActivitySummary)> {
        let totals = locked(&self.totals);
        totals.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Activity types' summed totals.
type Sums = BTreeMap<String, ActivitySummary>;

/// Sums the totals of the stored users `wanted` picks; returns them and how many users
/// were counted. The records are read in two halves of the id range side by side, each
/// in one pass over storage (a million users: one scan, not a million lookups, and
/// decoding them is most of the work). A record that does not decode is skipped and
/// logged: its user is rebuilt from the journal when it loads.
fn stored_sums(
    store: &Store,
    wanted: impl Fn(u64) -> bool + Sync,
    now: Timestamp,
) -> Result<(Sums, usize), StorageError> {
    let Some((first, last)) = store.user_id_bounds()? else {
        return Ok((Sums::new(), 0));
    };
    let middle = first + (last - first) / 2;
    let wanted = &wanted;
    let (lower, upper) = std::thread::scope(|scope| {
        let upper = scope.spawn(move || sum_records(store, middle + 1..=last, wanted, now));
        let lower = sum_records(store, first..=middle, wanted, now);
        let upper = upper.join().unwrap_or_else(|_| {
            Err(StorageError::Thread(std::io::Error::other(
                "totals scan panicked",
            )))
        });
        (lower, upper)
    });
    let (mut sums, lower_count) = lower?;
    let (upper_sums, upper_count) = upper?;
    for (name, sum) in upper_sums {
        add_to(&mut sums, name, &sum);
    }
    Ok((sums, lower_count + upper_count))
}

fn sum_records(
    store: &Store,
    ids: std::ops::RangeInclusive<u64>,
    wanted: &(impl Fn(u64) -> bool + Sync),
    now: Timestamp,
) -> Result<(Sums, usize), StorageError> {
    let mut sums = Sums::new();
    let mut counted = 0;
    for entry in store.records_in::<UserRecord>(ids, wanted) {
        let record = match entry {
            Ok(record) => record,
            Err(StorageError::Decode(reason)) => {
                warn!(%reason, "a user record does not decode; its activity is not counted");
                continue;
            }
            Err(e) => return Err(e),
        };
        for (name, summary) in activity_summaries(&record, now) {
            add_to(&mut sums, name, &summary);
        }
        counted += 1;
    }
    Ok((sums, counted))
}

/// Adds one summary to `sums` (counts add up, the latest time wins).
fn add_to(sums: &mut Sums, name: String, summary: &ActivitySummary) {
    match sums.get_mut(&name) {
        Some(sum) => {
            sum.count += summary.count;
            sum.last_at = sum.last_at.max(summary.last_at);
        }
        None => {
            sums.insert(name, summary.clone());
        }
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

    #[test]
    fn stored_users_are_counted_in_both_halves_and_taken_away() {
        use crate::storage::UserWrite;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 22).unwrap();
        let now = Timestamp::from_millis(1_000);
        let totals = ActivityTotals::default();
        assert_eq!(totals.add_stored(&store, |_| true, now).unwrap(), 0);
        let viewed = |times: i64| {
            let mut record = UserRecord::default();
            for at in 0..times {
                let event = crate::domain::Event::new("page_viewed", Timestamp::from_millis(at));
                record.state.apply(&event, now, 0);
            }
            record
        };
        let save = |user: u64, record: &UserRecord| {
            let write = Store::user_write(user, record, &UserWrite::default()).unwrap();
            store.apply([&write]).unwrap();
        };
        save(5, &viewed(2));
        assert_eq!(
            totals.add_stored(&store, |_| true, now).unwrap(),
            1,
            "one user"
        );
        assert_eq!(
            totals.snapshot(),
            vec![("page_viewed".to_owned(), summary(2, 1))]
        );
        for user in [6, 900, 1_000_000] {
            save(user, &viewed(3));
        }
        let fresh = ActivityTotals::default();
        assert_eq!(fresh.add_stored(&store, |user| user != 6, now).unwrap(), 3);
        assert_eq!(
            fresh.snapshot(),
            vec![("page_viewed".to_owned(), summary(8, 2))]
        );
        let high = |user: u64| user > 100;
        assert_eq!(fresh.remove_stored(&store, high, now).unwrap(), 2);
        assert_eq!(
            fresh.snapshot(),
            vec![("page_viewed".to_owned(), summary(2, 2))]
        );
    }
}
