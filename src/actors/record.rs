//! One user's persisted record and the pure logic that changes it: apply events, catch
//! up with time, re-evaluate or forget a segment. Each returns the membership changes
//! as data; the actor persists and pushes them.

use serde::{Deserialize, Serialize};

use crate::domain::{Event, Timestamp};
use crate::rules::{next_change, UserState};

use super::catalog::Segments;
use super::event_ids::EventIds;
use super::segment_set::SegmentSet;

/// An identity `(id_type, id)`.
pub type Identity = (String, String);

/// One validated event on its way to its user (sent as is to the user's node).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incoming {
    /// The identity it arrived under.
    pub identity: Identity,
    /// What the rules read.
    pub event: Event,
    /// The idempotency key, if the sender gave one.
    pub event_id: Option<Box<str>>,
    /// Other identities of the same person (`identities`), to link.
    pub links: Vec<Identity>,
}

/// Everything persisted about one user.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The identities that resolve to this user.
    pub identities: Vec<Identity>,
    /// What the rules read.
    pub state: UserState,
    /// The segments the user is in.
    #[serde(default)]
    pub segments: SegmentSet,
    /// When the user must be evaluated again with no new event.
    pub next_due: Option<Timestamp>,
    /// Fingerprints of the latest `event_id`s applied (the idempotency window).
    #[serde(default)]
    pub event_ids: EventIds,
    /// Journaled steps applied so far: replay skips the journal parts at or below it.
    #[serde(default)]
    pub version: u64,
}

/// A change to a user that comes with no event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserOp {
    /// Evaluate every segment at each instant due up to now.
    Tick,
    /// Evaluate one new or changed segment.
    Reevaluate(u64),
    /// Leave a deleted segment.
    Forget(u64),
}

impl UserOp {
    /// Applies the operation to `record` at `now`.
    pub fn run(
        self,
        record: &mut UserRecord,
        segments: &Segments,
        now: Timestamp,
        retention_ms: i64,
    ) -> Effects {
        match self {
            UserOp::Tick => {
                let mut effects = Effects::default();
                record.catch_up(segments, now, retention_ms, &mut effects);
                effects
            }
            UserOp::Reevaluate(segment) => record.reevaluate(segment, segments, now, retention_ms),
            UserOp::Forget(segment) => record.forget(segment, segments, now),
        }
    }
}

/// One change of membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The instant it took effect.
    pub at: Timestamp,
    /// Segments entered.
    pub entered: Vec<u64>,
    /// Segments left.
    pub left: Vec<u64>,
}

impl Change {
    /// The notification that pushes this change of `user`.
    pub fn notification(self, user: u64) -> super::hub::Notification {
        super::hub::Notification {
            user_id: user,
            in_segments: self.entered,
            out_segments: self.left,
            at: self.at,
            merged_into: None,
            relayed: false,
        }
    }
}

/// The effects of one step: changes in order, and how many rules were evaluated.
#[derive(Debug, Default)]
pub struct Effects {
    /// Membership changes, oldest first.
    pub changes: Vec<Change>,
    /// Rule evaluations done.
    pub evaluations: u64,
    /// Events applied (repeats of a remembered `event_id` are not).
    pub applied: u64,
    /// True when the record changed beyond its membership and timer (events, identities).
    pub dirty: bool,
}

impl Effects {
    fn evaluate<'a>(
        &mut self,
        record: &mut UserRecord,
        segments: impl Iterator<Item = (&'a u64, &'a std::sync::Arc<super::catalog::Segment>)>,
        at: Timestamp,
    ) {
        let mut change = Change {
            at,
            entered: Vec::new(),
            left: Vec::new(),
        };
        for (id, segment) in segments {
            self.evaluations += 1;
            let holds = segment.rule.eval(&record.state, at);
            if holds && record.segments.insert(*id) {
                change.entered.push(*id);
            } else if !holds && record.segments.remove(*id) {
                change.left.push(*id);
            }
        }
        if !change.entered.is_empty() || !change.left.is_empty() {
            self.changes.push(change);
        }
    }
}

