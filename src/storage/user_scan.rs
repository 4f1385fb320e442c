//! Users read in key order, a batch at a time, without any lock (a backfill), and how a
//! reader tells whether a user's record may have changed since it was read.
//!
//! Writes of records and overlays are numbered, one at a time. Before one is applied,
//! it marks the ids it writes (by blocks of 64 ids) with its number; a read notes the
//! number of the last write that had finished before it began. A user whose block has
//! no later number was read as storage still holds it.

use std::ops::{Bound, RangeInclusive};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::de::DeserializeOwned;

use super::codec::decode;
use super::keys::{self, OVERLAY, USER};
use super::store::{key_suffix, Store};
use super::StorageError;
use crate::sync::locked;

/// Blocks of ids whose writes are told apart (128 KiB of counters).
const BLOCKS: usize = 16_384;

/// The block of a user id: 64 neighbouring ids share one, so that a scan reading ids in
/// order seldom meets a block written by another part of the same scan.
fn block_of(user: u64) -> usize {
    (user >> 6) as usize % BLOCKS
}

/// Which users a write of records touches.
pub(super) enum Written {
    /// None: it writes no record or overlay.
    Nobody,
    /// These users' records or overlays.
    Users(Vec<u64>),
    /// Any user (a handoff's import or removal).
    Anyone,
}

/// Numbers the writes of records and overlays, and marks the ids each writes.
#[derive(Debug)]
pub(super) struct RecordWrites {
    /// Held while a write of records is applied: they are numbered one at a time.
    order: Mutex<()>,
    /// The number of the last write that began.
    started: AtomicU64,
    /// The number of the last write that finished.
    finished: AtomicU64,
    /// For each block of ids, the number of the last write that touched it.
    blocks: Box<[AtomicU64]>,
}

impl Default for RecordWrites {
    fn default() -> Self {
        RecordWrites {
            order: Mutex::new(()),
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            blocks: (0..BLOCKS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// A write of records being applied; it counts as finished when dropped.
pub(super) struct RecordWriting<'a> {
    writes: &'a RecordWrites,
    number: u64,
    _one_at_a_time: MutexGuard<'a, ()>,
}

impl Drop for RecordWriting<'_> {
    fn drop(&mut self) {
        self.writes.finished.store(self.number, Ordering::SeqCst);
    }
}

impl RecordWrites {
    /// Numbers a write and marks the ids it touches, before it is applied; `None` when
    /// it touches no record.
    pub(super) fn begin(&self, written: &Written) -> Option<RecordWriting<'_>> {
        if matches!(written, Written::Nobody) {
            return None;
        }
        let one_at_a_time = locked(&self.order);
        let number = self.started.load(Ordering::SeqCst) + 1;
        self.started.store(number, Ordering::SeqCst);
        match written {
            Written::Users(users) => {
                for user in users {
                    self.blocks[block_of(*user)].store(number, Ordering::SeqCst);
                }
            }
            Written::Anyone => {
                for block in self.blocks.iter() {
                    block.store(number, Ordering::SeqCst);
                }
            }
            Written::Nobody => {}
        }
        Some(RecordWriting {
            writes: self,
            number,
            _one_at_a_time: one_at_a_time,
        })
    }
}

/// The number of the last write of records that had finished when a read began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadMark(u64);

/// One user as storage holds it: its encoded record and overlay.
#[derive(Debug)]
pub struct StoredUser {
    /// The user's id.
    pub id: u64,
    record: sled::IVec,
    overlay: Option<sled::IVec>,
}

impl StoredUser {
    /// Decodes the record.
    pub fn record<T: DeserializeOwned>(&self) -> Result<T, StorageError> {
        decode(&self.record)
    }

    /// Decodes the overlay, if the user has one.
    pub fn overlay<T: DeserializeOwned>(&self) -> Result<Option<T>, StorageError> {
        self.overlay.as_deref().map(decode).transpose()
    }
}

impl Store {
    /// Reads up to `limit` users with a record and an id in `ids`, ascending, each with
    /// its overlay; the mark tells `unchanged_since` when the read began.
    pub fn read_users(
        &self,
        ids: RangeInclusive<u64>,
        limit: usize,
    ) -> Result<(ReadMark, Vec<StoredUser>), StorageError> {
        let mark = ReadMark(self.record_writes.finished.load(Ordering::SeqCst));
        let mut users = Vec::with_capacity(limit.min(4096));
        let range = keys::with_id(USER, *ids.start())..=keys::with_id(USER, *ids.end());
        for entry in self.tree.range(range).take(limit) {
            let (key, record) = entry?;
            users.push(StoredUser {
                id: key_suffix(&key, 1)?,
                record,
                overlay: None,
            });
        }
        if let (Some(first), Some(last)) = (users.first(), users.last()) {
            let overlays = (
                Bound::Included(keys::with_id(OVERLAY, first.id)),
                Bound::Included(keys::with_id(OVERLAY, last.id)),
            );
            let mut at = 0;
            for entry in self.tree.range(overlays) {
                let (key, overlay) = entry?;
                let id = key_suffix(&key, 1)?;
                at += users[at..].partition_point(|user| user.id < id);
                if let Some(user) = users.get_mut(at).filter(|user| user.id == id) {
                    user.overlay = Some(overlay);
                }
            }
        }
        Ok((mark, users))
    }

