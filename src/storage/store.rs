//! The typed facade: identities, user records, timers, memberships, segments, metadata.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::domain::Timestamp;

use super::codec::{decode, encode};
use super::identity_cache::IdentityCache;
use super::keys::{self, IDENTITY, MEMBER, OVERLAY, SEGMENT, TIMER, USER};
use super::member_chunks::{self, MemberOp};
use super::membership::{Membership, SledWrites};
use super::user_scan::{RecordWrites, Written};
use super::write_set::WriteSet;
use super::StorageError;

/// The node's persistent store.
#[derive(Clone)]
pub struct Store {
    pub(super) db: sled::Db,
    pub(super) tree: sled::Tree,
    /// The identity index's hot entries; told of every write of the index.
    pub(super) identities: Arc<IdentityCache>,
    /// Every segment's members; told of every membership change.
    pub(super) members: Arc<Membership>,
    /// Writes of records and overlays, counted for readers that read without a lock.
    pub(super) record_writes: Arc<RecordWrites>,
    /// The data directory (sled's, and the journal's beside it).
    pub(super) dir: Arc<PathBuf>,
}

/// Identity index entries cached per generation (two generations at most, ~80 bytes
/// each): the identities of ~65k recently active users resolve without reading sled.
const IDENTITY_CACHE_ENTRIES: usize = 65_536;

/// What changes besides the record when a user is saved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserWrite {
    /// The timer to remove, if the user had one.
    pub old_due: Option<Timestamp>,
    /// The timer to set, if the user needs one.
    pub new_due: Option<Timestamp>,
    /// Segments the user entered.
    pub joined: Vec<u64>,
    /// Segments the user left.
    pub left: Vec<u64>,
}

impl UserWrite {
    /// Describes a step that moved the timer from `old_due` to `new_due` and the
    /// membership from `before` to `after` (each sorted ascending).
    pub fn between(
        old_due: Option<Timestamp>,
        new_due: Option<Timestamp>,
        before: &[u64],
        after: &[u64],
    ) -> UserWrite {
        let missing = |from: &[u64], ids: &[u64]| -> Vec<u64> {
            ids.iter()
                .filter(|id| from.binary_search(id).is_err())
                .copied()
                .collect()
        };
        UserWrite {
            old_due,
            new_due,
            joined: missing(before, after),
            left: missing(after, before),
        }
    }
}

pub(super) fn key_suffix(key: &[u8], offset: usize) -> Result<u64, StorageError> {
    keys::u64_at(key, offset).ok_or_else(|| StorageError::Decode("short key".into()))
}

/// Adds a user's record, timer move and membership changes to `set`. The record holds
/// its timer, so an overlay of it is dropped.
///
/// Applied op by op (`Store::apply_each`), a crash can keep some of these writes and lose
/// others (membership chunks go after every other write of their group): replay saves
/// every user with a journal part after the last checkpoint whole, with its timer keys
/// and membership set right. The overlay goes before the record, so that a kept overlay
/// never overrides a record written after it.
pub(super) fn user_ops<T: Serialize>(
    set: &mut WriteSet,
    user: u64,
    record: &T,
    write: &UserWrite,
) -> Result<(), StorageError> {
    index_ops(set, user, write);
    set.remove(&keys::with_id(OVERLAY, user));
    set.insert(&keys::with_id(USER, user), encode(record)?);
    Ok(())
}