impl UserRecord {
    /// Evaluates every segment at each instant the rules could flip, up to `now`, so that
    /// each time-only flip is reported at the instant it took effect.
    pub fn catch_up(
        &mut self,
        segments: &Segments,
        now: Timestamp,
        retention_ms: i64,
        effects: &mut Effects,
    ) {
        while let Some(due) = self.next_due.filter(|due| *due <= now) {
            self.state.settle(due, retention_ms);
            effects.evaluate(self, segments.iter(), due);
            self.next_due = next_change(segments.values().map(|s| &s.rule), &self.state, due);
        }
    }

    /// Applies events seen at `now` and re-evaluates the segments they can affect.
    pub fn apply(
        &mut self,
        events: &[Incoming],
        segments: &Segments,
        now: Timestamp,
        retention_ms: i64,
    ) -> Effects {
        let mut effects = Effects::default();
        self.catch_up(segments, now, retention_ms, &mut effects);
        let mut applied = Vec::with_capacity(events.len());
        for incoming in events {
            if !self.identities.contains(&incoming.identity) {
                // Exactly one more: a user holds few identities for its whole life.
                self.identities.reserve_exact(1);
                self.identities.push(incoming.identity.clone());
                effects.dirty = true;
            }
            if let Some(id) = &incoming.event_id {
                if !self.event_ids.insert(id) {
                    continue;
                }
            }
            self.state.apply(&incoming.event, now, retention_ms);
            applied.push(&incoming.event);
        }
        effects.applied = applied.len() as u64;
        effects.dirty |= !applied.is_empty();
        let affected = segments.iter().filter(|(_, segment)| {
            let reads = segment.rule.reads();
            applied.iter().any(|event| reads.affected_by(event))
        });
        effects.evaluate(self, affected, now);
        self.reschedule(segments, now);
        effects
    }

    /// Evaluates one (new or changed) segment at `now`.
    pub fn reevaluate(
        &mut self,
        id: u64,
        segments: &Segments,
        now: Timestamp,
        retention_ms: i64,
    ) -> Effects {
        self.caught_up(segments, now, retention_ms, |_| {}, segments.range(id..=id))
    }

    /// Catches up with time, lets `change` alter the record (a merge), then evaluates
    /// every segment at `now`.
    pub fn rebuild(
        &mut self,
        segments: &Segments,
        now: Timestamp,
        retention_ms: i64,
        change: impl FnOnce(&mut UserRecord),
    ) -> Effects {
        self.caught_up(segments, now, retention_ms, change, segments.iter())
    }