    /// Returns whether `user`'s record and overlay were neither written since the read
    /// that took `mark` began nor being written then: what that read returned of the
    /// user is what storage holds. (False now and then for a neighbouring id's write.)
    pub fn unchanged_since(&self, user: u64, mark: ReadMark) -> bool {
        self.record_writes.blocks[block_of(user)].load(Ordering::SeqCst) <= mark.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::store::tests::store;
    use crate::storage::UserWrite;

    fn save(store: &Store, user: u64, record: &str) {
        let write = Store::user_write(user, &record, &UserWrite::default()).unwrap();
        store.apply([&write]).unwrap();
    }

    fn ids(users: &[StoredUser]) -> Vec<u64> {
        users.iter().map(|user| user.id).collect()
    }

    #[test]
    fn reads_users_in_order_a_batch_at_a_time_with_their_overlays() {
        let (_dir, store) = store();
        for user in [3, 1, 7, 5] {
            save(&store, user, &format!("record {user}"));
        }
        let overlay = Store::overlay_write(5, &"timer", &UserWrite::default()).unwrap();
        store.apply([&overlay]).unwrap();

        let (_, first) = store.read_users(0..=u64::MAX, 2).unwrap();
        assert_eq!(ids(&first), [1, 3]);
        let (_, rest) = store.read_users(4..=u64::MAX, 10).unwrap();
        assert_eq!(ids(&rest), [5, 7]);
        assert_eq!(rest[0].record::<String>().unwrap(), "record 5");
        assert_eq!(
            rest[0].overlay::<String>().unwrap().as_deref(),
            Some("timer")
        );
        assert_eq!(rest[1].overlay::<String>().unwrap(), None);
        let (_, bounded) = store.read_users(2..=5, 10).unwrap();
        assert_eq!(ids(&bounded), [3, 5]);
        let (_, none) = store.read_users(8..=u64::MAX, 10).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn a_mark_tells_whether_a_user_was_written_since() {
        let (_dir, store) = store();
        save(&store, 1, "first");
        let (mark, _) = store.read_users(0..=u64::MAX, 10).unwrap();
        assert!(store.unchanged_since(1, mark));

        // Membership, timers and the journal are not records.
        let membership = UserWrite {
            joined: vec![4],
            ..UserWrite::default()
        };
        store.apply([&Store::index_write(1, &membership)]).unwrap();
        assert!(store.unchanged_since(1, mark));

        save(&store, 1, "again");
        assert!(!store.unchanged_since(1, mark));
        assert!(
            store.unchanged_since(1_000, mark),
            "a user far from the one written"
        );
        let (later, _) = store.read_users(0..=u64::MAX, 10).unwrap();
        assert!(store.unchanged_since(1, later));
        let overlay = Store::overlay_write(1, &"timer", &UserWrite::default()).unwrap();
        store.apply([&overlay]).unwrap();
        assert!(!store.unchanged_since(1, later));
    }

    #[test]
    fn a_write_in_progress_counts_as_a_change() {
        let (_dir, store) = store();
        let writing = store.record_writes.begin(&Written::Users(vec![5]));
        let (mark, _) = store.read_users(0..=u64::MAX, 10).unwrap();
        drop(writing);
        assert!(!store.unchanged_since(5, mark));
        assert!(store.unchanged_since(500, mark));
        let (after, _) = store.read_users(0..=u64::MAX, 10).unwrap();
        assert!(store.unchanged_since(5, after));
    }

    #[test]
    fn a_handoff_write_changes_everyone() {
        let (_dir, store) = store();
        let (mark, _) = store.read_users(0..=u64::MAX, 10).unwrap();
        drop(store.record_writes.begin(&Written::Anyone));
        assert!(!store.unchanged_since(1, mark));
        assert!(!store.unchanged_since(u64::MAX, mark));
    }
}
