//! Segment membership as stored: one key per segment and 1,024 consecutive user ids
//! (`b` + segment id + user id / 1,024) whose value is a bitmap of the members among
//! them (bit `user % 1024`, least significant bit of each byte first, trailing zero bytes
//! dropped; a chunk without members has no key). A backfill that adds a million
//! members writes about a thousand keys instead of a million, and one chunk read
//! answers for a thousand users.
//!
//! Write sets and handoff speak of one user's membership at a time (`m` + segment id +
//! user id); `ChunkEdits` turns those into chunk writes when a batch is applied. Data
//! dirs written before chunks hold such per-user keys; `convert_per_user_keys` turns
//! them into chunks at open. The node keeps every chunk in memory too (`membership`).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};

use super::keys::{self, MEMBER, MEMBER_CHUNK};
use super::StorageError;

/// Consecutive user ids per chunk.
pub(super) const USERS_PER_CHUNK: u64 = 1024;

/// Per-user keys converted per batch at open.
const CONVERTED_PER_BATCH: usize = 65_536;

/// One membership change: segment, user, and whether the user is a member after it.
pub(super) type MemberOp = (u64, u64, bool);

/// Chunks by (segment, chunk index), each a bitmap.
pub(super) type Chunks = BTreeMap<(u64, u64), Vec<u8>>;

/// Returns the index of the chunk that holds `user`.
pub(super) fn chunk_of(user: u64) -> u64 {
    user / USERS_PER_CHUNK
}

/// Returns the key of chunk `chunk` of `segment`.
pub(super) fn chunk_key(segment: u64, chunk: u64) -> [u8; 17] {
    keys::pair(MEMBER_CHUNK, segment, chunk)
}

/// Returns the segment and user of a per-user membership key (`m`).
pub(super) fn member_of_key(key: &[u8]) -> Option<(u64, u64)> {
    if key.first() != Some(&MEMBER) || key.len() != 17 {
        return None;
    }
    Some((keys::u64_at(key, 1)?, keys::u64_at(key, 9)?))
}

/// Returns the segment and chunk index of a chunk key.
pub(super) fn chunk_of_key(key: &[u8]) -> Result<(u64, u64), StorageError> {
    let short = || StorageError::Decode("short membership chunk key".into());
    Ok((
        keys::u64_at(key, 1).ok_or_else(short)?,
        keys::u64_at(key, 9).ok_or_else(short)?,
    ))
}

fn bit_of(user: u64) -> (usize, u8) {
    let at = user % USERS_PER_CHUNK;
    ((at / 8) as usize, 1 << (at % 8))
}

/// Returns whether `chunk` (the value of `user`'s chunk) has `user` as a member.
pub(super) fn contains(chunk: &[u8], user: u64) -> bool {
    let (byte, mask) = bit_of(user);
    chunk.get(byte).is_some_and(|b| b & mask != 0)
}

/// Makes `user` a member of `chunk` or not; returns whether that changed it.
fn set(chunk: &mut Vec<u8>, user: u64, member: bool) -> bool {
    if contains(chunk, user) == member {
        return false;
    }
    let (byte, mask) = bit_of(user);
    if member {
        if chunk.len() <= byte {
            chunk.resize(byte + 1, 0);
        }
        chunk[byte] |= mask;
    } else {
        chunk[byte] &= !mask;
        while chunk.last() == Some(&0) {
            chunk.pop();
        }
    }
    true
}

/// Returns how many members `chunk` has.
pub(super) fn count(chunk: &[u8]) -> u64 {
    chunk.iter().map(|b| u64::from(b.count_ones())).sum()
}

/// Returns the members of chunk number `chunk` (its bitmap `bits`), ascending.
pub(super) fn members(chunk: u64, bits: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let first = chunk.saturating_mul(USERS_PER_CHUNK);
    bits.iter().enumerate().flat_map(move |(at, byte)| {
        (0..8u64)
            .filter(move |bit| byte & (1 << bit) != 0)
            .map(move |bit| first + (at as u64) * 8 + bit)
    })
}

/// The chunks a batch changes, each read once, and what that does to each segment's
/// member count.
#[derive(Debug, Default)]
pub(super) struct ChunkEdits {
    /// Each changed chunk as it is after the edits.
    chunks: Chunks,
    changes: HashMap<u64, i64>,
}

impl ChunkEdits {
    /// Applies `op` after the edits before it; `stored` gives the chunk (segment, index)
    /// as it is before the batch, asked once per chunk.
    pub(super) fn apply(
        &mut self,
        op: MemberOp,
        stored: impl FnOnce(u64, u64) -> Result<Vec<u8>, StorageError>,
    ) -> Result<(), StorageError> {
        let (segment, user, member) = op;
        let chunk = match self.chunks.entry((segment, chunk_of(user))) {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(slot) => {
                let (segment, index) = *slot.key();
                slot.insert(stored(segment, index)?)
            }
        };
        if set(chunk, user, member) {
            *self.changes.entry(segment).or_default() += if member { 1 } else { -1 };
        }
        Ok(())
    }

    /// Adds the changed chunks to `batch`.
    pub(super) fn add_to(&self, batch: &mut sled::Batch) {
        for (key, bits) in self.writes() {
            match bits {
                Some(bits) => batch.insert(&key[..], bits),
                None => batch.remove(&key[..]),
            }
        }
    }

