//! How many members each segment has, kept beside the membership chunks so `count` and
//! `member_count` answer at once instead of reading a segment's chunks (consoles poll).
//!
//! Counted once at open; then every batch that changes membership adjusts the counts by
//! what it actually changed (adding a member already there, or removing one that is
//! not, changes nothing). Such batches run one at a time (`write`): each reads the chunks
//! it changes before writing them, and the committer's and a handoff's would otherwise
//! overwrite each other's bits.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::sync::locked;

use super::keys::MEMBER_CHUNK;
use super::member_chunks::{self, ChunkEdits, MemberOp};
use super::StorageError;

/// Members per segment.
#[derive(Debug, Default)]
pub struct MemberCounts {
    counts: Mutex<HashMap<u64, u64>>,
    /// Held by a batch changing membership, from reading its chunks to adjusting.
    writing: Mutex<()>,
}

impl MemberCounts {
    /// Counts the members of every segment in `tree`.
    pub fn count(tree: &sled::Tree) -> Result<MemberCounts, StorageError> {
        let mut counts = HashMap::new();
        for entry in tree.scan_prefix([MEMBER_CHUNK]) {
            let (key, chunk) = entry?;
            *counts
                .entry(member_chunks::segment_of_chunk(&key)?)
                .or_insert(0) += member_chunks::count(&chunk);
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

    /// Applies `batch` to `tree` together with the membership changes `ops` (in order),
    /// and adjusts the counts by what they changed. One such batch at a time.
    pub fn write(
        &self,
        tree: &sled::Tree,
        mut batch: sled::Batch,
        ops: &[MemberOp],
    ) -> Result<(), StorageError> {
        let _one_at_a_time = locked(&self.writing);
        let mut edits = ChunkEdits::default();
        for op in ops {
            edits.apply(tree, *op)?;
        }
        let changes = edits.write_to(&mut batch);
        tree.apply_batch(batch)?;
        self.apply(changes);
        Ok(())
    }

    /// Applies `changes` (from `ChunkEdits`) once their batch is written.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_written_batches_and_a_recount_agrees() {
        let dir = tempfile::tempdir().unwrap();
        let tree = sled::open(dir.path()).unwrap().open_tree("t").unwrap();
        let counts = MemberCounts::count(&tree).unwrap();
        let ops = [(1, 10, true), (1, 2000, true), (2, 10, true), (1, 10, true)];
        counts.write(&tree, sled::Batch::default(), &ops).unwrap();
        counts
            .write(
                &tree,
                sled::Batch::default(),
                &[(2, 10, false), (2, 11, false)],
            )
            .unwrap();
        assert_eq!((counts.get(1), counts.get(2), counts.get(3)), (2, 0, 0));
        let recount = MemberCounts::count(&tree).unwrap();
        assert_eq!((recount.get(1), recount.get(2)), (2, 0));
    }
}
