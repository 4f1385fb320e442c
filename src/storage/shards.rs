//! Moving users between nodes (cluster handoff): what each key of the tree is about,
//! and export, import and removal of the keys a filter picks by what they are about.
//!
//! Which shard a user or identity is in is the cluster's business: this module only
//! reads the key layout (`keys.rs`) and shows each key's owner to a filter.

use std::ops::Bound;

use serde::de::DeserializeOwned;

use super::codec::decode;
use super::keys::{
    self, ABSORBED, IDENTITY, MEMBER, MEMBER_CHUNK, MERGE_LOG, OUTBOX, OVERLAY, TIMER, USER,
};
use super::member_chunks::{self, MemberOp};
use super::membership::SledWrites;
use super::store::{key_suffix, Store};
use super::user_scan::Written;
use super::StorageError;

/// What a key is about, for placing it on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOwner<'a> {
    /// A user: its record (`u`) and overlay (`n`), merge log (`l`), timer (`t`), segment
    /// membership (`m`), or, when it was absorbed, its redirect (`a`) and, while a
    /// survivor on another node takes it in, its outbox entry (`o`).
    User(u64),
    /// An identity's index entry (`i`): the bytes `id_type \0 id`.
    Identity(&'a [u8]),
    /// A membership chunk (`b`): bits of up to 1,024 users. Export and removal take it
    /// apart, each user's bit going as that user's own membership key (`m`).
    Members,
    /// The node's own: segment definitions and metadata. Never moved.
    Node,
}

/// Returns what `key` is about.
pub fn key_owner(key: &[u8]) -> KeyOwner<'_> {
    let user_at = |offset| keys::u64_at(key, offset).map_or(KeyOwner::Node, KeyOwner::User);
    match key.first() {
        Some(&(USER | OVERLAY | MERGE_LOG | ABSORBED | OUTBOX)) => user_at(1),
        Some(&(TIMER | MEMBER)) => user_at(9),
        Some(&IDENTITY) => KeyOwner::Identity(&key[1..]),
        Some(&MEMBER_CHUNK) => KeyOwner::Members,
        _ => KeyOwner::Node,
    }
}

/// Key/value pairs, in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// One step of an export.
#[derive(Debug, Default)]
pub struct ExportStep {
    /// The pairs picked, in key order.
    pub pairs: Pairs,
    /// The key to continue after, or `None` when the tree has been read to its end.
    pub resume: Option<Vec<u8>>,
}

impl Store {
    /// Reads on from the first key after `after` (from the start without one) and returns
    /// the pairs whose owner `wanted` picks, up to `max_pairs` of them or about
    /// `max_bytes` (a membership chunk is never split: a step may end up to 1,024 pairs
    /// over); successive steps read the tree once. Membership goes as per-user keys.
    pub fn export_step(
        &self,
        after: Option<&[u8]>,
        wanted: impl Fn(KeyOwner<'_>) -> bool,
        max_pairs: usize,
        max_bytes: usize,
    ) -> Result<ExportStep, StorageError> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut step = ExportStep::default();
        let mut bytes = 0;
        for entry in self.tree.range::<&[u8], _>((start, Bound::Unbounded)) {
            let (key, value) = entry?;
            match key_owner(&key) {
                KeyOwner::Members => {
                    for (segment, user, _) in picked_members(&key, &value, &wanted)? {
                        let member = keys::pair(MEMBER, segment, user);
                        bytes += member.len();
                        step.pairs.push((member.to_vec(), Vec::new()));
                    }
                }
                owner if wanted(owner) => {
                    bytes += key.len() + value.len();
                    step.pairs.push((key.to_vec(), value.to_vec()));
                }
                _ => continue,
            }
            if step.pairs.len() >= max_pairs || bytes >= max_bytes {
                step.resume = Some(key.to_vec());
                break;
            }
        }
        Ok(step)
    }

    /// Writes `pairs` as one atomic batch and makes them durable.
    pub async fn import(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        let mut members: Vec<MemberOp> = Vec::new();
        for (key, value) in pairs {
            match member_chunks::member_of_key(key) {
                Some((segment, user)) => members.push((segment, user, true)),
                None => batch.insert(key.as_slice(), value.as_slice()),
            }
        }
        self.apply_with_members(SledWrites::Batch(batch), &members, &Written::Anyone)?;
        self.identities.forget_all();
        self.flush().await?;
        Ok(())
    }

