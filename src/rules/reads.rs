//! What a rule reads: the activity types, attributes and traits an event must touch to
//! possibly change the rule's value, and the windows the state must keep.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::Event;

use super::ir::{Attr, Cond, TimeBase, Value};

/// The inputs of one rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    /// Activity types read by name (`count(a)`, `last_seen(a)`, …).
    pub activities: BTreeSet<Box<str>>,
    /// True when the rule reads every activity (`last_seen()`, `first_seen()`).
    pub any_activity: bool,
    /// Built-in attributes read.
    pub attributes: BTreeSet<Attr>,
    /// Trait names read.
    pub traits: BTreeSet<Box<str>>,
    /// The longest window read per activity type.
    pub windows: BTreeMap<Box<str>, i64>,
    /// True when the value can change with time alone (the rule reads `now` or a window).
    pub time_dependent: bool,
}

impl Reads {
    /// Returns the reads of a lowered rule.
    pub(crate) fn of(cond: &Cond) -> Reads {
        let mut reads = Reads::default();
        reads.cond(cond);
        reads
    }

    /// Returns whether applying `event` could change the rule's value.
    pub fn affected_by(&self, event: &Event) -> bool {
        self.any_activity
            || self.activities.contains(&event.activity_type)
            || (event.country.is_some() && self.attributes.contains(&Attr::Country))
            || (event.region.is_some() && self.attributes.contains(&Attr::Region))
            || (event.device_type.is_some() && self.attributes.contains(&Attr::DeviceType))
            || event
                .traits
                .iter()
                .any(|(name, _)| self.traits.contains(name))
    }

    /// Returns the longest window the rule reads, if any.
    pub fn longest_window(&self) -> Option<i64> {
        self.windows.values().copied().max()
    }

    fn activity(&mut self, activity: &str, window: Option<i64>) {
        self.activities.insert(activity.into());
        if let Some(window) = window {
            self.time_dependent = true;
            let longest = self.windows.entry(activity.into()).or_insert(window);
            *longest = (*longest).max(window);
        }
    }

    fn time_base(&mut self, base: &TimeBase) {
        match base {
            TimeBase::Now => self.time_dependent = true,
            TimeBase::LastSeen(Some(a)) | TimeBase::FirstSeen(Some(a)) => self.activity(a, None),
            TimeBase::LastSeen(None) | TimeBase::FirstSeen(None) => self.any_activity = true,
        }
    }

    fn cond(&mut self, cond: &Cond) {
        match cond {
            Cond::Const(_) => {}
            Cond::And(items) | Cond::Or(items) => items.iter().for_each(|c| self.cond(c)),
            Cond::Not(inner) => self.cond(inner),
            Cond::Time { lhs, rhs, .. } => {
                self.time_base(&lhs.base);
                self.time_base(&rhs.base);
            }
            Cond::Compare { lhs, rhs, .. } => {
                self.value(lhs);
                self.value(rhs);
            }
            Cond::In { lhs, .. } | Cond::Truthy(lhs) => self.value(lhs),
            Cond::Active {
                activity, window, ..
            } => self.activity(activity, Some(*window)),
        }
    }

    fn value(&mut self, value: &Value) {
        match value {
            Value::Lit(_) => {}
            Value::Attr(attr) => {
                self.attributes.insert(*attr);
            }
            Value::Trait(name) => {
                self.traits.insert(name.clone());
            }
            Value::Count { activity, window } => self.activity(activity, *window),
            Value::Sum(first, rest) => {
                self.value(first);
                rest.iter().for_each(|(_, term)| self.value(term));
            }
        }
    }
}