    /// Catches up with time, applies `change`, evaluates `evaluated` at `now` and finds
    /// the next deadline.
    fn caught_up<'a>(
        &mut self,
        segments: &Segments,
        now: Timestamp,
        retention_ms: i64,
        change: impl FnOnce(&mut UserRecord),
        evaluated: impl Iterator<Item = (&'a u64, &'a std::sync::Arc<super::catalog::Segment>)>,
    ) -> Effects {
        let mut effects = Effects::default();
        self.catch_up(segments, now, retention_ms, &mut effects);
        change(self);
        effects.evaluate(self, evaluated, now);
        self.reschedule(segments, now);
        effects
    }

    /// Leaves a deleted segment.
    pub fn forget(&mut self, id: u64, segments: &Segments, now: Timestamp) -> Effects {
        let mut effects = Effects::default();
        if self.segments.remove(id) {
            effects.changes.push(Change {
                at: now,
                entered: Vec::new(),
                left: vec![id],
            });
        }
        self.reschedule(segments, now);
        effects
    }

    fn reschedule(&mut self, segments: &Segments, now: Timestamp) {
        self.next_due = next_change(segments.values().map(|s| &s.rule), &self.state, now);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::actors::catalog::{Segment, SegmentDef};
    use crate::domain::DAY_MS;
    use crate::rules::{compile, Limits};

    const RETENTION: i64 = 90 * DAY_MS;

    fn t(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn segments(rules: &[&str]) -> Segments {
        let map = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let id = i as u64 + 1;
                let def = SegmentDef {
                    id,
                    name: format!("s{id}"),
                    rule: (*rule).into(),
                    description: None,
                    created_at: t("2026-01-01T00:00:00Z"),
                    updated_at: t("2026-01-01T00:00:00Z"),
                    ready: true,
                };
                let rule = compile(rule, &Limits::default()).unwrap();
                (id, Arc::new(Segment { def, rule }))
            })
            .collect::<BTreeMap<_, _>>();
        Arc::new(map)
    }

    fn cookie(id: &str) -> Identity {
        ("cookie".into(), id.into())
    }

    fn incoming(id: &str, event: Event, event_id: Option<&str>) -> Incoming {
        Incoming {
            identity: cookie(id),
            event,
            event_id: event_id.map(Into::into),
            links: Vec::new(),
        }
    }

    /// `step` compares node-wide totals only for the activity types of the events it
    /// applies when the user has no pending event: nothing else may move, not even when
    /// old buckets leave the retention window.
    #[test]
    fn applying_events_changes_only_their_activity_types_totals() {
        use crate::actors::view::activity_summaries;
        let segments = segments(&["count(page_viewed, 7d) >= 1"]);
        let mut record = UserRecord::default();
        let old = t("2026-01-01T00:00:00Z");
        let events = [
            ("page_viewed", old),
            ("clicked", old),
            ("clicked", t("2026-03-01T00:00:00Z")),
        ];
        for (activity, at) in events {
            let event = incoming("c1", Event::new(activity, at), None);
            record.apply(&[event], &segments, at, RETENTION);
        }
        let now = t("2026-11-01T00:00:00Z");
        assert!(record.state.next_pending(Timestamp::MIN).is_none());
        let before = activity_summaries(&record, now);
        let event = incoming("c1", Event::new("added_to_cart", now), None);
        record.apply(&[event], &segments, now, RETENTION);
        let mut after = activity_summaries(&record, now);
        assert!(after.remove("added_to_cart").is_some());
        assert_eq!(before, after);
    }

    #[test]
    fn events_enter_segments_and_time_alone_leaves_them() {
        let segments = segments(&["count(page_viewed, 7d) >= 1", "count(bought) >= 1"]);
        let mut record = UserRecord::default();
        let now = t("2026-11-01T00:00:00Z");
        let event = Event::new("page_viewed", now);
        let effects = record.apply(&[incoming("c1", event, None)], &segments, now, RETENTION);
        assert_eq!(
            effects.changes,
            vec![Change {
                at: now,
                entered: vec![1],
                left: vec![]
            }]
        );
        assert_eq!(
            effects.evaluations, 1,
            "only the segment the event can affect"
        );
        assert_eq!(record.identities, vec![cookie("c1")]);
        assert_eq!(record.next_due, Some(t("2026-11-08T00:00:00Z")));

        let mut late = Effects::default();
        record.catch_up(&segments, t("2026-11-20T00:00:00Z"), RETENTION, &mut late);
        assert_eq!(
            late.changes,
            vec![Change {
                at: t("2026-11-08T00:00:00Z"),
                entered: vec![],
                left: vec![1]
            }]
        );
        assert_eq!(record.next_due, None);
    }

    #[test]
    fn a_repeated_event_id_is_applied_once() {
        let segments = segments(&["count(page_viewed) >= 2"]);
        let mut record = UserRecord::default();
        let now = t("2026-11-01T00:00:00Z");
        let event = Event::new("page_viewed", now);
        let batch = [
            incoming("c1", event.clone(), Some("e1")),
            incoming("c1", event.clone(), Some("e1")),
        ];
        let effects = record.apply(&batch, &segments, now, RETENTION);
        assert_eq!(effects.applied, 1);
        assert!(effects.changes.is_empty());
        let again = record.apply(
            &[incoming("c1", event, Some("e2"))],
            &segments,
            now,
            RETENTION,
        );
        assert_eq!(again.applied, 1);
        assert_eq!(again.changes[0].entered, vec![1]);
    }

    #[test]
    fn reevaluating_and_forgetting_one_segment() {
        let segments = segments(&["count(page_viewed) >= 1"]);
        let mut record = UserRecord::default();
        record.state.apply(
            &Event::new("page_viewed", t("2026-10-01T00:00:00Z")),
            t("2026-10-01T00:00:00Z"),
            RETENTION,
        );
        let now = t("2026-11-01T00:00:00Z");
        let effects = record.reevaluate(1, &segments, now, RETENTION);
        assert_eq!(effects.changes[0].entered, vec![1]);
        let effects = record.forget(1, &segments, now);
        assert_eq!(effects.changes[0].left, vec![1]);
        assert!(record.segments.is_empty());
    }
}
