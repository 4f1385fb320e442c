//! What `GET /api/v1/users/{id}` shows of a user: everything due by `now`.

use std::collections::BTreeMap;

use crate::domain::{Timestamp, TraitValue};
use crate::rules::Attr;

use super::record::{Identity, UserRecord};

/// One activity type's totals.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivitySummary {
    /// Events of this type.
    pub count: u64,
    /// The latest one.
    pub last_at: Option<Timestamp>,
}

/// A user as of one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct UserView {
    /// The user id.
    pub user_id: u64,
    /// Its identities.
    pub identities: Vec<Identity>,
    /// `country`, `region`, `device_type` when set.
    pub attributes: BTreeMap<&'static str, String>,
    /// Traits set.
    pub traits: BTreeMap<String, TraitValue>,
    /// Earliest event.
    pub first_seen: Option<Timestamp>,
    /// Latest event.
    pub last_seen: Option<Timestamp>,
    /// Per activity type.
    pub activities: BTreeMap<String, ActivitySummary>,
    /// Segments the user is in.
    pub segments: Vec<u64>,
}

/// Returns the per-activity totals of `record` due by `now`.
pub fn activity_summaries(
    record: &UserRecord,
    now: Timestamp,
) -> BTreeMap<String, ActivitySummary> {
    activity_summaries_where(record, now, |_| true)
}

/// Returns the totals of the activity types `wanted` picks, of `record` due by `now`.
pub fn activity_summaries_where(
    record: &UserRecord,
    now: Timestamp,
    wanted: impl Fn(&str) -> bool,
) -> BTreeMap<String, ActivitySummary> {
    let state = &record.state;
    state
        .activity_types()
        .filter(|name| wanted(name))
        .map(|name| {
            let summary = ActivitySummary {
                count: state.count(name, None, now),
                last_at: state.last_seen(Some(name), now),
            };
            (name.to_owned(), summary)
        })
        .filter(|(_, s)| s.count > 0)
        .collect()
}

impl UserView {
    /// Describes `record` as of `now`.
    pub fn of(user_id: u64, record: &UserRecord, now: Timestamp) -> UserView {
        let state = &record.state;
        let attributes = [
            ("country", Attr::Country),
            ("region", Attr::Region),
            ("device_type", Attr::DeviceType),
        ]
        .into_iter()
        .filter_map(|(name, attr)| state.attribute(attr, now).map(|v| (name, v.to_owned())))
        .collect();
        let traits = state
            .trait_names()
            .filter_map(|name| {
                state
                    .trait_value(name, now)
                    .map(|v| (name.to_owned(), v.clone()))
            })
            .collect();
        UserView {
            user_id,
            identities: record.identities.clone(),
            attributes,
            traits,
            first_seen: state.first_seen(None, now),
            last_seen: state.last_seen(None, now),
            activities: activity_summaries(record, now),
            segments: record.segments.iter().copied().collect(),
        }
    }
}
