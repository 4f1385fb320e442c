//! The compact state of one user that every rule is evaluated from.
//!
//! It holds attributes and traits with the time each was set, first/last seen, and per
//! activity type exact totals, first/last times and windowed buckets (`activity`).
//! Events may arrive in any order. An event dated after the `now` it is applied at is
//! kept aside (`pending`) and counts from the moment it is due; every query takes `now`
//! and sees exactly the events due by then.
//!
//! Contract: the `now` given to a state never goes backwards (the node's clock only
//! moves forward while users exist).

mod activity;

use serde::{Deserialize, Serialize};

pub use activity::{ActivityStats, SHORT_WINDOW_MS};

use crate::domain::{Event, Timestamp, TraitValue};

use super::ir::Attr;

/// A value with the event time that set it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stamped<T> {
    /// The value.
    #[serde(rename = "v")]
    pub value: T,
    /// The `created_at` of the event that set it.
    #[serde(rename = "t")]
    pub at: Timestamp,
}

impl<T> Stamped<T> {
    /// Replaces the value if `at` is as late or later (a tie goes to what came later).
    fn offer(slot: &mut Option<Stamped<T>>, value: T, at: Timestamp) {
        if slot.as_ref().is_none_or(|s| at >= s.at) {
            *slot = Some(Stamped { value, at });
        }
    }
}

/// Everything the rules can read about one user.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    country: Option<Stamped<Box<str>>>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    region: Option<Stamped<Box<str>>>,
    #[serde(rename = "dt", default, skip_serializing_if = "Option::is_none")]
    device_type: Option<Stamped<Box<str>>>,
    /// Sorted by name.
    #[serde(rename = "tr", default, skip_serializing_if = "Vec::is_empty")]
    traits: Vec<(Box<str>, Stamped<TraitValue>)>,
    /// Sorted by activity type.
    #[serde(rename = "a", default)]
    activities: Vec<(Box<str>, ActivityStats)>,
    /// Events not yet due, ascending by `created_at`, ties in arrival order.
    #[serde(rename = "p", default, skip_serializing_if = "Vec::is_empty")]
    pending: Vec<Event>,
}

impl UserState {
    /// Applies one event seen at `now`, keeping windows answerable up to `retention_ms`.
    pub fn apply(&mut self, event: &Event, now: Timestamp, retention_ms: i64) {
        self.settle(now, retention_ms);
        if event.created_at > now {
            let at = self
                .pending
                .partition_point(|e| e.created_at <= event.created_at);
            self.pending.insert(at, event.clone());
        } else {
            self.fold(event, now, retention_ms);
        }
    }

    /// Folds the events that are due by `now` and compacts buckets. Answers never change
    /// by it; it only keeps the state small.
    pub fn settle(&mut self, now: Timestamp, retention_ms: i64) {
        let due = self.pending.partition_point(|e| e.created_at <= now);
        if due > 0 {
            let events: Vec<Event> = self.pending.drain(..due).collect();
            self.pending.shrink_to_fit();
            for event in &events {
                self.fold(event, now, retention_ms);
            }
        }
        for (_, stats) in &mut self.activities {
            stats.compact(now, retention_ms);
        }
    }

    fn fold(&mut self, event: &Event, now: Timestamp, retention_ms: i64) {
        let at = event.created_at;
        let i = match self
            .activities
            .binary_search_by(|(name, _)| name.as_ref().cmp(&event.activity_type))
        {
            Ok(i) => i,
            Err(i) => {
                let entry = (event.activity_type.clone(), ActivityStats::default());
                insert_exact(&mut self.activities, i, entry);
                i
            }
        };
        self.activities[i].1.record(at, now, retention_ms);
        let attributes = [
            (&mut self.country, &event.country),
            (&mut self.region, &event.region),
            (&mut self.device_type, &event.device_type),
        ];
        for (slot, value) in attributes {
            if let Some(value) = value {
                Stamped::offer(slot, value.clone(), at);
            }
        }
        for (name, value) in &event.traits {
            self.set_trait(name, value.clone(), at);
        }
    }

