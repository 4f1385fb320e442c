//! Loading users back from storage: the snapshot (the record saved whole, with its
//! overlay), then the journal parts it does not cover. At start-up every part is
//! replayed and every user it touched saved whole, so the journal starts empty; while the
//! node runs, a user is replayed only if it left memory with parts unsaved (a failed
//! write). A snapshot that fails to decode is counted, logged and rebuilt from the
//! journal, never dropped silently.

use std::collections::{HashMap, HashSet};

use tracing::{error, info};

use crate::domain::Timestamp;
use crate::storage::{StorageError, Store, UserWrite, WriteSet};

use super::catalog::Segments;
use super::journal::ReplayedPart;
use super::overlay::load_record;
use super::record::UserRecord;
use super::step::Saved;
use super::storage;
use super::user::UserContext;
use super::ActorError;

/// Users saved per batch at start-up.
const SAVE_CHUNK: usize = 4096;

/// A user being rebuilt: its record and the timer its snapshot has in storage.
struct Rebuilt {
    record: UserRecord,
    stored_due: Option<crate::domain::Timestamp>,
    applied: u32,
    /// Whether storage has a snapshot of it.
    stored: bool,
}

/// Loads a user's snapshot to rebuild on; `None` for a user absorbed by a merge (its
/// parts were merged into the survivor) and for an unknown one when `create` is false.
fn snapshot(shared: &UserContext, user: u64, create: bool) -> Result<Option<Rebuilt>, ActorError> {
    let store = &shared.store;
    let stored = match load_record(store, user) {
        Ok(stored) => stored,
        Err(StorageError::Decode(reason)) => {
            shared.metrics.snapshot_decode_failures.inc();
            error!(user_id = user, %reason, "user snapshot does not decode; rebuilding it from the journal");
            let stored_due = store.timer_dues_of(user).map_err(storage)?.first().copied();
            // Not `stored`: its next step saves it whole over the bytes that do not
            // decode, never an overlay beside them.
            return Ok(Some(Rebuilt {
                record: UserRecord::default(),
                stored_due,
                applied: 0,
                stored: false,
            }));
        }
        Err(e) => return Err(storage(e)),
    };
    Ok(match stored {
        Some(record) => Some(Rebuilt {
            stored_due: record.next_due,
            record,
            applied: 0,
            stored: true,
        }),
        None if create && store.merged_into(user).map_err(storage)?.is_none() => Some(Rebuilt {
            record: UserRecord::default(),
            stored_due: None,
            applied: 0,
            stored: false,
        }),
        None => None,
    })
}

fn apply(rebuilt: &mut Rebuilt, part: &ReplayedPart, segments: &Segments, retention_ms: i64) {
    if part.version <= rebuilt.record.version {
        return;
    }
    let _pushed_before = rebuilt
        .record
        .apply(&part.events, segments, part.now, retention_ms);
    rebuilt.record.version = part.version;
    rebuilt.applied += 1;
}

/// Loads a user, replaying its journal parts when the journal counts it dirty. `None`
/// when it has no record; a user absorbed by a merge also has none.
pub fn load_user(
    shared: &UserContext,
    user: u64,
) -> Result<Option<(UserRecord, Saved)>, ActorError> {
    let dirty = shared.committer.journal().is_dirty(user);
    let Some(mut rebuilt) = snapshot(shared, user, dirty)? else {
        return Ok(None);
    };
    if dirty {
        let segments = shared.catalog.snapshot();
        for (_, parts) in shared.store.journal::<ReplayedPart>().map_err(storage)? {
            for part in parts.iter().filter(|part| part.user == user) {
                apply(&mut rebuilt, part, &segments, shared.retention_ms);
            }
        }
        info!(
            user_id = user,
            parts = rebuilt.applied,
            "user replayed from the journal"
        );
    }
    let mut saved = Saved {
        due: rebuilt.stored_due,
        // Saved whole on its next snapshot even when no part was found: the journal
        // counts it dirty until then.
        unsaved_steps: u32::from(dirty).max(rebuilt.applied),
        due_soon: false,
        stored: rebuilt.stored,
    };
    if let Some(due) = rebuilt.record.next_due {
        if saved.due.is_none_or(|stored| due < stored) {
            shared.due_soon.remember(user, due);
            saved.due_soon = true;
        }
    }
    Ok(Some((rebuilt.record, saved)))
}

