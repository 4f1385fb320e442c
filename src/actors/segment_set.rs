//! The segments one user is in: its ids sorted in an exactly sized slice. A user is in a
//! few segments at most, and a `BTreeSet` spent a node of about 100 bytes on even one.
//! Stored as the set was (a MessagePack array of ids), so older records decode as they are.

use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Sorted, distinct segment ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentSet(Box<[u64]>);

impl SegmentSet {
    /// Adds `id`; returns false when it was there already.
    pub fn insert(&mut self, id: u64) -> bool {
        let Err(at) = self.0.binary_search(&id) else {
            return false;
        };
        let mut ids = std::mem::take(&mut self.0).into_vec();
        ids.reserve_exact(1);
        ids.insert(at, id);
        self.0 = ids.into_boxed_slice();
        true
    }

    /// Removes `id`; returns false when it was not there.
    pub fn remove(&mut self, id: u64) -> bool {
        let Ok(at) = self.0.binary_search(&id) else {
            return false;
        };
        let mut ids = std::mem::take(&mut self.0).into_vec();
        ids.remove(at);
        self.0 = ids.into_boxed_slice();
        true
    }
}

impl Deref for SegmentSet {
    type Target = [u64];

    fn deref(&self) -> &[u64] {
        &self.0
    }
}

impl FromIterator<u64> for SegmentSet {
    fn from_iter<I: IntoIterator<Item = u64>>(ids: I) -> SegmentSet {
        let mut ids: Vec<u64> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        SegmentSet(ids.into_boxed_slice())
    }
}

impl Serialize for SegmentSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

impl<'de> Deserialize<'de> for SegmentSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SegmentSet, D::Error> {
        Ok(Vec::<u64>::deserialize(deserializer)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn inserts_and_removes_in_order_without_spare_room() {
        let mut set = SegmentSet::default();
        assert!(set.insert(5) && set.insert(1) && set.insert(9));
        assert!(!set.insert(5));
        assert_eq!(&*set, &[1, 5, 9]);
        assert!(set.remove(5) && !set.remove(5));
        assert_eq!(&*set, &[1, 9]);
    }

    #[test]
    fn decodes_what_a_btree_set_encoded_and_encodes_the_same() {
        let old: BTreeSet<u64> = [3, 1, 2].into_iter().collect();
        let bytes = rmp_serde::to_vec_named(&old).unwrap();
        let set: SegmentSet = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(&*set, &[1, 2, 3]);
        assert_eq!(rmp_serde::to_vec_named(&set).unwrap(), bytes);
    }
}