/// Adds a user's timer move and membership changes to `set`.
fn index_ops(set: &mut WriteSet, user: u64, write: &UserWrite) {
    if write.old_due != write.new_due {
        if let Some(old) = write.old_due {
            set.remove(&keys::timer(old, user));
        }
        if let Some(new) = write.new_due {
            set.insert(&keys::timer(new, user), Vec::new());
        }
    }
    for segment in &write.joined {
        set.insert(&keys::pair(MEMBER, *segment, user), Vec::new());
    }
    for segment in &write.left {
        set.remove(&keys::pair(MEMBER, *segment, user));
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`, caching up to `cache_bytes` of pages.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store, StorageError> {
        // No flush on sled's own timer: writes reach its files when we flush (the
        // committer's groups and checkpoints, and every other writer's explicit
        // flush), and the journal's files cover what is acknowledged in between.
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(None)
            .open()?;
        let tree = db.open_tree("state")?;
        let converted = member_chunks::convert_per_user_keys(&tree)?;
        if converted > 0 {
            tracing::info!(
                keys = converted,
                "per-user membership keys stored as chunks"
            );
            db.flush()?;
        }
        let members = Arc::new(Membership::load(&tree)?);
        Ok(Store {
            db,
            tree,
            identities: Arc::new(IdentityCache::new(IDENTITY_CACHE_ENTRIES)),
            members,
            record_writes: Arc::default(),
            dir: Arc::new(dir.to_path_buf()),
        })
    }

    /// Makes every write so far durable; returns the bytes flushed.
    pub async fn flush(&self) -> Result<usize, StorageError> {
        Ok(self.db.flush_async().await?)
    }

    /// Makes every write so far durable, blocking the calling thread (the committer's
    /// own); returns the bytes flushed.
    pub fn flush_blocking(&self) -> Result<usize, StorageError> {
        Ok(self.db.flush()?)
    }

    /// Loads a user record.
    pub fn load_user<T: DeserializeOwned>(&self, user: u64) -> Result<Option<T>, StorageError> {
        self.tree
            .get(keys::with_id(USER, user))?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Loads a user's overlay: its timer, when newer than its record.
    pub fn load_overlay<T: DeserializeOwned>(&self, user: u64) -> Result<Option<T>, StorageError> {
        self.tree
            .get(keys::with_id(OVERLAY, user))?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Returns whether a record of `user` is stored (without reading it).
    pub fn has_user(&self, user: u64) -> Result<bool, StorageError> {
        Ok(self.tree.contains_key(keys::with_id(USER, user))?)
    }

    /// Returns every user id, ascending.
    pub fn user_ids(&self) -> impl Iterator<Item = Result<u64, StorageError>> {
        self.tree
            .scan_prefix([USER])
            .keys()
            .map(|key| key_suffix(&key?, 1))
    }

    /// Returns whether no user exists: no record, and no journal entry (a new user's
    /// first events may be only there until its first snapshot).
    pub fn has_no_users(&self) -> Result<bool, StorageError> {
        Ok(self.tree.scan_prefix([USER]).next().transpose()?.is_none()
            && self.journal_is_empty()?)
    }

    /// Returns the writes that save a user record with its timer and membership changes.
    pub fn user_write<T: Serialize>(
        user: u64,
        record: &T,
        write: &UserWrite,
    ) -> Result<WriteSet, StorageError> {
        let mut set = WriteSet::default();
        user_ops(&mut set, user, record, write)?;
        Ok(set)
    }

    /// Returns the writes that move a user's timer and membership, without its record.
    pub fn index_write(user: u64, write: &UserWrite) -> WriteSet {
        let mut set = WriteSet::default();
        index_ops(&mut set, user, write);
        set
    }

    /// Returns the writes that move a user's timer and membership and store the timer as
    /// its `overlay`, leaving its record as it is (a step that changed nothing else).
    pub fn overlay_write<T: Serialize>(
        user: u64,
        overlay: &T,
        write: &UserWrite,
    ) -> Result<WriteSet, StorageError> {
        let mut set = WriteSet::default();
        set.insert(&keys::with_id(OVERLAY, user), encode(overlay)?);
        index_ops(&mut set, user, write);
        Ok(set)
    }

    /// Returns whether `user` is stored as a member of `segment`.
    pub fn is_member(&self, segment: u64, user: u64) -> bool {
        self.members.contains(segment, user)
    }

    /// Returns the segments `user` is stored as a member of, ascending.
    pub fn segments_of(&self, user: u64) -> Vec<u64> {
        self.members.segments_of(user)
    }

    /// Applies write sets in order, as one atomic batch.
    pub fn apply<'a>(
        &self,
        sets: impl IntoIterator<Item = &'a WriteSet>,
    ) -> Result<(), StorageError> {
        self.apply_sets(sets, true)
    }

    /// Applies write sets in order, op by op: cheaper than a batch, and after a crash
    /// sled holds a prefix of them. For writes the journal covers until the next flush.
    pub fn apply_each<'a>(
        &self,
        sets: impl IntoIterator<Item = &'a WriteSet>,
    ) -> Result<(), StorageError> {
        self.apply_sets(sets, false)
    }

    fn apply_sets<'a>(
        &self,
        sets: impl IntoIterator<Item = &'a WriteSet>,
        together: bool,
    ) -> Result<(), StorageError> {
        let mut plain = Vec::new();
        let mut identities = Vec::new();
        let mut members: Vec<MemberOp> = Vec::new();
        let mut records = Vec::new();
        for set in sets {
            for (key, value) in set.ops() {
                if let Some((segment, user)) = member_chunks::member_of_key(key) {
                    members.push((segment, user, value.is_some()));
                    continue;
                }
                match key.first() {
                    Some(&IDENTITY) => identities.push(key),
                    Some(&USER | &OVERLAY) => records.push(keys::u64_at(key, 1)),
                    _ => {}
                }
                plain.push((key, value));
            }
        }
        let written = if records.is_empty() {
            Written::Nobody
        } else {
            let users: Option<Vec<u64>> = records.into_iter().collect();
            users.map_or(Written::Anyone, Written::Users)
        };
        let writes = if together {
            let mut batch = sled::Batch::default();
            for (key, value) in plain {
                match value {
                    Some(value) => batch.insert(key, value),
                    None => batch.remove(key),
                }
            }
            SledWrites::Batch(batch)
        } else {
            SledWrites::EachOp(plain)
        };
        self.apply_with_members(writes, &members, &written)?;
        for key in identities {
            self.identities.forget(key);
        }
        Ok(())
    }

    /// Applies `batch` together with the membership changes `members` (in order), and
    /// adjusts the member counts by what they changed. `written` says whose records or
    /// overlays the batch writes (see `unchanged_since`).
    pub(super) fn apply_with_members(
        &self,
        writes: SledWrites<'_>,
        members: &[MemberOp],
        written: &Written,
    ) -> Result<(), StorageError> {
        let _numbered = self.record_writes.begin(written);
        self.members.write(&self.tree, writes, members)
    }

    /// Returns the timers due at or before `until`, earliest first.
    pub fn due_timers(&self, until: Timestamp) -> Result<Vec<(Timestamp, u64)>, StorageError> {
        let end = keys::timer(until, u64::MAX);
        self.tree
            .range(&[TIMER][..]..=&end[..])
            .keys()
            .map(|key| {
                let key = key?;
                Ok((keys::time_of(key_suffix(&key, 1)?), key_suffix(&key, 9)?))
            })
            .collect()
    }

    /// Returns the dues of `user`'s timer keys (scans every timer: for repairs only).
    pub fn timer_dues_of(&self, user: u64) -> Result<Vec<Timestamp>, StorageError> {
        let mut dues = self.timer_dues_of_users(&HashSet::from([user]))?;
        Ok(dues.remove(&user).unwrap_or_default())
    }

    /// Returns the dues of the timer keys of each of `users` that has any, in one scan of
    /// every timer (for repairs only).
    pub fn timer_dues_of_users(
        &self,
        users: &HashSet<u64>,
    ) -> Result<HashMap<u64, Vec<Timestamp>>, StorageError> {
        let mut dues: HashMap<u64, Vec<Timestamp>> = HashMap::new();
        for key in self.tree.scan_prefix([TIMER]).keys() {
            let key = key?;
            let user = key_suffix(&key, 9)?;
            if users.contains(&user) {
                dues.entry(user)
                    .or_default()
                    .push(keys::time_of(key_suffix(&key, 1)?));
            }
        }
        Ok(dues)
    }

    /// Returns the writes that leave `user` exactly one timer key, at `due` (none when
    /// `due` is none), given the dues of the keys it has (`found`).
    pub fn timer_repair(user: u64, found: &[Timestamp], due: Option<Timestamp>) -> WriteSet {
        let mut set = WriteSet::default();
        for stale in found.iter().filter(|found| Some(**found) != due) {
            set.remove(&keys::timer(*stale, user));
        }
        if let Some(due) = due.filter(|due| !found.contains(due)) {
            set.insert(&keys::timer(due, user), Vec::new());
        }
        set
    }

    /// Returns the earliest pending timer.
    pub fn first_timer(&self) -> Result<Option<Timestamp>, StorageError> {
        let Some(key) = self.tree.scan_prefix([TIMER]).keys().next().transpose()? else {
            return Ok(None);
        };
        Ok(Some(keys::time_of(key_suffix(&key, 1)?)))
    }

    /// Returns up to `limit` members of `segment` with ids above `after`, ascending.
    pub fn members(&self, segment: u64, after: Option<u64>, limit: usize) -> Vec<u64> {
        let first = match after {
            Some(u64::MAX) => return Vec::new(),
            Some(last) => last + 1,
            None => 0,
        };
        self.members.members(segment, first, limit)
    }

    /// Returns how many users are in `segment`.
    pub fn member_count(&self, segment: u64) -> u64 {
        self.members.count(segment)
    }

    /// Saves a segment definition.
    pub fn save_segment<T: Serialize>(&self, id: u64, segment: &T) -> Result<(), StorageError> {
        self.tree
            .insert(keys::with_id(SEGMENT, id), encode(segment)?)?;
        Ok(())
    }

    /// Deletes a segment definition.
    pub fn delete_segment(&self, id: u64) -> Result<(), StorageError> {
        self.tree.remove(keys::with_id(SEGMENT, id))?;
        Ok(())
    }

    /// Loads every segment definition, ascending by id.
    pub fn segments<T: DeserializeOwned>(&self) -> Result<Vec<(u64, T)>, StorageError> {
        self.tree
            .scan_prefix([SEGMENT])
            .map(|entry| {
                let (key, value) = entry?;
                Ok((key_suffix(&key, 1)?, decode(&value)?))
            })
            .collect()
    }

    /// Returns a fresh segment id (ids are never reused).
    pub fn next_segment_id(&self) -> Result<u64, StorageError> {
        let value = self
            .tree
            .update_and_fetch(keys::meta("next_segment_id"), |old| {
                let current = old.and_then(|v| keys::u64_at(v, 0)).unwrap_or(0);
                Some((current + 1).to_be_bytes().to_vec())
            })?;
        value
            .map(|v| key_suffix(&v, 0))
            .transpose()?
            .ok_or_else(|| StorageError::Decode("segment counter missing".into()))
    }

    /// Reads a metadata value.
    pub fn meta<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StorageError> {
        self.tree
            .get(keys::meta(name))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Writes a metadata value.
    pub fn set_meta<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StorageError> {
        self.tree.insert(keys::meta(name), encode(value)?)?;
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 24).unwrap();
        (dir, store)
    }

    /// Opens the store in `dir` again once the previous handle let go of it: sled's I/O
    /// pool threads may hold the database's file lock for a moment after the last
    /// handle is dropped.
    fn reopen(dir: &Path) -> Store {
        for _ in 0..500 {
            match Store::open(dir, 1 << 24) {
                Err(StorageError::Sled(sled::Error::Io(e)))
                    if e.to_string().contains("could not acquire lock") =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                opened => return opened.unwrap(),
            }
        }
        panic!("the data dir stayed locked for 5 s")
    }

    #[test]
    fn saving_a_user_moves_its_timer_and_membership_atomically() {
        let (_dir, store) = store();
        let t = Timestamp::from_millis;
        let first = UserWrite {
            old_due: None,
            new_due: Some(t(10)),
            joined: vec![1, 2],
            left: vec![],
        };
        store
            .apply([&Store::user_write(7, &"v1", &first).unwrap()])
            .unwrap();
        let second = UserWrite {
            old_due: Some(t(10)),
            new_due: Some(t(20)),
            joined: vec![],
            left: vec![1],
        };
        store
            .apply([&Store::user_write(7, &"v2", &second).unwrap()])
            .unwrap();
        assert_eq!(store.load_user::<String>(7).unwrap().as_deref(), Some("v2"));
        assert_eq!(store.due_timers(t(15)).unwrap(), vec![]);
        assert_eq!(store.due_timers(t(20)).unwrap(), vec![(t(20), 7)]);
        assert_eq!(store.members(1, None, 10), Vec::<u64>::new());
        assert_eq!(store.members(2, None, 10), vec![7]);
        assert_eq!(
            store.user_ids().collect::<Result<Vec<_>, _>>().unwrap(),
            vec![7]
        );
    }

    #[test]
    fn members_page_in_ascending_order() {
        let (_dir, store) = store();
        for user in [5, 1, 9, 3] {
            let write = UserWrite {
                joined: vec![4],
                ..UserWrite::default()
            };
            store
                .apply([&Store::user_write(user, &(), &write).unwrap()])
                .unwrap();
        }
        assert_eq!(store.members(4, None, 2), vec![1, 3]);
        assert_eq!(store.members(4, Some(3), 2), vec![5, 9]);
        assert_eq!(store.members(4, Some(9), 2), Vec::<u64>::new());
        assert_eq!(store.member_count(4), 4);
    }

    #[test]
    fn members_page_across_chunks() {
        let (_dir, store) = store();
        let users: Vec<u64> = (0..3000).map(|i| i * 7).collect();
        let sets: Vec<WriteSet> = users
            .iter()
            .map(|user| {
                let write = UserWrite {
                    joined: vec![2],
                    ..UserWrite::default()
                };
                Store::index_write(*user, &write)
            })
            .collect();
        store.apply(&sets).unwrap();
        let mut listed = Vec::new();
        let mut after = None;
        loop {
            let page = store.members(2, after, 500);
            let Some(last) = page.last().copied() else {
                break;
            };
            listed.extend(page);
            after = Some(last);
        }
        assert_eq!(listed, users);
        assert_eq!(store.member_count(2), 3000);
        assert!(store.is_member(2, 7 * 2999) && !store.is_member(2, 8));
        assert_eq!(store.members(3, None, 10), Vec::<u64>::new());
    }

    #[test]
    fn survives_a_reopen_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 1 << 24).unwrap();
            store
                .save_segment(store.next_segment_id().unwrap(), &"seg")
                .unwrap();
            store.set_meta("dev_clock", &42i64).unwrap();
            let joined = UserWrite {
                joined: vec![1],
                ..UserWrite::default()
            };
            for user in [7, 8] {
                store
                    .apply([&Store::user_write(user, &"u", &joined).unwrap()])
                    .unwrap();
            }
            // Written again: still one member each.
            store
                .apply([&Store::user_write(8, &"u", &joined).unwrap()])
                .unwrap();
            assert_eq!(store.member_count(1), 2);
            store.flush_blocking().unwrap();
        }
        let store = reopen(dir.path());
        assert_eq!(
            store.segments::<String>().unwrap(),
            vec![(1, "seg".to_owned())]
        );
        assert_eq!(store.meta::<i64>("dev_clock").unwrap(), Some(42));
        assert_eq!(store.next_segment_id().unwrap(), 2);
        assert_eq!(store.member_count(1), 2, "counted again at open");
    }
}
