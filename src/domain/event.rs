//! The facts of one user-activity event that the rule engine reads.
//!
//! Identity (`id`, `id_type`, `identities`) and free-form properties are the server's
//! business; this struct carries only what a rule can see.

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// A trait value set on a user: a flat string, number or boolean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TraitValue {
    /// `true` or `false`.
    Bool(bool),
    /// Any JSON number (integers are exact up to 2^53).
    Number(f64),
    /// A string.
    String(Box<str>),
}

/// One event as the rule engine sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened (`created_at`).
    pub created_at: Timestamp,
    /// `payload.activity_type`, e.g. `page_viewed`.
    pub activity_type: Box<str>,
    /// The `country` attribute when the event carried it.
    pub country: Option<Box<str>>,
    /// The `region` attribute when the event carried it.
    pub region: Option<Box<str>>,
    /// The `device_type` attribute when the event carried it.
    pub device_type: Option<Box<str>>,
    /// Traits the event sets, as `(name, value)` pairs.
    pub traits: Vec<(Box<str>, TraitValue)>,
}

impl Event {
    /// Returns an event of `activity_type` at `created_at` with no attributes or traits.
    pub fn new(activity_type: &str, created_at: Timestamp) -> Self {
        Event {
            created_at,
            activity_type: activity_type.into(),
            country: None,
            region: None,
            device_type: None,
            traits: Vec::new(),
        }
    }
}
