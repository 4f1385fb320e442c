//! Identities and merges: the identity index, claims of new identities, the records of
//! absorbed users (each redirects to its survivor) and per-user merge logs. A merge is
//! one atomic batch, so a crash leaves the state before or after it, never half.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::domain::Timestamp;

use super::codec::{decode, encode};
use super::identity_cache::Generation;
use super::keys::{self, ABSORBED, MEMBER, MERGE_LOG, OVERLAY, USER};
use super::store::{key_suffix, user_ops, Store, UserWrite};
use super::write_set::WriteSet;
use super::StorageError;

/// A user absorbed by a merge: what the batch removes of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Absorbed {
    /// The absorbed user.
    pub user: u64,
    /// Its pending timer, removed.
    pub due: Option<Timestamp>,
    /// The segments it was in, left.
    pub segments: Vec<u64>,
    /// Its identities, which now resolve to the survivor.
    pub identities: Vec<(String, String)>,
    /// Users it had absorbed earlier: they now redirect to the survivor too.
    pub earlier: Vec<u64>,
}

/// What a lookup of the identity index found.
enum Lookup {
    /// The owner.
    Found(u64),
    /// No owner; the cache's generation before storage was read.
    Absent(Generation),
}

impl Store {
    /// Returns the user that owns identity `(id_type, id)`, if any.
    pub fn user_for_identity(&self, id_type: &str, id: &str) -> Result<Option<u64>, StorageError> {
        match self.lookup_identity(&keys::identity(id_type, id))? {
            Lookup::Found(user) => Ok(Some(user)),
            Lookup::Absent(_) => Ok(None),
        }
    }

    /// Looks `key` up in the identity cache, then in storage (filling the cache).
    fn lookup_identity(&self, key: &[u8]) -> Result<Lookup, StorageError> {
        let seen = match self.identities.get(key) {
            Ok(user) => return Ok(Lookup::Found(user)),
            Err(seen) => seen,
        };
        let Some(value) = self.tree.get(key)? else {
            return Ok(Lookup::Absent(seen));
        };
        let user = key_suffix(&value, 0)?;
        self.identities.fill(key, user, seen);
        Ok(Lookup::Found(user))
    }

    /// Returns the next number of the node's persistent, increasing sequence (from 1).
    pub fn next_sequence(&self) -> Result<u64, StorageError> {
        Ok(self.db.generate_id()? + 1)
    }

    /// Returns the user that owns the identity, creating one with the id `fresh` gives if
    /// none does; the flag says whether it was created. Safe under concurrent calls for
    /// the same identity.
    pub fn resolve_identity(
        &self,
        id_type: &str,
        id: &str,
        fresh: impl FnOnce() -> Result<u64, StorageError>,
    ) -> Result<(u64, bool), StorageError> {
        let key = keys::identity(id_type, id);
        let seen = match self.lookup_identity(&key)? {
            Lookup::Found(user) => return Ok((user, false)),
            Lookup::Absent(seen) => seen,
        };
        let fresh = fresh()?;
        let swapped = self.tree.compare_and_swap(
            &key,
            None as Option<&[u8]>,
            Some(&fresh.to_be_bytes()[..]),
        )?;
        // No write of the index to tell the cache of: the key had no owner to cache.
        let (user, created) = match swapped {
            Ok(()) => (fresh, true),
            Err(conflict) => {
                let winner = conflict
                    .current
                    .ok_or_else(|| StorageError::Decode("identity vanished".into()))?;
                (key_suffix(&winner, 0)?, false)
            }
        };
        self.identities.fill(&key, user, seen);
        Ok((user, created))
    }

    /// Gives identity `(id_type, id)` to `user` if its owner is still `expected` (none, or
    /// an absorbed user whose redirect it is); returns whether `user` owns it now.
    pub fn claim_identity(
        &self,
        id_type: &str,
        id: &str,
        expected: Option<u64>,
        user: u64,
    ) -> Result<bool, StorageError> {
        let key = keys::identity(id_type, id);
        let expected = expected.map(u64::to_be_bytes);
        let swapped = self.tree.compare_and_swap(
            &key,
            expected.as_ref().map(|e| &e[..]),
            Some(&user.to_be_bytes()[..]),
        )?;
        self.identities.forget(&key);
        match swapped {
            Ok(()) => Ok(true),
            Err(conflict) => Ok(conflict
                .current
                .is_some_and(|owner| key_suffix(&owner, 0).ok() == Some(user))),
        }
    }

    /// Gives back an identity `user` owns (it was claimed for a link that was refused);
    /// returns whether nobody owns it now.
    pub fn release_identity(
        &self,
        id_type: &str,
        id: &str,
        user: u64,
    ) -> Result<bool, StorageError> {
        let key = keys::identity(id_type, id);
        let owned = user.to_be_bytes();
        let swapped = self
            .tree
            .compare_and_swap(&key, Some(&owned[..]), None as Option<&[u8]>)?;
        self.identities.forget(&key);
        Ok(swapped.is_ok())
    }

    /// Returns the user that `user` was merged into, if it was absorbed (always the
    /// final survivor of a chain).
    pub fn merged_into(&self, user: u64) -> Result<Option<u64>, StorageError> {
        let value = self.tree.get(keys::with_id(ABSORBED, user))?;
        value.map(|v| key_suffix(&v, 0)).transpose()
    }

