//! Segment membership in memory: every chunk of every segment (`member_chunks`), read
//! at open and changed by every batch that changes membership once sled has it. Whether
//! a user is a member, a user's segments, a segment's members and their count are
//! answered without reading sled. One bit per user and segment: a million users in five
//! segments take well under a megabyte.
//!
//! Batches that change membership run one at a time (`write`): each reads the chunks it
//! changes before writing them, and the committer's and a handoff's would otherwise
//! overwrite each other's bits.

use std::collections::BTreeMap;
use std::sync::{Mutex, RwLock};

use crate::sync::{locked, read_locked, write_locked};

use super::keys::MEMBER_CHUNK;
use super::member_chunks::{self, ChunkEdits, MemberOp};
use super::StorageError;

/// Writes on their way to sled.
pub enum SledWrites<'a> {
    /// One atomic batch.
    Batch(sled::Batch),
    /// Op by op, in order: no batch manifest, which makes sled write and sync its log
    /// buffer twice (`Tree::apply_batch` rolls it before and after). After a crash sled
    /// holds a prefix of them.
    EachOp(Vec<(&'a [u8], Option<&'a [u8]>)>),
}

fn write_one(tree: &sled::Tree, key: &[u8], value: Option<&[u8]>) -> Result<(), StorageError> {
    match value {
        Some(value) => tree.insert(key, value)?,
        None => tree.remove(key)?,
    };
    Ok(())
}

/// One segment's members.
#[derive(Debug, Default)]
struct SegmentBits {
    count: u64,
    /// Chunk index → bitmap (never empty).
    chunks: BTreeMap<u64, Vec<u8>>,
}

/// Every segment's members.
#[derive(Debug, Default)]
pub struct Membership {
    segments: RwLock<BTreeMap<u64, SegmentBits>>,
    /// Held by a batch changing membership, from reading its chunks to installing them.
    writing: Mutex<()>,
}

impl Membership {
    /// Reads every membership chunk of `tree`.
    pub fn load(tree: &sled::Tree) -> Result<Membership, StorageError> {
        let mut segments: BTreeMap<u64, SegmentBits> = BTreeMap::new();
        for entry in tree.scan_prefix([MEMBER_CHUNK]) {
            let (key, bits) = entry?;
            let (segment, index) = member_chunks::chunk_of_key(&key)?;
            let of_segment = segments.entry(segment).or_default();
            of_segment.count += member_chunks::count(&bits);
            of_segment.chunks.insert(index, bits.to_vec());
        }
        Ok(Membership {
            segments: RwLock::new(segments),
            writing: Mutex::new(()),
        })
    }

    /// Returns how many members `segment` has.
    pub fn count(&self, segment: u64) -> u64 {
        read_locked(&self.segments)
            .get(&segment)
            .map_or(0, |bits| bits.count)
    }

    /// Returns whether `user` is a member of `segment`.
    pub fn contains(&self, segment: u64, user: u64) -> bool {
        let segments = read_locked(&self.segments);
        let chunk = segments
            .get(&segment)
            .and_then(|bits| bits.chunks.get(&member_chunks::chunk_of(user)));
        chunk.is_some_and(|bits| member_chunks::contains(bits, user))
    }

    /// Returns the segments `user` is a member of, ascending.
    pub fn segments_of(&self, user: u64) -> Vec<u64> {
        let index = member_chunks::chunk_of(user);
        read_locked(&self.segments)
            .iter()
            .filter(|(_, bits)| {
                let chunk = bits.chunks.get(&index);
                chunk.is_some_and(|bits| member_chunks::contains(bits, user))
            })
            .map(|(segment, _)| *segment)
            .collect()
    }

    /// Returns up to `limit` members of `segment` from `first` on, ascending.
    pub fn members(&self, segment: u64, first: u64, limit: usize) -> Vec<u64> {
        let segments = read_locked(&self.segments);
        let Some(bits) = segments.get(&segment) else {
            return Vec::new();
        };
        bits.chunks
            .range(member_chunks::chunk_of(first)..)
            .flat_map(|(index, bits)| member_chunks::members(*index, bits))
            .filter(|user| *user >= first)
            .take(limit)
            .collect()
    }

    /// Applies `writes` to `tree` together with the membership changes `ops` (in order),
    /// then takes them in. One such write at a time.
    pub fn write(
        &self,
        tree: &sled::Tree,
        writes: SledWrites<'_>,
        ops: &[MemberOp],
    ) -> Result<(), StorageError> {
        let _one_at_a_time = locked(&self.writing);
        let mut edits = ChunkEdits::default();
        for op in ops {
            edits.apply(*op, |segment, index| Ok(self.chunk(segment, index)))?;
        }
        match writes {
            SledWrites::Batch(mut batch) => {
                edits.add_to(&mut batch);
                tree.apply_batch(batch)?;
            }
            SledWrites::EachOp(writes) => {
                for (key, value) in writes {
                    write_one(tree, key, value)?;
                }
                for (key, value) in edits.writes() {
                    write_one(tree, &key, value)?;
                }
            }
        }
        self.take_in(edits);
        Ok(())
    }

    fn chunk(&self, segment: u64, index: u64) -> Vec<u8> {
        let segments = read_locked(&self.segments);
        let chunk = segments
            .get(&segment)
            .and_then(|bits| bits.chunks.get(&index));
        chunk.cloned().unwrap_or_default()
    }

    /// Installs chunks that sled now holds, and their segments' new counts.
    fn take_in(&self, edits: ChunkEdits) {
        let (chunks, changes) = edits.into_parts();
        let mut segments = write_locked(&self.segments);
        for ((segment, index), bits) in chunks {
            let of_segment = segments.entry(segment).or_default();
            if bits.is_empty() {
                of_segment.chunks.remove(&index);
            } else {
                of_segment.chunks.insert(index, bits);
            }
        }
        for (segment, change) in changes {
            if let Some(of_segment) = segments.get_mut(&segment) {
                of_segment.count = of_segment.count.saturating_add_signed(change);
            }
        }
        segments.retain(|_, bits| !bits.chunks.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_read_back_from_memory_and_a_reload_agrees() {
        let dir = tempfile::tempdir().unwrap();
        let tree = sled::open(dir.path()).unwrap().open_tree("t").unwrap();
        let membership = Membership::load(&tree).unwrap();
        let ops = [(1, 10, true), (1, 2000, true), (2, 10, true), (1, 10, true)];
        let batch = SledWrites::Batch(sled::Batch::default());
        membership.write(&tree, batch, &ops).unwrap();
        // Op by op, with a write of its own.
        let each = SledWrites::EachOp(vec![(&b"k"[..], Some(&b"v"[..]))]);
        membership
            .write(&tree, each, &[(2, 10, false), (2, 11, false)])
            .unwrap();
        assert_eq!(tree.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
        for view in [&membership, &Membership::load(&tree).unwrap()] {
            assert_eq!((view.count(1), view.count(2), view.count(3)), (2, 0, 0));
            assert!(view.contains(1, 2000) && !view.contains(2, 10));
            assert_eq!(view.segments_of(10), vec![1]);
            assert_eq!(view.members(1, 0, 10), vec![10, 2000]);
            assert_eq!(view.members(1, 11, 10), vec![2000]);
            assert_eq!(view.members(1, 0, 1), vec![10]);
        }
    }
}
