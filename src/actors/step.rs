//! One step on a user's record — apply events, catch up with time, re-evaluate a
//! segment — and how it is persisted: a step that applies events on a resident user
//! becomes a journal part (its events, a few bytes), unless the user is clean while
//! `journal::MAX_DIRTY_USERS` users are dirty (then it is saved whole, with a part
//! too); a step with no event on a user
//! stored as it is that changed only its membership writes just that (a backfill
//! rewrites no record: a loaded record takes its segments from the stored membership);
//! one that also moved the timer of a resident user writes the timer as its overlay (a
//! time-only flip); any other step saves the whole record (a snapshot) with its timer.
//! Membership changes are written at once in every case, so that member lists never lag
//! behind the pushes.

use crate::domain::Timestamp;
use crate::storage::{journal_part, Store, UserWrite, WriteSet};

use super::committer::{Committer, Durability, Receipt};
use super::hub::Notification;
use super::journal::{JournalPart, JournalStep};
use super::overlay::Overlay;
use super::record::{Effects, Incoming, UserRecord};
use super::storage;
use super::user::UserContext;
use super::view::activity_summaries_where;
use super::ActorError;

/// Journaled steps after which a resident user saves its whole record anyway, so that a
/// replay never has to apply more than this many parts for one user.
pub const SNAPSHOT_EVERY: u32 = 64;

/// What storage holds of a user beyond its record in memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    /// The due of its timer key in storage (its last snapshot's `next_due`).
    pub due: Option<Timestamp>,
    /// Journaled steps since its last snapshot (0: storage holds the record as it is).
    pub unsaved_steps: u32,
    /// Whether `DueSoon` holds a due for it.
    pub due_soon: bool,
    /// Whether storage holds a snapshot of it at all. A new user's first step saves it
    /// whole: a journal part would only be followed by a snapshot a second later.
    pub stored: bool,
}

impl Saved {
    /// A user just loaded from its snapshot (or saved whole).
    pub fn loaded(record: &UserRecord) -> Saved {
        Saved {
            due: record.next_due,
            stored: true,
            ..Saved::default()
        }
    }
}

/// How a step is to be persisted.
#[derive(Clone, Copy, Debug)]
pub enum Persist<'a> {
    /// As a journal part holding these events (a resident user's event step).
    Journal(&'a [Incoming]),
    /// A step with no event on a resident user, or on one a backfill read: when storage
    /// holds the record as it is and only membership changed, as the membership changes
    /// alone; when the timer moved too, with the timer as an overlay; else as a
    /// snapshot. sled rewrites a record only with its page in its cache, which a
    /// resident user's page mostly is not: a backfill of 173k resident users with
    /// overlays took 4.4–5.3 s instead of 5.5–6.2 s (session 6, interleaved runs);
    /// membership alone halved it again (BENCHMARKS.md, session 7). A backfill giving
    /// 755k users of 903k a timer took 10.4–11.6 s with overlays, 14.3–14.8 s with
    /// snapshots (session 8).
    Overlay,
    /// As the membership changes alone when only they changed, else as a snapshot of the
    /// whole record. For a user just loaded from storage, whose page sled has at hand:
    /// there, an overlay (a new key) cost more than the rewrite.
    Snapshot,
}

/// A step's writes, what they mean for the journal, and the notifications they cause,
/// not yet handed to the committer.
pub struct Staged {
    /// The writes.
    pub writes: WriteSet,
    /// What they mean for the journal.
    pub journal: Option<JournalStep>,
    /// The membership changes to push once they are durable.
    pub notifications: Vec<Notification>,
    /// Whether sled must be flushed before they are acknowledged: not for an event step,
    /// whose events the journal file holds.
    pub durability: Durability,
}

impl Staged {
    /// Hands the step to the committer.
    pub fn submit(self, committer: &Committer) -> Receipt {
        committer.submit(
            self.writes,
            self.journal,
            self.notifications,
            self.durability,
        )
    }
}

