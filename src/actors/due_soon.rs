//! Timers not yet in storage: a resident user whose journaled event moved its next
//! change earlier than the timer key of its last snapshot is kept here until its next
//! snapshot writes the key. The timer service fires these with the stored ones. Lost in
//! a crash, they are not needed after it: start-up replays the journal and saves every
//! user it touched, with its timer.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use crate::domain::Timestamp;
use crate::sync::locked;

#[derive(Debug, Default)]
struct Dues {
    by_time: BTreeSet<(Timestamp, u64)>,
    by_user: HashMap<u64, Timestamp>,
}

/// Users due earlier than their stored timer says.
#[derive(Debug, Default)]
pub struct DueSoon {
    dues: Mutex<Dues>,
}

impl DueSoon {
    /// Remembers that `user` is due at `due`, replacing what it had.
    pub fn remember(&self, user: u64, due: Timestamp) {
        let mut dues = locked(&self.dues);
        if let Some(old) = dues.by_user.insert(user, due) {
            dues.by_time.remove(&(old, user));
        }
        dues.by_time.insert((due, user));
    }

    /// Forgets `user` (its snapshot wrote its timer).
    pub fn forget(&self, user: u64) {
        let mut dues = locked(&self.dues);
        if let Some(old) = dues.by_user.remove(&user) {
            dues.by_time.remove(&(old, user));
        }
    }

    /// Takes the users due at or before `now`, earliest first.
    pub fn take_due(&self, now: Timestamp) -> Vec<(Timestamp, u64)> {
        let mut dues = locked(&self.dues);
        let mut taken = Vec::new();
        while let Some(&(due, user)) = dues.by_time.first() {
            if due > now {
                break;
            }
            dues.by_time.pop_first();
            dues.by_user.remove(&user);
            taken.push((due, user));
        }
        taken
    }

    /// Returns the earliest due.
    pub fn first(&self) -> Option<Timestamp> {
        locked(&self.dues).by_time.first().map(|(due, _)| *due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_one_due_per_user_and_hands_out_the_due_ones() {
        let t = Timestamp::from_millis;
        let soon = DueSoon::default();
        soon.remember(1, t(50));
        soon.remember(1, t(20));
        soon.remember(2, t(30));
        soon.remember(3, t(10));
        soon.forget(3);
        assert_eq!(soon.first(), Some(t(20)));
        assert_eq!(soon.take_due(t(30)), vec![(t(20), 1), (t(30), 2)]);
        assert_eq!(soon.first(), None);
    }
}
