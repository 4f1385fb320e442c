//! The journal's bookkeeping, kept by the committer: the next entry's sequence number,
//! the oldest entry still needed (the floor), and which users have journal parts no
//! snapshot of theirs covers yet ("dirty"), with the first entry that holds one. Entries
//! below the floor are deleted once a flush of sled covers the snapshots that moved it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::domain::Timestamp;
use crate::storage::journal_entry;
use crate::sync::locked;

use super::record::Incoming;

/// One user's step in a journal entry: the events it applied at `now`, after which its
/// record had `version`.
#[derive(Debug, Serialize)]
pub struct JournalPart<'a> {
    /// The user.
    pub user: u64,
    /// The record's version after this step.
    pub version: u64,
    /// The node's time when the events were applied.
    pub now: Timestamp,
    /// The events, in order.
    pub events: &'a [Incoming],
}

/// A journal part read back at start-up or when a dirty user is loaded.
#[derive(Debug, Deserialize)]
pub struct ReplayedPart {
    /// The user.
    pub user: u64,
    /// The record's version after this step.
    pub version: u64,
    /// The node's time when the events were applied.
    pub now: Timestamp,
    /// The events, in order.
    pub events: Vec<Incoming>,
}

/// What a commit says about the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalStep {
    /// The commit adds a part for `user` (already encoded).
    Part { user: u64, bytes: Vec<u8> },
    /// The commit saves `user`'s whole record: it covers every earlier part of the user.
    Saved(u64),
    /// The commit saves `user`'s whole record after applying events, and adds a part for
    /// them: the part is needed only until storage is flushed.
    SavedWithPart { user: u64, bytes: Vec<u8> },
}

#[derive(Debug, Default)]
struct Books {
    next_seq: u64,
    /// Entries below it are removed.
    floor: u64,
    /// Users with parts not covered by a snapshot, and the first entry holding one.
    dirty: HashMap<u64, u64>,
    /// How many dirty users have their first part in each entry (the oldest needed is
    /// the first key).
    firsts: BTreeMap<u64, usize>,
}

impl Books {
    /// Marks `user` dirty since `seq` unless it is dirty already.
    fn mark_dirty(&mut self, user: u64, seq: u64) {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.dirty.entry(user) {
            slot.insert(seq);
            *self.firsts.entry(seq).or_default() += 1;
        }
    }

    /// Marks `user` dirty since `seq` unless it is dirty since earlier.
    fn dirty_since(&mut self, user: u64, seq: u64) {
        match self.dirty.get(&user).copied() {
            Some(first) if first <= seq => {}
            Some(_) => {
                self.clear(user);
                self.mark_dirty(user, seq);
            }
            None => self.mark_dirty(user, seq),
        }
    }

    /// Marks `user` clean; returns the first entry it needed.
    fn clear(&mut self, user: u64) -> Option<u64> {
        let first = self.dirty.remove(&user)?;
        if let Some(count) = self.firsts.get_mut(&first) {
            *count -= 1;
            if *count == 0 {
                self.firsts.remove(&first);
            }
        }
        Some(first)
    }

    fn oldest_needed(&self) -> u64 {
        self.firsts
            .first_key_value()
            .map_or(self.next_seq, |(seq, _)| *seq)
    }
}

/// What recording a group changed, to take back if its batch fails.
#[derive(Debug)]
pub struct Recorded {
    floor: u64,
    cleared: Vec<(u64, u64)>,
}

/// Dirty users past which a clean user's event step saves it whole instead of adding a
/// part: when snapshots fall behind (every event for a different user, faster than they
/// can be saved a second later), the journal and a replay after a crash stay bounded.
pub const MAX_DIRTY_USERS: usize = 65_536;

/// The journal's bookkeeping.
#[derive(Debug, Default)]
pub struct Journal {
    books: Mutex<Books>,
    /// How many users are dirty, for readers that must not wait for the books.
    dirty_users: AtomicUsize,
}

impl Journal {
    /// Starts numbering entries at `next_seq` (after the ones already stored).
    pub fn starting_at(next_seq: u64) -> Journal {
        Journal {
            books: Mutex::new(Books {
                next_seq,
                floor: next_seq,
                ..Books::default()
            }),
            dirty_users: AtomicUsize::new(0),
        }
    }