    /// Returns the changed chunks' keys with their new values (`None`: removed).
    pub(super) fn writes(&self) -> impl Iterator<Item = ([u8; 17], Option<&[u8]>)> {
        self.chunks.iter().map(|((segment, index), bits)| {
            let value = (!bits.is_empty()).then_some(bits.as_slice());
            (chunk_key(*segment, *index), value)
        })
    }

    /// Returns the changed chunks ((segment, index) → bitmap, empty when it has no
    /// member left) and how each segment's count changed.
    pub(super) fn into_parts(self) -> (Chunks, HashMap<u64, i64>) {
        (self.chunks, self.changes)
    }
}

/// Reads chunk `index` of `segment` from `tree` (empty when it has no key).
pub(super) fn stored_chunk(
    tree: &sled::Tree,
    segment: u64,
    index: u64,
) -> Result<Vec<u8>, StorageError> {
    let bits = tree.get(chunk_key(segment, index))?;
    Ok(bits.map(|bits| bits.to_vec()).unwrap_or_default())
}

/// Turns the per-user membership keys of a data dir written before chunks into chunks;
/// returns how many there were.
pub(super) fn convert_per_user_keys(tree: &sled::Tree) -> Result<u64, StorageError> {
    let mut converted = 0;
    loop {
        let mut batch = sled::Batch::default();
        let mut edits = ChunkEdits::default();
        let mut keys_seen = 0;
        for key in tree.scan_prefix([MEMBER]).keys().take(CONVERTED_PER_BATCH) {
            let key = key?;
            if let Some((segment, user)) = member_of_key(&key) {
                edits.apply((segment, user, true), |s, i| stored_chunk(tree, s, i))?;
            }
            batch.remove(key);
            keys_seen += 1;
        }
        if keys_seen == 0 {
            return Ok(converted);
        }
        edits.add_to(&mut batch);
        tree.apply_batch(batch)?;
        converted += keys_seen;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_set_and_clear_with_trailing_zero_bytes_dropped() {
        let mut chunk = Vec::new();
        assert!(set(&mut chunk, 2048 + 17, true));
        assert!(!set(&mut chunk, 2048 + 17, true), "already a member");
        assert!(set(&mut chunk, 2048 + 3, true));
        assert_eq!(chunk.len(), 3);
        assert!(contains(&chunk, 17) && contains(&chunk, 3) && !contains(&chunk, 4));
        assert!(!contains(&chunk, 1023), "past the stored bytes");
        assert_eq!(count(&chunk), 2);
        assert!(set(&mut chunk, 17, false));
        assert_eq!(chunk, vec![0b1000]);
        assert!(!set(&mut chunk, 999, false), "not a member");
        assert!(set(&mut chunk, 3, false));
        assert!(chunk.is_empty());
    }

    #[test]
    fn a_chunk_lists_its_members_ascending() {
        let mut bits = Vec::new();
        for user in [3 * 1024 + 1023, 3 * 1024 + 5, 3 * 1024] {
            set(&mut bits, user, true);
        }
        let listed: Vec<u64> = members(chunk_of(3 * 1024 + 5), &bits).collect();
        assert_eq!(listed, vec![3 * 1024, 3 * 1024 + 5, 3 * 1024 + 1023]);
        assert_eq!(chunk_of_key(&chunk_key(7, 3)).unwrap(), (7, 3));
    }

    #[test]
    fn edits_read_each_chunk_once_and_count_only_real_changes() {
        let mut reads = 0;
        let mut edits = ChunkEdits::default();
        for op in [
            (1, 10, true),  // already there: no change
            (1, 11, true),  // +1 in segment 1
            (1, 11, false), // and gone again: -1
            (2, 10, true),  // +1 in segment 2
            (1, 10, false), // -1 in segment 1
            (2, 10, false), // -1 in segment 2
            (2, 10, true),  // +1 in segment 2
        ] {
            let stored = |segment, _| {
                reads += 1;
                Ok(if segment == 1 {
                    vec![0, 0b100]
                } else {
                    Vec::new()
                })
            };
            edits.apply(op, stored).unwrap();
        }
        assert_eq!(reads, 2);
        let (chunks, changes) = edits.into_parts();
        assert_eq!(changes.get(&1).copied().unwrap_or(0), -1);
        assert_eq!(changes.get(&2).copied().unwrap_or(0), 1);
        assert_eq!(chunks[&(1, 0)], Vec::<u8>::new(), "emptied");
        assert!(contains(&chunks[&(2, 0)], 10));
    }

    #[test]
    fn per_user_keys_become_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let tree = sled::open(dir.path()).unwrap().open_tree("t").unwrap();
        for (segment, user) in [(1, 5), (1, 1030), (2, 5)] {
            tree.insert(keys::pair(MEMBER, segment, user), vec![])
                .unwrap();
        }
        assert_eq!(convert_per_user_keys(&tree).unwrap(), 3);
        assert_eq!(tree.scan_prefix([MEMBER]).count(), 0);
        let chunks: Vec<(u64, Vec<u64>)> = tree
            .scan_prefix([MEMBER_CHUNK])
            .map(|entry| {
                let (key, bits) = entry.unwrap();
                let (segment, index) = chunk_of_key(&key).unwrap();
                (segment, members(index, &bits).collect())
            })
            .collect();
        assert_eq!(chunks, vec![(1, vec![5]), (1, vec![1030]), (2, vec![5])]);
        assert_eq!(convert_per_user_keys(&tree).unwrap(), 0);
    }
}