/// Start-up: replays every journal part on its user's snapshot and saves each user
/// touched whole (record, timer, the membership storage lacks; a user storage had no
/// record of gets back the identities a crash may have taken from the index). Returns
/// how many users were replayed. The caller then checkpoints, which makes the saves
/// durable and deletes the journal's files.
///
/// The parts are read once and grouped by user, in journal order; the users are then
/// rebuilt and saved on `REPLAY_THREADS` threads, each loading, replaying and saving its
/// own share (a user's snapshot is read at random in storage: most of the time goes
/// there and in decoding, and sled serves readers on several threads at once).
pub fn replay_journal(shared: &UserContext) -> Result<usize, ActorError> {
    let store = &shared.store;
    let mut parts_of: HashMap<u64, Vec<ReplayedPart>> = HashMap::new();
    let mut parts_read = 0usize;
    // Users with a part sled may hold only some of the writes of (see `replay_users`).
    let mut unsettled = HashSet::new();
    let applied = store.journal_applied().map_err(storage)?;
    for (seq, parts) in store.journal::<ReplayedPart>().map_err(storage)? {
        for part in parts {
            parts_read += 1;
            if seq >= applied {
                unsettled.insert(part.user);
            }
            parts_of.entry(part.user).or_default().push(part);
        }
    }
    let dues = if parts_of.is_empty() {
        HashMap::new()
    } else {
        let users: HashSet<u64> = parts_of.keys().copied().collect();
        store.timer_dues_of_users(&users).map_err(storage)?
    };
    let users: Vec<(u64, Vec<ReplayedPart>)> = parts_of.into_iter().collect();
    let share = users.len().div_ceil(REPLAY_THREADS).max(1);
    let replayed = std::thread::scope(|scope| {
        let known = Known {
            dues: &dues,
            unsettled: &unsettled,
        };
        let workers: Vec<_> = users
            .chunks(share)
            .map(|users| scope.spawn(move || replay_users(shared, users, known)))
            .collect();
        workers.into_iter().try_fold(0usize, |total, worker| {
            let replayed = worker
                .join()
                .map_err(|_| ActorError::Storage("a replay thread panicked".into()))??;
            Ok::<usize, ActorError>(total + replayed)
        })
    })?;
    store.clear_sled_journal().map_err(storage)?;
    if parts_read > 0 {
        info!(parts = parts_read, users = replayed, "journal replayed");
    }
    Ok(replayed)
}

/// Threads that rebuild users at start-up.
const REPLAY_THREADS: usize = 2;

/// What replay knows of the users it rebuilds.
#[derive(Clone, Copy)]
struct Known<'a> {
    /// The dues of the timer keys storage holds.
    dues: &'a HashMap<u64, Vec<Timestamp>>,
    /// Users with a part in an entry sled may hold only some of the writes of.
    unsettled: &'a HashSet<u64>,
}

/// Rebuilds `users` from their snapshots and parts and saves each one a part changed
/// whole, with its timer keys and membership set right, `SAVE_CHUNK` users per batch;
/// returns how many were saved.
///
/// An unsettled user is saved even when its stored record covers its parts: the
/// committer applies event steps op by op (`Store::apply_each`) and flushes sled only
/// at checkpoints, so a crash may have kept a step's record and lost its timer and
/// membership writes, or kept some of them without the record.
fn replay_users(
    shared: &UserContext,
    users: &[(u64, Vec<ReplayedPart>)],
    known: Known<'_>,
) -> Result<usize, ActorError> {
    let store = &shared.store;
    let segments = shared.catalog.snapshot();
    let mut sets = Vec::with_capacity(SAVE_CHUNK);
    let mut replayed = 0;
    for (user, parts) in users {
        let Some(mut rebuilt) = snapshot(shared, *user, true)? else {
            continue;
        };
        for part in parts {
            apply(&mut rebuilt, part, &segments, shared.retention_ms);
        }
        if let Some(last) = parts.last() {
            // Every segment, not only those the parts' events touch: the membership a
            // kept record's step wrote may be what the crash lost.
            let _changes = rebuilt
                .record
                .rebuild(&segments, last.now, shared.retention_ms, |_| {});
        }
        if rebuilt.applied == 0 && !known.unsettled.contains(user) {
            continue;
        }
        if !rebuilt.stored {
            reclaim_identities(store, *user, &rebuilt.record)?;
        }
        let found = known.dues.get(user).map_or(&[][..], Vec::as_slice);
        let mut set = Store::timer_repair(*user, found, rebuilt.record.next_due);
        set.append(save_write(store, *user, &rebuilt, &segments)?);
        sets.push(set);
        replayed += 1;
        if sets.len() == SAVE_CHUNK {
            store.apply(sets.iter()).map_err(storage)?;
            sets.clear();
        }
    }
    if !sets.is_empty() {
        store.apply(sets.iter()).map_err(storage)?;
    }
    Ok(replayed)
}