    /// Loads a user's merge log.
    pub fn merge_log<T: DeserializeOwned>(&self, user: u64) -> Result<Option<T>, StorageError> {
        self.tree
            .get(keys::with_id(MERGE_LOG, user))?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Returns the writes that save a user's merge log alone (links refused, nothing
    /// merged).
    pub fn merge_log_write<T: Serialize>(user: u64, log: &T) -> Result<WriteSet, StorageError> {
        let mut set = WriteSet::default();
        set.insert(&keys::with_id(MERGE_LOG, user), encode(log)?);
        Ok(set)
    }

    /// Returns the writes of a merge, applied as one atomic batch: the survivor's record,
    /// timer, membership and log; each absorbed user's record, timer, membership and log
    /// removed, its id and every id it had absorbed redirected to the survivor, and its
    /// identities pointed at the survivor.
    pub fn merge_write<R: Serialize, L: Serialize>(
        survivor: u64,
        record: &R,
        write: &UserWrite,
        absorbed: &[Absorbed],
        log: &L,
    ) -> Result<WriteSet, StorageError> {
        let mut batch = WriteSet::default();
        user_ops(&mut batch, survivor, record, write)?;
        batch.insert(&keys::with_id(MERGE_LOG, survivor), encode(log)?);
        for gone in absorbed {
            absorbed_ops(&mut batch, survivor, gone);
        }
        Ok(batch)
    }
}

/// Adds to `batch` the removal of an absorbed user (record, overlay, log, timer,
/// membership), its identities pointed at the survivor, and its id and the ids it had
/// absorbed redirected to the survivor.
pub(super) fn absorbed_ops(batch: &mut WriteSet, survivor: u64, gone: &Absorbed) {
    let target = survivor.to_be_bytes();
    batch.remove(&keys::with_id(USER, gone.user));
    batch.remove(&keys::with_id(OVERLAY, gone.user));
    batch.remove(&keys::with_id(MERGE_LOG, gone.user));
    if let Some(due) = gone.due {
        batch.remove(&keys::timer(due, gone.user));
    }
    for segment in &gone.segments {
        batch.remove(&keys::pair(MEMBER, *segment, gone.user));
    }
    for (id_type, id) in &gone.identities {
        batch.insert(&keys::identity(id_type, id), target.to_vec());
    }
    for user in std::iter::once(&gone.user).chain(&gone.earlier) {
        batch.insert(&keys::with_id(ABSORBED, *user), target.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::tests::store;
    use super::*;

    #[test]
    fn identities_resolve_to_one_user_each() {
        let (_dir, store) = store();
        let (a, created) = store
            .resolve_identity("cookie", "c1", || store.next_sequence())
            .unwrap();
        assert!(created);
        assert_eq!(
            store
                .resolve_identity("cookie", "c1", || store.next_sequence())
                .unwrap(),
            (a, false)
        );
        let (b, _) = store
            .resolve_identity("email", "c1", || store.next_sequence())
            .unwrap();
        assert_ne!(a, b);
        assert_eq!(store.user_for_identity("cookie", "c1").unwrap(), Some(a));
        assert_eq!(store.user_for_identity("cookie", "zz").unwrap(), None);
    }

    #[test]
    fn a_merge_moves_everything_at_once() {
        let (_dir, store) = store();
        let t = Timestamp::from_millis;
        let (a, _) = store
            .resolve_identity("cookie", "a", || store.next_sequence())
            .unwrap();
        let (b, _) = store
            .resolve_identity("cookie", "b", || store.next_sequence())
            .unwrap();
        // Cached now: the merge below must still move it.
        assert_eq!(store.user_for_identity("cookie", "b").unwrap(), Some(b));
        let joined = UserWrite {
            new_due: Some(t(5)),
            joined: vec![3],
            ..UserWrite::default()
        };
        store
            .apply([
                &Store::user_write(b, &"b", &joined).unwrap(),
                &Store::merge_log_write(b, &"log b").unwrap(),
            ])
            .unwrap();
        assert_eq!(store.member_count(3), 1);
        let gone = Absorbed {
            user: b,
            due: Some(t(5)),
            segments: vec![3],
            identities: vec![("cookie".into(), "b".into())],
            earlier: vec![99],
        };
        let merge =
            Store::merge_write(a, &"a+b", &UserWrite::default(), &[gone], &"log a").unwrap();
        store.apply([&merge]).unwrap();
        assert_eq!(store.user_for_identity("cookie", "b").unwrap(), Some(a));
        assert_eq!(store.merged_into(b).unwrap(), Some(a));
        assert_eq!(store.merged_into(99).unwrap(), Some(a));
        assert_eq!(store.merged_into(a).unwrap(), None);
        assert_eq!(store.load_user::<String>(b).unwrap(), None);
        assert_eq!(store.merge_log::<String>(b).unwrap(), None);
        assert_eq!(
            store.merge_log::<String>(a).unwrap().as_deref(),
            Some("log a")
        );
        assert_eq!(store.due_timers(t(10)).unwrap(), vec![]);
        assert_eq!(store.members(3, None, 10), Vec::<u64>::new());
        assert_eq!(store.member_count(3), 0);
    }

    #[test]
    fn a_claim_takes_only_an_unowned_identity() {
        let (_dir, store) = store();
        assert!(store.claim_identity("email", "e", None, 4).unwrap());
        assert!(store.claim_identity("email", "e", None, 4).unwrap());
        assert!(!store.claim_identity("email", "e", None, 5).unwrap());
        assert_eq!(store.user_for_identity("email", "e").unwrap(), Some(4));
        assert!(store.claim_identity("email", "e", Some(4), 5).unwrap());
        assert_eq!(store.user_for_identity("email", "e").unwrap(), Some(5));
        assert!(store.release_identity("email", "e", 5).unwrap());
        assert_eq!(store.user_for_identity("email", "e").unwrap(), None);
    }
}
