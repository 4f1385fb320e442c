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

    /// Returns the writes in order: each key with its new value, or `None` when it is
    /// removed.
    pub(super) fn ops(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.ops
            .iter()
            .map(|(key, value)| (key.as_slice(), value.as_deref()))
    }

    /// Adds the writes of `later` after these.
    pub fn append(&mut self, later: WriteSet) {
        self.ops.extend(later.ops);
    }

    /// Returns whether the set writes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}