/// Gives `user` back its identities that nobody owns. A new user's identity is written to
/// the index when it is first seen, and reaches sled's files at the next flush: a crash
/// before it leaves the user's events in the journal and its identity with no owner.
/// (An identity someone owns was merged or linked since, through a flush; it stays.)
fn reclaim_identities(store: &Store, user: u64, record: &UserRecord) -> Result<(), ActorError> {
    for (id_type, id) in &record.identities {
        if store
            .user_for_identity(id_type, id)
            .map_err(storage)?
            .is_none()
        {
            store
                .claim_identity(id_type, id, None, user)
                .map_err(storage)?;
        }
    }
    Ok(())
}

/// The writes that save a replayed user whole, with whatever membership storage lacks
/// (compared key by key: parts wrote membership as they went). Its timer keys are set
/// right apart (`Store::timer_repair`).
fn save_write(
    store: &Store,
    user: u64,
    rebuilt: &Rebuilt,
    segments: &Segments,
) -> Result<WriteSet, ActorError> {
    let mut write = UserWrite::default();
    for segment in segments.keys() {
        let stored = store.is_member(*segment, user);
        match (stored, rebuilt.record.segments.contains(segment)) {
            (false, true) => write.joined.push(*segment),
            (true, false) => write.left.push(*segment),
            _ => {}
        }
    }
    Store::user_write(user, &rebuilt.record, &write).map_err(storage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::journal::JournalPart;
    use crate::actors::record::Incoming;
    use crate::actors::registry::tests::{put_segment, registry};
    use crate::actors::registry::Registry;
    use crate::domain::Event;
    use crate::storage::{journal_entry, journal_part, JournalFile};

    const STALE: Timestamp = Timestamp::from_millis(5);

    /// User 5's first step, in journal entry 0, cut short by a crash while applied op
    /// by op: its record made it, its timer and membership did not, and a timer key it
    /// was moving away from stayed. Returns the due the record has.
    fn cut_short(store: &Store) -> (Registry, Timestamp) {
        let at = Timestamp::from_millis(1_000_000);
        let events = vec![Incoming {
            identity: ("cookie".into(), "c5".into()),
            event: Event::new("page_viewed", at),
            event_id: None,
            links: Vec::new(),
        }];
        let part = JournalPart {
            user: 5,
            version: 1,
            now: at,
            events: &events,
        };
        let part = journal_part(&part).unwrap();
        let mut file = JournalFile::open(&store.journal_dir()).unwrap();
        file.append(0, &journal_entry([part.as_slice()].into_iter()))
            .unwrap();
        drop(file);

        let registry = registry(store.clone());
        put_segment(&registry, 1, "last_seen(page_viewed) > now - 7d");
        let mut record = UserRecord::default();
        let segments = registry.context().catalog.snapshot();
        let _changes = record.apply(&events, &segments, at, 0);
        record.version = 1;
        let due = record.next_due.expect("the segment ends on time alone");
        let mut kept = Store::user_write(5, &record, &UserWrite::default()).unwrap();
        kept.append(Store::timer_repair(5, &[], Some(STALE)));
        store.apply([&kept]).unwrap();
        assert!(!store.is_member(1, 5));
        (registry, due)
    }

    #[actix_rt::test]
    async fn replay_sets_right_the_timer_and_membership_beside_a_record_that_made_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let (registry, due) = cut_short(&store);
        assert_eq!(replay_journal(registry.context()).unwrap(), 1);
        assert_eq!(store.timer_dues_of(5).unwrap(), vec![due]);
        assert!(store.is_member(1, 5));
        let saved = load_record(&store, 5).unwrap().unwrap();
        assert_eq!((saved.version, saved.next_due), (1, Some(due)));
    }

    #[actix_rt::test]
    async fn a_user_whose_entries_sled_wholly_holds_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let (registry, _) = cut_short(&store);
        store.set_journal_applied(1).unwrap();
        assert_eq!(replay_journal(registry.context()).unwrap(), 0);
        assert_eq!(store.timer_dues_of(5).unwrap(), vec![STALE]);
    }
}
