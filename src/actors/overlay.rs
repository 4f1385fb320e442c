//! A user's overlay: its timer, stored beside its record by a resident user's step that
//! moved its timer and changed nothing else but membership (a time-only flip). Such a
//! step writes a few bytes instead of rewriting the whole record; loading the user
//! applies the overlay, and the next whole save of the record drops it. Membership needs
//! no overlay: loads take it from the stored membership. (Overlays written before also
//! hold the segments; decoding ignores them.)

use serde::{Deserialize, Serialize};
use tracing::error;

use crate::domain::Timestamp;
use crate::storage::{StorageError, Store, StoredUser};

use super::record::UserRecord;

/// A user's timer, when newer than its record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overlay {
    /// When the user must be evaluated again with no new event.
    pub next_due: Option<Timestamp>,
}

impl Overlay {
    /// The timer of `record`.
    pub fn of(record: &UserRecord) -> Overlay {
        Overlay {
            next_due: record.next_due,
        }
    }

    fn apply_to(self, record: &mut UserRecord) {
        record.next_due = self.next_due;
    }
}

/// Loads a user's record with its overlay applied and its segments as the stored
/// membership has them (a step that changed only membership wrote just that). An overlay
/// that does not decode is logged and skipped: the record's own timer is older but whole.
pub fn load_record(store: &Store, user: u64) -> Result<Option<UserRecord>, StorageError> {
    let Some(record) = store.load_user::<UserRecord>(user)? else {
        return Ok(None);
    };
    completed(store, user, record, store.load_overlay::<Overlay>(user)).map(Some)
}

/// A user's record as `load_record` gives it, from what a scan read (`Store::read_users`).
pub fn stored_record(store: &Store, stored: &StoredUser) -> Result<UserRecord, StorageError> {
    completed(store, stored.id, stored.record()?, stored.overlay())
}

/// Applies the overlay to the stored record and takes its segments from the stored
/// membership.
fn completed(
    store: &Store,
    user: u64,
    mut record: UserRecord,
    overlay: Result<Option<Overlay>, StorageError>,
) -> Result<UserRecord, StorageError> {
    match overlay {
        Ok(Some(overlay)) => overlay.apply_to(&mut record),
        Ok(None) => {}
        Err(StorageError::Decode(reason)) => {
            error!(user_id = user, %reason, "user overlay does not decode; using its record's timer");
        }
        Err(e) => return Err(e),
    }
    record.segments = store.segments_of(user).into_iter().collect();
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{UserWrite, WriteSet};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        (dir, store)
    }

    fn ms(millis: i64) -> Timestamp {
        Timestamp::from_millis(millis)
    }

    fn record(segments: &[u64], due: Option<i64>) -> UserRecord {
        let mut record = UserRecord {
            next_due: due.map(ms),
            ..UserRecord::default()
        };
        for id in segments {
            record.segments.insert(*id);
        }
        record
    }

    fn apply(store: &Store, set: WriteSet) {
        store.apply([&set]).unwrap();
    }

    #[test]
    fn an_overlay_changes_membership_and_timer_until_the_record_is_saved_again() {
        let (_dir, store) = store();
        let saved = record(&[1], Some(10));
        let first = UserWrite::between(None, Some(ms(10)), &[], &[1]);
        apply(&store, Store::user_write(7, &saved, &first).unwrap());
        let raw = |store: &Store| store.load_user::<UserRecord>(7).unwrap();
        assert_eq!(load_record(&store, 7).unwrap(), Some(saved.clone()));

        let flipped = record(&[1, 2], Some(20));
        let write = UserWrite::between(Some(ms(10)), Some(ms(20)), &[1], &[1, 2]);
        apply(
            &store,
            Store::overlay_write(7, &Overlay::of(&flipped), &write).unwrap(),
        );
        assert_eq!(
            raw(&store),
            Some(saved),
            "the record itself is not rewritten"
        );
        assert_eq!(load_record(&store, 7).unwrap(), Some(flipped));
        assert!(store.is_member(2, 7));
        assert_eq!(store.timer_dues_of(7).unwrap(), vec![ms(20)]);

        let whole = record(&[2], Some(20));
        let left = UserWrite::between(Some(ms(20)), Some(ms(20)), &[1, 2], &[2]);
        apply(&store, Store::user_write(7, &whole, &left).unwrap());
        assert_eq!(store.load_overlay::<Overlay>(7).unwrap(), None);
        assert_eq!(load_record(&store, 7).unwrap(), Some(whole.clone()));
        assert_eq!(load_record(&store, 8).unwrap(), None);

        // A step that changed only membership writes just that: the record keeps its
        // old segments, and a load takes the stored membership.
        let joined = UserWrite::between(Some(ms(20)), Some(ms(20)), &[2], &[2, 3]);
        apply(&store, Store::index_write(7, &joined));
        assert_eq!(raw(&store), Some(whole));
        assert_eq!(
            load_record(&store, 7).unwrap(),
            Some(record(&[2, 3], Some(20)))
        );
    }

    #[test]
    fn an_overlay_written_with_segments_still_loads() {
        #[derive(Serialize)]
        struct WithSegments {
            segments: Vec<u64>,
            next_due: Option<Timestamp>,
        }
        let (_dir, store) = store();
        let saved = record(&[], Some(10));
        apply(
            &store,
            Store::user_write(7, &saved, &UserWrite::default()).unwrap(),
        );
        let older = WithSegments {
            segments: vec![4],
            next_due: Some(ms(30)),
        };
        let moved = UserWrite::between(Some(ms(10)), Some(ms(30)), &[], &[]);
        apply(&store, Store::overlay_write(7, &older, &moved).unwrap());
        let loaded = load_record(&store, 7).unwrap().unwrap();
        assert_eq!(loaded.next_due, Some(ms(30)));
        assert!(
            loaded.segments.is_empty(),
            "membership comes from the stored bits"
        );
    }
}
