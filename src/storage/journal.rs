//! The event journal: one entry per group commit, holding what every user applied in
//! that group (each part encoded by its actor, so the committer only concatenates).
//! Entries live in files of their own (`journal_file`), appended and synced by the
//! committer; snapshots (user records) make them redundant, and the committer deletes
//! files once a flush of sled covers the snapshots. Start-up replays whatever is left.
//!
//! Earlier versions kept entries in sled under `j` + sequence number; those are still
//! read (before the files) and cleared after replay.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec::{decode, FORMAT_VERSION};
use super::journal_file;
use super::keys::JOURNAL;
use super::store::{key_suffix, Store};
use super::StorageError;

/// The metadata key of `set_journal_applied`.
const JOURNAL_APPLIED: &str = "journal_applied";

/// Encodes one part of an entry (one user's step), without the version byte. Parts are
/// positional MessagePack (structs as arrays: about half the work of named fields, on
/// the hot path); they live seconds, and the entry's version byte guards their layout.
pub fn journal_part<T: Serialize>(part: &T) -> Result<Vec<u8>, StorageError> {
    rmp_serde::to_vec(part).map_err(|e| StorageError::Encode(e.to_string()))
}

/// Encodes a journal entry made of `parts` (each from `journal_part`).
pub fn journal_entry<'a>(parts: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut value = vec![FORMAT_VERSION];
    let count = u32::try_from(parts.len()).unwrap_or(u32::MAX);
    // Writing to a Vec cannot fail.
    let _infallible = rmp::encode::write_array_len(&mut value, count);
    for part in parts {
        value.extend_from_slice(part);
    }
    value
}

impl Store {
    /// The directory of the journal's files.
    pub fn journal_dir(&self) -> PathBuf {
        self.dir.join("journal")
    }

    /// Returns the journal's entries in sequence order, each decoded as a list of parts:
    /// those an earlier version left in sled, then the files'.
    pub fn journal<T: DeserializeOwned>(&self) -> Result<Vec<(u64, Vec<T>)>, StorageError> {
        let mut entries = Vec::new();
        for entry in self.tree.scan_prefix([JOURNAL]) {
            let (key, value) = entry?;
            entries.push((key_suffix(&key, 1)?, decode(&value)?));
        }
        for (seq, bytes) in journal_file::read_entries(&self.journal_dir())? {
            entries.push((seq, decode(&bytes)?));
        }
        Ok(entries)
    }

    /// Returns the sequence number after the last journal entry an earlier version left
    /// in sled (0 when there is none).
    pub fn sled_journal_end(&self) -> Result<u64, StorageError> {
        match self.tree.scan_prefix([JOURNAL]).keys().next_back() {
            Some(key) => Ok(key_suffix(&key?, 1)? + 1),
            None => Ok(0),
        }
    }

    /// Notes that every journal entry before `seq` is wholly applied to sled: once sled
    /// is flushed, replay can trust what it holds of their users.
    pub fn set_journal_applied(&self, seq: u64) -> Result<(), StorageError> {
        self.set_meta(JOURNAL_APPLIED, &seq)
    }

    /// Returns the sequence number before which every journal entry is wholly in sled's
    /// files (0 when none is known to be).
    pub fn journal_applied(&self) -> Result<u64, StorageError> {
        Ok(self.meta(JOURNAL_APPLIED)?.unwrap_or(0))
    }

    /// Returns whether the journal holds no entry.
    pub fn journal_is_empty(&self) -> Result<bool, StorageError> {
        Ok(self
            .tree
            .scan_prefix([JOURNAL])
            .next()
            .transpose()?
            .is_none()
            && journal_file::is_empty(&self.journal_dir())?)
    }

    /// Removes the journal entries an earlier version left in sled (after start-up saved
    /// what they held).
    pub fn clear_sled_journal(&self) -> Result<(), StorageError> {
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
    use super::super::keys;
    use super::super::store::tests::store;
    use super::super::write_set::WriteSet;
    use super::super::JournalFile;
    use super::*;

    fn entry(parts: &[(u64, &str)]) -> Vec<u8> {
        let parts: Vec<Vec<u8>> = parts.iter().map(|p| journal_part(p).unwrap()).collect();
        journal_entry(parts.iter().map(Vec::as_slice))
    }

    #[test]
    fn entries_left_in_sled_come_before_the_files_and_are_cleared() {
        let (_dir, store) = store();
        assert!(store.journal_is_empty().unwrap());
        assert_eq!(store.sled_journal_end().unwrap(), 0);
        let mut legacy = WriteSet::default();
        legacy.insert(&keys::with_id(JOURNAL, 4), entry(&[(1, "a"), (2, "b")]));
        store.apply([&legacy]).unwrap();
        let mut file = JournalFile::open(&store.journal_dir()).unwrap();
        let many: Vec<(u64, &str)> = (0..70u64).map(|i| (i, "x")).collect();
        file.append(5, &entry(&many)).unwrap();
        let entries: Vec<(u64, Vec<(u64, String)>)> = store.journal().unwrap();
        assert_eq!(entries[0], (4, vec![(1, "a".into()), (2, "b".into())]));
        assert_eq!((entries[1].0, entries[1].1.len()), (5, 70));
        assert_eq!(store.sled_journal_end().unwrap(), 5);
        store.clear_sled_journal().unwrap();
        assert_eq!(store.journal::<(u64, String)>().unwrap().len(), 1);
        assert!(!store.journal_is_empty().unwrap());
    }
}
