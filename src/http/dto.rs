//! The JSON shapes of API.md that are more than a line: segments, users, notifications.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::actors::{Identity, MergeLog, Notification, RefusedLink, SegmentDef, UserView};
use crate::domain::{Timestamp, TraitValue};

/// Formats an instant as API.md wants: RFC 3339 UTC with milliseconds.
pub fn time(at: Timestamp) -> String {
    at.to_rfc3339()
}

/// A segment wherever one is returned.
#[derive(Serialize)]
pub struct SegmentJson {
    id: u64,
    name: String,
    rule: String,
    description: Option<String>,
    created_at: String,
    updated_at: String,
    member_count: u64,
    status: &'static str,
}

impl SegmentJson {
    /// Describes `def` with its current member count.
    pub fn new(def: &SegmentDef, member_count: u64) -> SegmentJson {
        SegmentJson {
            id: def.id,
            name: def.name.clone(),
            rule: def.rule.clone(),
            description: def.description.clone(),
            created_at: time(def.created_at),
            updated_at: time(def.updated_at),
            member_count,
            status: if def.ready { "ready" } else { "backfilling" },
        }
    }
}

fn trait_json(value: &TraitValue) -> Value {
    match value {
        TraitValue::Bool(b) => json!(b),
        TraitValue::Number(n) => json!(n),
        TraitValue::String(s) => json!(s),
    }
}

fn identity_json((id_type, id): &Identity) -> Value {
    json!({"id_type": id_type, "id": id})
}

/// A refused link: `{"id_type", "id", "reason", "owner", "at"}`.
pub fn refused_json(link: &RefusedLink) -> Value {
    let mut body = identity_json(&link.identity);
    body["reason"] = json!(link.reason.as_str());
    body["owner"] = json!(link.owner);
    body["at"] = json!(time(link.at));
    body
}

/// Returns the body of `GET /api/v1/users/{id}/merges`.
pub fn merge_log_json(user_id: u64, log: &MergeLog) -> Value {
    let merges: Vec<Value> = log
        .merges
        .iter()
        .map(|m| {
            json!({
                "at": time(m.at),
                "survivor": m.survivor,
                "absorbed": m.absorbed,
                "identity": identity_json(&m.identity),
            })
        })
        .collect();
    let refused: Vec<Value> = log.refused.iter().map(refused_json).collect();
    json!({"user_id": user_id, "merges": merges, "refused": refused})
}

/// Returns the body of `GET /api/v1/users/{id}`.
pub fn user_json(view: &UserView) -> Value {
    let identities: Vec<Value> = view.identities.iter().map(identity_json).collect();
    let traits: Map<String, Value> = view
        .traits
        .iter()
        .map(|(k, v)| (k.clone(), trait_json(v)))
        .collect();
    let activities: Map<String, Value> = view
        .activities
        .iter()
        .map(|(name, s)| {
            (
                name.clone(),
                json!({"count": s.count, "last_at": s.last_at.map(time)}),
            )
        })
        .collect();
    json!({
        "user_id": view.user_id,
        "identities": identities,
        "attributes": view.attributes,
        "traits": traits,
        "first_seen": view.first_seen.map(time),
        "last_seen": view.last_seen.map(time),
        "activities": activities,
        "segments": view.segments,
    })
}

/// Returns a notification as pushed, with its lists filtered to `only` when given;
/// `None` when the filter leaves nothing to say.
pub fn notification_json(n: &Notification, only: Option<&[u64]>) -> Option<String> {
    let keep = |ids: &[u64]| -> Vec<u64> {
        ids.iter()
            .copied()
            .filter(|id| only.is_none_or(|o| o.contains(id)))
            .collect()
    };
    let (entered, left) = (keep(&n.in_segments), keep(&n.out_segments));
    if entered.is_empty() && left.is_empty() && n.merged_into.is_none() {
        return None;
    }
    let mut body = json!({"user_id": n.user_id, "in_segments": entered, "out_segments": left, "at": time(n.at)});
    if let Some(survivor) = n.merged_into {
        body["merged_into"] = json!(survivor);
    }
    Some(body.to_string())
}