    /// Removes every key whose owner `wanted` picks, as one atomic batch, and makes that
    /// durable; returns how many keys went.
    pub async fn remove_where(
        &self,
        wanted: impl Fn(KeyOwner<'_>) -> bool,
    ) -> Result<u64, StorageError> {
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        let mut members: Vec<MemberOp> = Vec::new();
        for entry in self.tree.iter() {
            let (key, value) = entry?;
            match key_owner(&key) {
                KeyOwner::Members => {
                    let leaving = picked_members(&key, &value, &wanted)?;
                    removed += leaving.len() as u64;
                    members.extend(leaving.into_iter().map(|(s, user, _)| (s, user, false)));
                }
                owner if wanted(owner) => {
                    batch.remove(key);
                    removed += 1;
                }
                _ => {}
            }
        }
        self.apply_with_members(SledWrites::Batch(batch), &members, &Written::Anyone)?;
        self.identities.forget_all();
        self.flush().await?;
        Ok(removed)
    }

    /// Reads the records of the users in `ids` that `wanted` picks, in one pass,
    /// ascending by id.
    pub fn records_in<T: DeserializeOwned>(
        &self,
        ids: std::ops::RangeInclusive<u64>,
        wanted: impl Fn(u64) -> bool,
    ) -> impl Iterator<Item = Result<T, StorageError>> {
        let start = keys::with_id(USER, *ids.start());
        let end = keys::with_id(USER, *ids.end());
        self.tree.range(start..=end).filter_map(move |entry| {
            let (key, value) = match entry {
                Ok(pair) => pair,
                Err(e) => return Some(Err(e.into())),
            };
            let user = keys::u64_at(&key, 1)?;
            wanted(user).then(|| decode(&value))
        })
    }

    /// Returns the lowest and highest id of a user with a record, if there is one.
    pub fn user_id_bounds(&self) -> Result<Option<(u64, u64)>, StorageError> {
        let mut ids = self.tree.scan_prefix([USER]).keys();
        let Some(first) = ids.next().transpose()? else {
            return Ok(None);
        };
        let first = key_suffix(&first, 1)?;
        let last = match ids.next_back().transpose()? {
            Some(last) => key_suffix(&last, 1)?,
            None => first,
        };
        Ok(Some((first, last)))
    }

    /// Returns the users with a record whose id `wanted` picks, ascending.
    pub fn users_where(&self, wanted: impl Fn(u64) -> bool) -> Result<Vec<u64>, StorageError> {
        let mut users = Vec::new();
        for user in self.user_ids() {
            let user = user?;
            if wanted(user) {
                users.push(user);
            }
        }
        Ok(users)
    }

    /// Returns how many pending timers belong to users `wanted` picks.
    pub fn timers_where(&self, wanted: impl Fn(u64) -> bool) -> Result<usize, StorageError> {
        let mut count = 0;
        for key in self.tree.scan_prefix([TIMER]).keys() {
            if let KeyOwner::User(user) = key_owner(&key?) {
                count += usize::from(wanted(user));
            }
        }
        Ok(count)
    }
}

/// Returns the members of the chunk under `key` whose user `wanted` picks, as
/// memberships.
fn picked_members(
    key: &[u8],
    chunk: &[u8],
    wanted: &impl Fn(KeyOwner<'_>) -> bool,
) -> Result<Vec<MemberOp>, StorageError> {
    let (segment, index) = member_chunks::chunk_of_key(key)?;
    Ok(member_chunks::members(index, chunk)
        .filter(|user| wanted(KeyOwner::User(*user)))
        .map(|user| (segment, user, true))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::store::tests::store;
    use super::super::{Absorbed, UserWrite};
    use super::*;
    use crate::domain::Timestamp;

    #[test]
    fn every_key_kind_names_its_user_or_identity() {
        let t = Timestamp::from_millis;
        assert_eq!(key_owner(&keys::with_id(USER, 7)), KeyOwner::User(7));
        assert_eq!(key_owner(&keys::with_id(OVERLAY, 7)), KeyOwner::User(7));
        assert_eq!(key_owner(&keys::with_id(MERGE_LOG, 8)), KeyOwner::User(8));
        assert_eq!(key_owner(&keys::with_id(ABSORBED, 9)), KeyOwner::User(9));
        assert_eq!(key_owner(&keys::with_id(OUTBOX, 9)), KeyOwner::User(9));
        assert_eq!(key_owner(&keys::timer(t(-5), 10)), KeyOwner::User(10));
        assert_eq!(key_owner(&keys::pair(MEMBER, 3, 11)), KeyOwner::User(11));
        assert_eq!(
            key_owner(&keys::pair(MEMBER_CHUNK, 3, 0)),
            KeyOwner::Members
        );
        assert_eq!(
            key_owner(&keys::identity("cookie", "c1")),
            KeyOwner::Identity(b"cookie\0c1")
        );
        assert_eq!(key_owner(&keys::with_id(keys::SEGMENT, 1)), KeyOwner::Node);
        assert_eq!(key_owner(&keys::meta("dev_clock")), KeyOwner::Node);
        assert_eq!(key_owner(&[USER, 1, 2]), KeyOwner::Node);
        assert_eq!(key_owner(&[]), KeyOwner::Node);
    }

    /// A store with users 1 and 2 (records, timers, memberships, identities, logs) and
    /// user 3 absorbed into 1, plus a segment and metadata.
    fn populated() -> (tempfile::TempDir, Store) {
        let (dir, store) = store();
        for user in [1, 2] {
            let write = UserWrite {
                new_due: Some(Timestamp::from_millis(user as i64)),
                joined: vec![5],
                ..UserWrite::default()
            };
            store
                .apply([
                    &Store::user_write(user, &"record", &write).unwrap(),
                    &Store::merge_log_write(user, &"log").unwrap(),
                ])
                .unwrap();
            store
                .resolve_identity("cookie", &format!("c{user}"), || Ok(user))
                .unwrap();
        }
        let gone = Absorbed {
            user: 3,
            ..Absorbed::default()
        };
        let merge =
            Store::merge_write(1, &"record", &UserWrite::default(), &[gone], &"log").unwrap();
        store.apply([&merge]).unwrap();
        store.save_segment(5, &"segment").unwrap();
        store.set_meta("dev_clock", &1i64).unwrap();
        (dir, store)
    }

    fn of_user_one(owner: KeyOwner<'_>) -> bool {
        matches!(
            owner,
            KeyOwner::User(1 | 3) | KeyOwner::Identity(b"cookie\0c1")
        )
    }

    #[tokio::test]
    async fn an_export_in_small_steps_reads_every_picked_key_once() {
        let (_dir, store) = populated();
        let mut after: Option<Vec<u8>> = None;
        let mut exported = Vec::new();
        loop {
            let step = store
                .export_step(after.as_deref(), of_user_one, 2, usize::MAX)
                .unwrap();
            assert!(step.pairs.len() <= 2);
            exported.extend(step.pairs);
            match step.resume {
                Some(key) => after = Some(key),
                None => break,
            }
        }
        // Record, log, timer, membership, identity of user 1, and user 3's redirect.
        assert_eq!(exported.len(), 6);
        assert!(exported.iter().all(|(key, _)| of_user_one(key_owner(key))));

        let (_other_dir, other) = store_with(&exported).await;
        assert_eq!(
            other.load_user::<String>(1).unwrap().as_deref(),
            Some("record")
        );
        assert_eq!(other.merged_into(3).unwrap(), Some(1));
        assert_eq!(other.user_for_identity("cookie", "c1").unwrap(), Some(1));
        assert_eq!(other.members(5, None, 10), vec![1]);
        assert_eq!(other.timers_where(|_| true).unwrap(), 1);
        assert_eq!(other.load_user::<String>(2).unwrap(), None);
    }

    async fn store_with(pairs: &[(Vec<u8>, Vec<u8>)]) -> (tempfile::TempDir, Store) {
        let (dir, store) = store();
        store.import(pairs).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn removal_takes_exactly_the_picked_keys() {
        let (_dir, store) = populated();
        assert_eq!(store.users_where(|user| user == 1).unwrap(), vec![1]);
        let records: Vec<String> = store
            .records_in(0..=u64::MAX, |user| user == 2)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(records, vec!["record".to_owned()]);
        assert_eq!(store.timers_where(|user| user == 2).unwrap(), 1);
        assert_eq!(store.user_for_identity("cookie", "c1").unwrap(), Some(1));
        assert_eq!(store.member_count(5), 2);
        assert_eq!(store.remove_where(of_user_one).await.unwrap(), 6);
        assert_eq!(store.member_count(5), 1);
        assert_eq!(store.load_user::<String>(1).unwrap(), None);
        assert_eq!(store.merged_into(3).unwrap(), None);
        assert_eq!(store.user_for_identity("cookie", "c1").unwrap(), None);
        assert_eq!(
            store.load_user::<String>(2).unwrap().as_deref(),
            Some("record")
        );
        assert_eq!(store.user_for_identity("cookie", "c2").unwrap(), Some(2));
        assert_eq!(store.members(5, None, 10), vec![2]);
        assert_eq!(store.segments::<String>().unwrap().len(), 1);
        assert_eq!(store.meta::<i64>("dev_clock").unwrap(), Some(1));
    }
}
