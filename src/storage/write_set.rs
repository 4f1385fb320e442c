//! A set of writes made together. Actors build them (an encoded record, its timer and
//! membership changes, a merge); the committer applies every set of a group in one
//! atomic sled batch, in submission order, then flushes once.

/// Inserts and removes, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteSet {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteSet {
    pub(super) fn insert(&mut self, key: &[u8], value: Vec<u8>) {
        self.ops.push((key.to_vec(), Some(value)));
    }

    pub(super) fn remove(&mut self, key: &[u8]) {
        self.ops.push((key.to_vec(), None));
    }

    pub(super) fn add_to(&self, batch: &mut sled::Batch) {
        for (key, value) in &self.ops {
            match value {
                Some(value) => batch.insert(key.as_slice(), value.as_slice()),
                None => batch.remove(key.as_slice()),
            }
        }
    }

    /// Returns the keys the set writes, in order, each with whether it is inserted
    /// (true) or removed (false).
    pub(super) fn keys_inserted(&self) -> impl Iterator<Item = (&[u8], bool)> {
        self.ops
            .iter()
            .map(|(key, value)| (key.as_slice(), value.is_some()))
    }

    /// Returns whether the set writes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}