    fn set_trait(&mut self, name: &str, value: TraitValue, at: Timestamp) {
        match self.traits.binary_search_by(|(n, _)| n.as_ref().cmp(name)) {
            Ok(i) => {
                let mut slot = Some(self.traits[i].1.clone());
                Stamped::offer(&mut slot, value, at);
                if let Some(slot) = slot {
                    self.traits[i].1 = slot;
                }
            }
            Err(i) => insert_exact(&mut self.traits, i, (name.into(), Stamped { value, at })),
        }
    }

    /// Adds `other` (an absorbed user) into this one: counts add, first/last take the
    /// min/max, attributes and traits the latest by time (a tie keeps this user's).
    pub fn absorb(&mut self, other: &UserState, now: Timestamp, retention_ms: i64) {
        for (name, stats) in &other.activities {
            match self.activities.binary_search_by(|(n, _)| n.cmp(name)) {
                Ok(i) => self.activities[i].1.absorb(stats, now, retention_ms),
                Err(i) => {
                    let mut fresh = ActivityStats::default();
                    fresh.absorb(stats, now, retention_ms);
                    insert_exact(&mut self.activities, i, (name.clone(), fresh));
                }
            }
        }
        let attributes = [
            (&mut self.country, &other.country),
            (&mut self.region, &other.region),
            (&mut self.device_type, &other.device_type),
        ];
        for (slot, theirs) in attributes {
            if let Some(theirs) = theirs {
                if slot.as_ref().is_none_or(|mine| theirs.at > mine.at) {
                    *slot = Some(theirs.clone());
                }
            }
        }
        for (name, theirs) in &other.traits {
            match self.traits.binary_search_by(|(n, _)| n.cmp(name)) {
                Ok(i) if theirs.at > self.traits[i].1.at => self.traits[i].1 = theirs.clone(),
                Ok(_) => {}
                Err(i) => insert_exact(&mut self.traits, i, (name.clone(), theirs.clone())),
            }
        }
        for event in &other.pending {
            let at = self
                .pending
                .partition_point(|e| e.created_at <= event.created_at);
            self.pending.insert(at, event.clone());
        }
        self.settle(now, retention_ms);
    }

    fn due(&self, now: Timestamp) -> &[Event] {
        &self.pending[..self.pending.partition_point(|e| e.created_at <= now)]
    }

    fn stats(&self, activity: &str) -> Option<&ActivityStats> {
        self.activities
            .binary_search_by(|(n, _)| n.as_ref().cmp(activity))
            .ok()
            .map(|i| &self.activities[i].1)
    }

    /// Returns `count(activity)` or, with a window, `count(activity, window)` at `now`.
    pub fn count(&self, activity: &str, window: Option<i64>, now: Timestamp) -> u64 {
        let folded = self.stats(activity).map_or(0, |s| match window {
            None => s.count,
            Some(w) => s.count_in(w, now),
        });
        let edge = window.map_or(Timestamp::MIN, |w| now.add_millis(-w));
        let due = self
            .due(now)
            .iter()
            .filter(|e| *e.activity_type == *activity && e.created_at > edge)
            .count();
        folded + due as u64
    }

    /// Returns the first instant after `now` at which an event leaves `count(activity, window)`.
    pub fn next_departure(&self, activity: &str, window: i64, now: Timestamp) -> Option<Timestamp> {
        let edge = now.add_millis(-window);
        let folded = self
            .stats(activity)
            .and_then(|s| s.next_departure(window, now));
        let due = self
            .due(now)
            .iter()
            .filter(|e| *e.activity_type == *activity && e.created_at > edge)
            .map(|e| e.created_at.add_millis(window))
            .min();
        folded.into_iter().chain(due).min()
    }

