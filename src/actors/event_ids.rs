//! The idempotency window of one user: fingerprints of the latest `event_id`s applied.
//!
//! A fingerprint is FNV-1a 64 of the id's bytes (`domain::fnv1a`, pinned by a test,
//! since it is persisted): 8 bytes per id instead of the id itself, so a user that sends ids with
//! every event keeps at most 8 KiB for its window in memory and in its record. Two ids of
//! the same user collide with probability about 2^-64 per pair (an event would then be
//! taken for a repeat). Most users never send one: the window is boxed, so that
//! theirs costs 8 bytes in the record (an empty `VecDeque` cost 32).

use std::collections::VecDeque;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::fnv1a;

/// How many recent `event_id`s a user remembers for idempotency.
pub const REMEMBERED_EVENT_IDS: usize = 1024;

/// The latest `event_id` fingerprints of a user, oldest first (none: the window is empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
// Boxed on purpose: 8 bytes in every resident record instead of 32.
#[allow(clippy::box_collection)]
pub struct EventIds(Option<Box<VecDeque<u64>>>);

fn fingerprint(id: &str) -> u64 {
    fnv1a(id.as_bytes())
}

impl EventIds {
    /// Remembers `id`; returns false when it was already remembered (a repeat).
    pub fn insert(&mut self, id: &str) -> bool {
        self.remember(fingerprint(id))
    }

    fn remember(&mut self, print: u64) -> bool {
        let window = self.0.get_or_insert_default();
        if window.contains(&print) {
            return false;
        }
        if window.len() == REMEMBERED_EVENT_IDS {
            window.pop_front();
        }
        window.push_back(print);
        true
    }

    fn prints(&self) -> impl Iterator<Item = &u64> {
        self.0.iter().flat_map(|window| window.iter())
    }

    /// Takes in an absorbed user's window (its ids after this one's).
    pub fn absorb(&mut self, other: EventIds) {
        for print in other.prints() {
            self.remember(*print);
        }
    }
}

/// Stored as the window always was: an array of fingerprints, oldest first.
impl Serialize for EventIds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.prints())
    }
}

impl<'de> Deserialize<'de> for EventIds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<EventIds, D::Error> {
        let window = VecDeque::<u64>::deserialize(deserializer)?;
        Ok(EventIds((!window.is_empty()).then(|| Box::new(window))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_is_caught_within_the_window_and_forgotten_after_it() {
        let mut ids = EventIds::default();
        assert!(ids.insert("e0"));
        assert!(!ids.insert("e0"));
        for i in 1..=REMEMBERED_EVENT_IDS {
            assert!(ids.insert(&format!("e{i}")));
        }
        assert!(ids.insert("e0"), "the oldest left the window");
    }

    #[test]
    fn absorbing_unites_windows() {
        let (mut a, mut b) = (EventIds::default(), EventIds::default());
        a.insert("x");
        b.insert("x");
        b.insert("y");
        a.absorb(b);
        assert!(!a.insert("y"));
        assert_eq!(a.prints().count(), 2);
    }

    #[test]
    fn stored_as_an_array_of_fingerprints_as_before() {
        let empty = EventIds::default();
        let bytes = rmp_serde::to_vec_named(&empty).unwrap();
        assert_eq!(
            bytes,
            rmp_serde::to_vec_named(&VecDeque::<u64>::new()).unwrap()
        );
        assert_eq!(rmp_serde::from_slice::<EventIds>(&bytes).unwrap(), empty);
        let mut ids = EventIds::default();
        ids.insert("e1");
        let old = VecDeque::from([fingerprint("e1")]);
        let bytes = rmp_serde::to_vec_named(&old).unwrap();
        assert_eq!(rmp_serde::to_vec_named(&ids).unwrap(), bytes);
        assert_eq!(rmp_serde::from_slice::<EventIds>(&bytes).unwrap(), ids);
    }
}
