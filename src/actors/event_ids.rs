//! The idempotency window of one user: fingerprints of the latest `event_id`s applied.
//!
//! A fingerprint is FNV-1a 64 of the id's bytes (`domain::fnv1a`, pinned by a test,
//! since it is persisted): 8 bytes per id instead of the id itself, so a user that sends ids with
//! every event keeps at most 8 KiB for its window in memory and in its record. Two ids of
//! the same user collide with probability about 2^-64 per pair (an event would then be
//! taken for a repeat).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::domain::fnv1a;

/// How many recent `event_id`s a user remembers for idempotency.
pub const REMEMBERED_EVENT_IDS: usize = 1024;

/// The latest `event_id` fingerprints of a user, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventIds(VecDeque<u64>);

fn fingerprint(id: &str) -> u64 {
    fnv1a(id.as_bytes())
}

impl EventIds {
    /// Remembers `id`; returns false when it was already remembered (a repeat).
    pub fn insert(&mut self, id: &str) -> bool {
        self.remember(fingerprint(id))
    }

    fn remember(&mut self, print: u64) -> bool {
        if self.0.contains(&print) {
            return false;
        }
        if self.0.len() == REMEMBERED_EVENT_IDS {
            self.0.pop_front();
        }
        self.0.push_back(print);
        true
    }

    /// Takes in an absorbed user's window (its ids after this one's).
    pub fn absorb(&mut self, other: EventIds) {
        for print in other.0 {
            self.remember(print);
        }
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
        assert_eq!(a.0.len(), 2);
    }
}