    /// Records a group's steps, in submission order. Returns the entry that holds its
    /// parts (sequence number and bytes), if any, and what `undo` needs if the group's
    /// writes fail. The floor moves past entries no dirty user needs any more.
    pub fn record<'a>(
        &self,
        steps: impl Iterator<Item = &'a JournalStep>,
    ) -> (Recorded, Option<(u64, Vec<u8>)>) {
        let mut books = locked(&self.books);
        let seq = books.next_seq;
        let mut recorded = Recorded {
            floor: books.floor,
            cleared: Vec::new(),
        };
        let mut parts: Vec<&[u8]> = Vec::new();
        for step in steps {
            match step {
                JournalStep::Part { user, bytes } => {
                    books.mark_dirty(*user, seq);
                    parts.push(bytes);
                }
                JournalStep::Saved(user) => {
                    if let Some(first) = books.clear(*user) {
                        recorded.cleared.push((*user, first));
                    }
                }
                JournalStep::SavedWithPart { user, bytes } => {
                    if let Some(first) = books.clear(*user) {
                        recorded.cleared.push((*user, first));
                    }
                    parts.push(bytes);
                }
            }
        }
        let entry = (!parts.is_empty()).then(|| {
            books.next_seq += 1;
            (seq, journal_entry(parts.into_iter()))
        });
        books.floor = books.floor.max(books.oldest_needed());
        self.dirty_users.store(books.dirty.len(), Ordering::Relaxed);
        (recorded, entry)
    }

    /// Returns the floor: entries before it are needed by no dirty user.
    pub fn floor(&self) -> u64 {
        locked(&self.books).floor
    }

    /// Takes back what a group whose batch failed did to the books: its saved users are
    /// dirty again and no entry counts as removed. (Its own parts stay counted: at
    /// worst an entry is kept longer.)
    pub fn undo(&self, recorded: Recorded) {
        let mut books = locked(&self.books);
        books.floor = books.floor.min(recorded.floor);
        for (user, first) in recorded.cleared {
            books.dirty_since(user, first);
        }
        self.dirty_users.store(books.dirty.len(), Ordering::Relaxed);
    }

    /// Returns whether `user` has parts no snapshot covers.
    pub fn is_dirty(&self, user: u64) -> bool {
        locked(&self.books).dirty.contains_key(&user)
    }

    /// Returns how many users are dirty (as of the last group recorded or undone).
    pub fn dirty_count(&self) -> usize {
        self.dirty_users.load(Ordering::Relaxed)
    }

    /// Returns whether `MAX_DIRTY_USERS` users are dirty.
    pub fn crowded(&self) -> bool {
        self.dirty_count() >= MAX_DIRTY_USERS
    }

    /// Returns how many entries storage holds (some numbers may have none).
    pub fn entries(&self) -> u64 {
        let books = locked(&self.books);
        books.next_seq - books.floor
    }

    /// Returns the sequence number the next entry will get.
    pub fn next_seq(&self) -> u64 {
        locked(&self.books).next_seq
    }

    /// Returns the dirty users whose first uncovered part is in an entry before `seq`.
    pub fn dirty_before(&self, seq: u64) -> Vec<u64> {
        locked(&self.books)
            .dirty
            .iter()
            .filter(|(_, first)| **first < seq)
            .map(|(user, _)| *user)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(user: u64) -> JournalStep {
        JournalStep::Part {
            user,
            bytes: crate::storage::journal_part(&user).unwrap(),
        }
    }

    #[test]
    fn the_floor_passes_entries_once_every_user_in_them_is_saved() {
        let journal = Journal::starting_at(3);
        let (_, first) = journal.record([part(1), part(2)].iter());
        assert_eq!(first.map(|(seq, _)| seq), Some(3));
        assert_eq!(journal.next_seq(), 4);
        let (_, second) = journal.record([part(1), JournalStep::Saved(2)].iter());
        assert_eq!(second.map(|(seq, _)| seq), Some(4));
        assert!(journal.is_dirty(1) && !journal.is_dirty(2));
        assert_eq!(journal.dirty_before(4), vec![1]);
        assert_eq!(journal.dirty_before(3), Vec::<u64>::new());
        assert_eq!(journal.floor(), 3);

        // Saving user 1 covers both entries; a group with no part has no entry.
        let (recorded, third) = journal.record([JournalStep::Saved(1)].iter());
        assert!(third.is_none());
        assert_eq!(journal.floor(), 5);
        assert_eq!((journal.dirty_count(), journal.entries()), (0, 0));

        // Had that group failed, user 1 would still need both entries.
        journal.undo(recorded);
        assert!(journal.is_dirty(1));
        assert_eq!(journal.floor(), 3);
        let _ = journal.record([JournalStep::Saved(1)].iter());
        assert_eq!(journal.floor(), 5);
    }

    #[test]
    fn a_part_saved_with_its_record_leaves_the_user_clean() {
        let journal = Journal::starting_at(0);
        let saved = JournalStep::SavedWithPart {
            user: 1,
            bytes: crate::storage::journal_part(&1u64).unwrap(),
        };
        let (_, entry) = journal.record([part(1), saved].iter());
        let (seq, bytes) = entry.unwrap();
        assert_eq!(seq, 0);
        let parts: Vec<u64> = rmp_serde::from_slice(&bytes[1..]).unwrap();
        assert_eq!(parts, vec![1, 1]);
        assert!(!journal.is_dirty(1));
        assert_eq!(journal.floor(), 1, "the entry is needed only until a flush");
    }

    #[test]
    fn the_journal_is_crowded_from_max_dirty_users_until_one_is_saved() {
        let journal = Journal::starting_at(0);
        let below: Vec<JournalStep> = (1..MAX_DIRTY_USERS as u64).map(part).collect();
        let _ = journal.record(below.iter());
        assert!(!journal.crowded());
        let _ = journal.record([part(0)].iter());
        assert!(journal.crowded());
        let _ = journal.record([JournalStep::Saved(0)].iter());
        assert!(!journal.crowded());
        let _ = journal.record([part(0)].iter());
        let (failed, _) = journal.record([JournalStep::Saved(0)].iter());
        assert!(!journal.crowded());
        journal.undo(failed);
        assert!(journal.crowded(), "a failed save leaves the user dirty");
    }

    #[test]
    fn a_part_after_a_save_in_the_same_group_keeps_the_user_dirty() {
        let journal = Journal::starting_at(0);
        let _ = journal.record([JournalStep::Saved(1), part(1)].iter());
        assert!(journal.is_dirty(1));
        assert_eq!(journal.dirty_before(1), vec![1]);
    }

    #[test]
    fn the_oldest_needed_entry_matches_a_naive_minimum() {
        let journal = Journal::starting_at(0);
        let mut naive: HashMap<u64, u64> = HashMap::new();
        let mut state = 7u64;
        for round in 0..2000u64 {
            state = crate::actors::mix(state + round);
            let user = state % 50;
            let seq = journal.next_seq();
            let before = naive.get(&user).copied();
            let saves = state % 3 == 0;
            let step = if saves {
                naive.remove(&user);
                JournalStep::Saved(user)
            } else {
                naive.entry(user).or_insert(seq);
                part(user)
            };
            // Half the time the same step twice in one group (two steps of one user).
            let steps = if round % 2 == 0 {
                vec![step.clone(), step]
            } else {
                vec![step]
            };
            let (recorded, _) = journal.record(steps.iter());
            if state % 17 == 0 {
                // The batch failed: a save is taken back.
                journal.undo(recorded);
                if let (true, Some(first)) = (saves, before) {
                    naive.insert(user, first);
                }
            }
            let books = locked(&journal.books);
            let expected = naive.values().min().copied().unwrap_or(books.next_seq);
            assert_eq!(books.oldest_needed(), expected, "round {round}");
            assert_eq!(books.dirty, naive, "round {round}");
            assert_eq!(
                books.firsts.values().sum::<usize>(),
                naive.len(),
                "round {round}"
            );
        }
    }
}
