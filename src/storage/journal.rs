//! The event journal: one entry per group commit, under `j` + sequence number, holding
//! what every user applied in that group (each part encoded by its actor, so the
//! committer only concatenates). Snapshots (user records) make entries redundant; the
//! committer removes them in the same batch as the snapshots that cover them, and
//! start-up replays whatever is left.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec::{decode, FORMAT_VERSION};
use super::keys::{self, JOURNAL};
use super::store::{key_suffix, Store};
use super::write_set::WriteSet;
use super::StorageError;

/// Encodes one part of an entry (one user's step), without the version byte. Parts are
/// positional MessagePack (structs as arrays: about half the work of named fields, on
/// the hot path); they live seconds, and the entry's version byte guards their layout.
pub fn journal_part<T: Serialize>(part: &T) -> Result<Vec<u8>, StorageError> {
    rmp_serde::to_vec(part).map_err(|e| StorageError::Encode(e.to_string()))
}

impl WriteSet {
    /// Writes journal entry `seq` made of `parts` (each from `journal_part`).
    pub fn append_journal<'a>(&mut self, seq: u64, parts: impl ExactSizeIterator<Item = &'a [u8]>) {
        let mut value = vec![FORMAT_VERSION];
        let count = u32::try_from(parts.len()).unwrap_or(u32::MAX);
        // Writing to a Vec cannot fail.
        let _infallible = rmp::encode::write_array_len(&mut value, count);
        for part in parts {
            value.extend_from_slice(part);
        }
        self.insert(&keys::with_id(JOURNAL, seq), value);
    }

    /// Removes journal entries `from..to`.
    pub fn truncate_journal(&mut self, from: u64, to: u64) {
        for seq in from..to {
            self.remove(&keys::with_id(JOURNAL, seq));
        }
    }
}

impl Store {
    /// Returns the journal's entries in sequence order, each decoded as a list of parts.
    pub fn journal<T: DeserializeOwned>(
        &self,
    ) -> impl Iterator<Item = Result<(u64, Vec<T>), StorageError>> + '_ {
        self.tree.scan_prefix([JOURNAL]).map(|entry| {
            let (key, value) = entry?;
            Ok((key_suffix(&key, 1)?, decode(&value)?))
        })
    }

    /// Returns the sequence number after the last journal entry (0 when it is empty).
    pub fn journal_end(&self) -> Result<u64, StorageError> {
        match self.tree.scan_prefix([JOURNAL]).keys().next_back() {
            Some(key) => Ok(key_suffix(&key?, 1)? + 1),
            None => Ok(0),
        }
    }

    /// Removes every journal entry (after start-up saved what they held).
    pub fn clear_journal(&self) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for key in self.tree.scan_prefix([JOURNAL]).keys() {
            batch.remove(key?);
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::tests::store;
    use super::*;

    #[test]
    fn entries_decode_as_lists_of_parts_and_truncate_by_range() {
        let (_dir, store) = store();
        assert_eq!(store.journal_end().unwrap(), 0);
        let mut set = WriteSet::default();
        let parts = [
            journal_part(&(1u64, "a")).unwrap(),
            journal_part(&(2u64, "b")).unwrap(),
        ];
        set.append_journal(4, parts.iter().map(Vec::as_slice));
        let many: Vec<Vec<u8>> = (0..70u64)
            .map(|i| journal_part(&(i, "x")).unwrap())
            .collect();
        set.append_journal(5, many.iter().map(Vec::as_slice));
        store.apply([&set]).unwrap();
        let entries: Vec<(u64, Vec<(u64, String)>)> =
            store.journal().collect::<Result<_, _>>().unwrap();
        assert_eq!(entries[0], (4, vec![(1, "a".into()), (2, "b".into())]));
        assert_eq!(entries[1].1.len(), 70);
        assert_eq!(store.journal_end().unwrap(), 6);
        let mut truncate = WriteSet::default();
        truncate.truncate_journal(0, 5);
        store.apply([&truncate]).unwrap();
        assert_eq!(store.journal::<(u64, String)>().count(), 1);
        store.clear_journal().unwrap();
        assert_eq!(store.journal::<(u64, String)>().count(), 0);
    }
}
