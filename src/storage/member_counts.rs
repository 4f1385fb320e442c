//! How many members each segment has, kept beside the membership keys so `count` and
//! `member_count` answer at once instead of scanning a segment's keys (a scan of a
//! million members takes about a tenth of a second, and consoles poll).
//!
//! Counted once at open; then every batch that writes membership keys adjusts the
//! counts by what it actually changed (an insert of a key already there, or a removal
//! of one that is not, changes nothing). Such batches run one at a time (`write`): the
//! committer's and a handoff's would otherwise read presence before the other's write.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::sync::locked;

use super::keys::{self, MEMBER};
use super::StorageError;

/// Members per segment.
#[derive(Debug, Default)]
pub struct MemberCounts {
    counts: Mutex<HashMap<u64, u64>>,
    /// Held by a batch writing membership keys, from reading presence to adjusting.
    writing: Mutex<()>,
}

/// Membership keys a batch writes, in order: `(key, inserted)`.
pub type MemberOps<'a> = Vec<(&'a [u8], bool)>;

impl MemberCounts {
    /// Counts the members of every segment in `tree`.
    pub fn count(tree: &sled::Tree) -> Result<MemberCounts, StorageError> {
        let mut counts = HashMap::new();
        for key in tree.scan_prefix([MEMBER]).keys() {
            *counts.entry(segment_of(&key?)?).or_insert(0) += 1;
        }
        Ok(MemberCounts {
            counts: Mutex::new(counts),
            writing: Mutex::new(()),
        })
    }

    /// Returns the members of `segment`.
    pub fn get(&self, segment: u64) -> u64 {
        locked(&self.counts).get(&segment).copied().unwrap_or(0)
    }

    /// Runs `write`, a batch that writes the membership keys `ops` (in order, with
    /// whether each is inserted), and adjusts the counts by what it changed, given
    /// whether each key is there before (`present`). One such batch at a time.
    pub fn write<T>(
        &self,
        ops: &[(&[u8], bool)],
        present: impl Fn(&[u8]) -> Result<bool, StorageError>,
        write: impl FnOnce() -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let _one_at_a_time = locked(&self.writing);
        let changes = MemberCounts::changes(ops, present)?;
        let written = write()?;
        self.apply(changes);
        Ok(written)
    }

    /// Returns how `ops`, applied in order, change each segment's count, given whether
    /// each key is there before the batch (`present`).
    fn changes(
        ops: &[(&[u8], bool)],
        present: impl Fn(&[u8]) -> Result<bool, StorageError>,
    ) -> Result<HashMap<u64, i64>, StorageError> {
        let mut now_present: HashMap<&[u8], bool> = HashMap::new();
        let mut changes: HashMap<u64, i64> = HashMap::new();
        for (key, inserted) in ops {
            let was = match now_present.get(key) {
                Some(was) => *was,
                None => present(key)?,
            };
            if was != *inserted {
                *changes.entry(segment_of(key)?).or_insert(0) += if *inserted { 1 } else { -1 };
            }
            now_present.insert(key, *inserted);
        }
        Ok(changes)
    }

    /// Applies `changes` (from `changes`) once their batch is written.
    fn apply(&self, changes: HashMap<u64, i64>) {
        let mut counts = locked(&self.counts);
        for (segment, change) in changes {
            let count = counts.entry(segment).or_insert(0);
            *count = count.saturating_add_signed(change);
            if *count == 0 {
                counts.remove(&segment);
            }
        }
    }
}

fn segment_of(key: &[u8]) -> Result<u64, StorageError> {
    keys::u64_at(key, 1).ok_or_else(|| StorageError::Decode("short membership key".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::keys::pair;

    #[test]
    fn only_real_changes_count_in_the_order_written() {
        let a = pair(MEMBER, 1, 10);
        let b = pair(MEMBER, 1, 11);
        let c = pair(MEMBER, 2, 10);
        let present = |key: &[u8]| Ok(key == a.as_slice());
        let ops: MemberOps<'_> = vec![
            (&a, true),  // already there: no change
            (&b, true),  // +1 in segment 1
            (&b, false), // and gone again: -1
            (&c, true),  // +1 in segment 2
            (&a, false), // -1 in segment 1
            (&c, false), // -1 in segment 2
            (&c, true),  // +1 in segment 2
        ];
        let changes = MemberCounts::changes(&ops, present).unwrap();
        assert_eq!(changes.get(&1).copied().unwrap_or(0), -1);
        assert_eq!(changes.get(&2).copied().unwrap_or(0), 1);
        let counts = MemberCounts::default();
        counts.apply(HashMap::from([(1, 1), (2, 0)]));
        counts.apply(changes);
        assert_eq!((counts.get(1), counts.get(2), counts.get(3)), (0, 1, 0));
    }
}