/// Runs one step on a user's record and returns its writes, what they mean for the
/// journal and the notifications for after the flush, for the caller to submit (a
/// sweep submits many users' steps as one). Used by the user's actor, and by the
/// registry for users not in memory.
///
/// Returns `None` when nothing needed writing.
///
/// Node-wide activity totals can only change when `work` applies events or a pending
/// event becomes due; only then are this user's totals compared before and after, so
/// backfills and timer ticks do not pay for it. With no pending event, only the
/// activity types of the applied events can change, so only those are compared.
pub fn step(
    shared: &UserContext,
    id: u64,
    record: &mut UserRecord,
    saved: &mut Saved,
    persist: Persist<'_>,
    work: impl FnOnce(&mut UserRecord, &UserContext) -> Effects,
) -> Result<Option<Staged>, ActorError> {
    let now = shared.clock.now();
    let applies_events = matches!(persist, Persist::Journal(_));
    let before_segments = record.segments.clone();
    let has_pending = record.state.next_pending(Timestamp::MIN).is_some();
    let touched = |name: &str| match persist {
        Persist::Journal(events) if !has_pending => {
            events.iter().any(|e| *e.event.activity_type == *name)
        }
        _ => true,
    };
    let before_totals =
        (applies_events || has_pending).then(|| activity_summaries_where(record, now, touched));
    let old_due = record.next_due;
    let effects = work(record, shared);
    shared.metrics.rule_evaluations.inc_by(effects.evaluations);
    let changed = effects.dirty || !effects.changes.is_empty() || old_due != record.next_due;
    let journal = match persist {
        Persist::Journal(events)
            if saved.stored
                && saved.unsaved_steps < SNAPSHOT_EVERY
                && (saved.unsaved_steps > 0 || !shared.committer.journal().crowded()) =>
        {
            Some(events)
        }
        _ => None,
    };
    if !changed && (journal.is_some() || saved.unsaved_steps == 0) {
        // Nothing a reader could see changed (buckets may have been compacted, which
        // never changes an answer): skip the write. This keeps backfills and timer
        // ticks that flip nothing read-only.
        return Ok(None);
    }
    let record_unchanged = !effects.dirty && saved.stored && saved.unsaved_steps == 0;
    let (writes, journal_step) = match journal {
        Some(events) => journal_writes(shared, id, record, saved, &before_segments, now, events)?,
        None if record_unchanged && record.next_due == saved.due => (
            Store::index_write(id, &moves_since_saved(record, saved, &before_segments)),
            None,
        ),
        None if record_unchanged && matches!(persist, Persist::Overlay) => (
            overlay_writes(shared, id, record, saved, &before_segments)?,
            None,
        ),
        None => {
            let events = match persist {
                Persist::Journal(events) => Some((now, events)),
                _ => None,
            };
            snapshot_writes(shared, id, record, saved, &before_segments, events)?
        }
    };
    if old_due != record.next_due {
        let delta = i64::from(record.next_due.is_some()) - i64::from(old_due.is_some());
        shared.metrics.timers_pending.add(delta);
    }
    if let Some(before) = before_totals {
        shared
            .totals
            .adjust(&before, &activity_summaries_where(record, now, touched));
    }
    let notifications = effects
        .changes
        .into_iter()
        .map(|change| change.notification(id))
        .collect();
    Ok(Some(Staged {
        writes,
        journal: journal_step,
        notifications,
        durability: if applies_events {
            Durability::Journaled
        } else {
            Durability::Flushed
        },
    }))
}

/// A journal part for the step's events, with the membership it changed; a due earlier
/// than the stored timer goes to `DueSoon` until the next snapshot.
fn journal_writes(
    shared: &UserContext,
    id: u64,
    record: &mut UserRecord,
    saved: &mut Saved,
    before_segments: &[u64],
    now: Timestamp,
    events: &[Incoming],
) -> Result<(WriteSet, Option<JournalStep>), ActorError> {
    let bytes = next_part(id, record, now, events)?;
    let membership = UserWrite::between(None, None, before_segments, &record.segments);
    saved.unsaved_steps += 1;
    if let Some(due) = record.next_due {
        if saved.due.is_none_or(|stored| due < stored) {
            shared.due_soon.remember(id, due);
            saved.due_soon = true;
        }
    }
    Ok((
        Store::index_write(id, &membership),
        Some(JournalStep::Part { user: id, bytes }),
    ))
}

/// Counts a step that applied `events` at `now` in the record's version and encodes its
/// journal part.
fn next_part(
    id: u64,
    record: &mut UserRecord,
    now: Timestamp,
    events: &[Incoming],
) -> Result<Vec<u8>, ActorError> {
    record.version += 1;
    let part = JournalPart {
        user: id,
        version: record.version,
        now,
        events,
    };
    journal_part(&part).map_err(storage)
}

/// The whole record with its timer move and membership changes. A step that applied
/// `events` also gets a journal part for them: the journal file holds them until sled is
/// flushed.
fn snapshot_writes(
    shared: &UserContext,
    id: u64,
    record: &mut UserRecord,
    saved: &mut Saved,
    before_segments: &[u64],
    events: Option<(Timestamp, &[Incoming])>,
) -> Result<(WriteSet, Option<JournalStep>), ActorError> {
    let step = match events {
        Some((now, events)) => JournalStep::SavedWithPart {
            user: id,
            bytes: next_part(id, record, now, events)?,
        },
        None => JournalStep::Saved(id),
    };
    let write = moves_since_saved(record, saved, before_segments);
    let writes = Store::user_write(id, record, &write).map_err(storage)?;
    saved_whole(shared, id, record, saved);
    Ok((writes, Some(step)))
}

/// The timer move and membership changes, with the timer as the user's overlay: the
/// stored record is left as it is.
fn overlay_writes(
    shared: &UserContext,
    id: u64,
    record: &UserRecord,
    saved: &mut Saved,
    before_segments: &[u64],
) -> Result<WriteSet, ActorError> {
    let write = moves_since_saved(record, saved, before_segments);
    let writes = Store::overlay_write(id, &Overlay::of(record), &write).map_err(storage)?;
    stored_as_is(shared, id, record, saved);
    shared.metrics.overlays.inc();
    Ok(writes)
}

/// The timer move from the stored due to the record's, and the membership changes
/// since `before_segments`.
fn moves_since_saved(record: &UserRecord, saved: &Saved, before_segments: &[u64]) -> UserWrite {
    UserWrite::between(
        saved.due,
        record.next_due,
        before_segments,
        &record.segments,
    )
}

/// Notes that `record` is being saved whole: storage will hold it as it is.
pub fn saved_whole(shared: &UserContext, id: u64, record: &UserRecord, saved: &mut Saved) {
    stored_as_is(shared, id, record, saved);
    shared.metrics.snapshots.inc();
}

/// Notes that storage will hold `record` as it is, its timer included.
fn stored_as_is(shared: &UserContext, id: u64, record: &UserRecord, saved: &mut Saved) {
    if saved.due_soon {
        shared.due_soon.forget(id);
    }
    *saved = Saved::loaded(record);
}