    /// Returns `last_seen(activity)` (any activity when `None`) at `now`.
    pub fn last_seen(&self, activity: Option<&str>, now: Timestamp) -> Option<Timestamp> {
        let folded = match activity {
            Some(a) => self.stats(a).and_then(|s| s.last),
            None => self.activities.iter().filter_map(|(_, s)| s.last).max(),
        };
        let due = self
            .due(now)
            .iter()
            .rev()
            .find(|e| activity.is_none_or(|a| *e.activity_type == *a))
            .map(|e| e.created_at);
        folded.max(due)
    }

    /// Returns `first_seen(activity)` (any activity when `None`) at `now`.
    pub fn first_seen(&self, activity: Option<&str>, now: Timestamp) -> Option<Timestamp> {
        let folded = match activity {
            Some(a) => self.stats(a).and_then(|s| s.first),
            None => self.activities.iter().filter_map(|(_, s)| s.first).min(),
        };
        let due = self
            .due(now)
            .iter()
            .find(|e| activity.is_none_or(|a| *e.activity_type == *a))
            .map(|e| e.created_at);
        match (folded, due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Returns the value of a built-in attribute at `now`.
    pub fn attribute(&self, attr: Attr, now: Timestamp) -> Option<&str> {
        let (slot, pick): (_, fn(&Event) -> Option<&str>) = match attr {
            Attr::Country => (&self.country, |e| e.country.as_deref()),
            Attr::Region => (&self.region, |e| e.region.as_deref()),
            Attr::DeviceType => (&self.device_type, |e| e.device_type.as_deref()),
        };
        let folded = slot.as_ref().map(|s| (s.at, &*s.value));
        let due = self
            .due(now)
            .iter()
            .rev()
            .find_map(|e| pick(e).map(|v| (e.created_at, v)));
        latest(folded, due)
    }

    /// Returns the value of trait `name` at `now`.
    pub fn trait_value(&self, name: &str, now: Timestamp) -> Option<&TraitValue> {
        let folded = self
            .traits
            .binary_search_by(|(n, _)| n.as_ref().cmp(name))
            .ok()
            .map(|i| (self.traits[i].1.at, &self.traits[i].1.value));
        let due = self.due(now).iter().rev().find_map(|e| {
            e.traits
                .iter()
                .rev()
                .find(|(n, _)| **n == *name)
                .map(|(_, v)| (e.created_at, v))
        });
        latest(folded, due)
    }

    /// Returns when the next event kept aside becomes due, if any is after `now`.
    pub fn next_pending(&self, now: Timestamp) -> Option<Timestamp> {
        self.pending
            .iter()
            .map(|e| e.created_at)
            .find(|at| *at > now)
    }

    /// Iterates the activity types of the events folded so far (call `settle` first), in
    /// name order.
    pub fn activity_types(&self) -> impl Iterator<Item = &str> {
        self.activities.iter().map(|(n, _)| n.as_ref())
    }

    /// Iterates the names of the traits set on this user, in name order.
    pub fn trait_names(&self) -> impl Iterator<Item = &str> {
        self.traits.iter().map(|(n, _)| n.as_ref())
    }
}

/// Inserts `item` at `at` growing `items` by exactly one: a user's lists are short and
/// live long, and doubling would leave most of their memory unused.
fn insert_exact<T>(items: &mut Vec<T>, at: usize, item: T) {
    items.reserve_exact(1);
    items.insert(at, item);
}

/// Picks the later of a folded value and a due pending one (pending wins a tie: it
/// arrived after everything folded at that instant).
fn latest<'a, T: ?Sized>(
    folded: Option<(Timestamp, &'a T)>,
    due: Option<(Timestamp, &'a T)>,
) -> Option<&'a T> {
    match (folded, due) {
        (Some((a, value)), Some((b, _))) if a > b => Some(value),
        (_, Some((_, value))) => Some(value),
        (folded, None) => folded.map(|(_, v)| v),
    }
}

#[cfg(test)]
mod tests;
