//! Users handed to a survivor on another node (merges across nodes). The node that gives
//! a user up removes and redirects it as a merge would, in one batch that also keeps
//! everything about it in an outbox entry (`o` + user id), until the survivor's node
//! confirms the merge (the entry is dropped) or refuses it (the user is put back from
//! the entry). A crash in between leaves the entry, and the transfer is finished later.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec::{decode, encode};
use super::identities::{absorbed_ops, Absorbed};
use super::keys::{self, ABSORBED, MEMBER, MERGE_LOG, OUTBOX, OVERLAY, USER};
use super::store::{key_suffix, Store};
use super::write_set::WriteSet;
use super::StorageError;

impl Store {
    /// Returns the writes that give `gone` up to `survivor`, keeping `parcel` (what the
    /// survivor needs, and what puts the user back) in the outbox.
    pub fn surrender_write<P: Serialize>(
        survivor: u64,
        gone: &Absorbed,
        parcel: &P,
    ) -> Result<WriteSet, StorageError> {
        let mut batch = WriteSet::default();
        absorbed_ops(&mut batch, survivor, gone);
        batch.insert(&keys::with_id(OUTBOX, gone.user), encode(parcel)?);
        Ok(batch)
    }

    /// Returns the writes that put a given-up user back as `gone` describes it, with its
    /// encoded `record` and `log`, and drop its outbox entry.
    pub fn restore_write<R: Serialize, L: Serialize>(
        gone: &Absorbed,
        record: &R,
        log: &L,
    ) -> Result<WriteSet, StorageError> {
        let mut batch = WriteSet::default();
        let user = gone.user;
        let own = user.to_be_bytes();
        batch.insert(&keys::with_id(USER, user), encode(record)?);
        batch.remove(&keys::with_id(OVERLAY, user));
        batch.insert(&keys::with_id(MERGE_LOG, user), encode(log)?);
        if let Some(due) = gone.due {
            batch.insert(&keys::timer(due, user), Vec::new());
        }
        for segment in &gone.segments {
            batch.insert(&keys::pair(MEMBER, *segment, user), Vec::new());
        }
        for (id_type, id) in &gone.identities {
            batch.insert(&keys::identity(id_type, id), own.to_vec());
        }
        batch.remove(&keys::with_id(ABSORBED, user));
        for earlier in &gone.earlier {
            batch.insert(&keys::with_id(ABSORBED, *earlier), own.to_vec());
        }
        batch.remove(&keys::with_id(OUTBOX, user));
        Ok(batch)
    }

    /// Returns the write that drops a user's outbox entry (its survivor has it).
    pub fn confirm_write(user: u64) -> WriteSet {
        let mut batch = WriteSet::default();
        batch.remove(&keys::with_id(OUTBOX, user));
        batch
    }

    /// Returns the outbox entry of a given-up user, if its transfer is not finished.
    pub fn parcel<T: DeserializeOwned>(&self, user: u64) -> Result<Option<T>, StorageError> {
        self.tree
            .get(keys::with_id(OUTBOX, user))?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Returns the users whose transfer is not finished.
    pub fn parcels(&self) -> Result<Vec<u64>, StorageError> {
        self.tree
            .scan_prefix([OUTBOX])
            .keys()
            .map(|key| key_suffix(&key?, 1))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::tests::store;
    use super::*;
    use crate::domain::Timestamp;

    #[test]
    fn a_user_given_up_and_put_back_is_whole_again() {
        let (_dir, store) = store();
        let record = "record".to_owned();
        let gone = Absorbed {
            user: 7,
            due: Some(Timestamp::from_millis(5)),
            segments: vec![2],
            identities: vec![("cookie".into(), "c7".into())],
            earlier: vec![3],
        };
        let first = Store::user_write(
            7,
            &record,
            &crate::storage::UserWrite {
                new_due: gone.due,
                joined: vec![2],
                ..Default::default()
            },
        )
        .unwrap();
        store.apply([&first]).unwrap();
        store
            .apply([&Store::surrender_write(1, &gone, &"parcel".to_owned()).unwrap()])
            .unwrap();
        assert_eq!(store.load_user::<String>(7).unwrap(), None);
        assert_eq!(store.merged_into(7).unwrap(), Some(1));
        assert_eq!(store.merged_into(3).unwrap(), Some(1));
        assert_eq!(store.user_for_identity("cookie", "c7").unwrap(), Some(1));
        assert_eq!(store.member_count(2), 0);
        assert_eq!(store.parcels().unwrap(), [7]);
        assert_eq!(
            store.parcel::<String>(7).unwrap().as_deref(),
            Some("parcel")
        );

        let log = "log".to_owned();
        store
            .apply([&Store::restore_write(&gone, &record, &log).unwrap()])
            .unwrap();
        assert_eq!(store.load_user::<String>(7).unwrap(), Some(record));
        assert_eq!(store.merged_into(7).unwrap(), None);
        assert_eq!(store.merged_into(3).unwrap(), Some(7));
        assert_eq!(store.user_for_identity("cookie", "c7").unwrap(), Some(7));
        assert_eq!(store.member_count(2), 1);
        assert_eq!(
            store.due_timers(Timestamp::from_millis(9)).unwrap(),
            [(Timestamp::from_millis(5), 7)]
        );
        assert!(store.parcels().unwrap().is_empty());

        store.apply([&Store::confirm_write(7)]).unwrap();
        assert!(store.parcels().unwrap().is_empty());
    }
}
