//! The typed path: reads a body (one event or an array) or a single event straight from
//! its JSON text into `Incoming`, with no `serde_json::Value` tree in between. It accepts
//! only what the Value validator accepts, and builds the same `Incoming`; on anything
//! else it gives up (an error whose text nobody sees) and the caller asks that validator.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::actors::Incoming;
use crate::domain::{Event, Timestamp};

use super::super::event_json::{is_activity_type, EventRules};
use super::fields::{give_up, Identities, Key, OptText, Payload, Skip, Text, Traits};

/// Reads one event or an array of events.
pub struct Body<'r, 'a> {
    /// What a valid event is.
    pub rules: &'r EventRules<'a>,
}

impl<'de> DeserializeSeed<'de> for Body<'_, '_> {
    type Value = Vec<Incoming>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Body<'_, '_> {
    type Value = Vec<Incoming>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event or an array of events")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(vec![OneEvent { rules: self.rules }.visit_map(map)?])
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut events = Vec::new();
        while let Some(event) = seq.next_element_seed(OneEvent { rules: self.rules })? {
            if events.len() == self.rules.max_events {
                return Err(give_up());
            }
            events.push(event);
        }
        Ok(events)
    }
}

/// Reads one event: a JSON object.
pub struct OneEvent<'r, 'a> {
    /// What a valid event is.
    pub rules: &'r EventRules<'a>,
}

impl<'de> DeserializeSeed<'de> for OneEvent<'_, '_> {
    type Value = Incoming;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// An event's known fields as read, before they are checked together.
#[derive(Default)]
struct Fields<'de> {
    id: Option<Text<'de>>,
    id_type: Option<Text<'de>>,
    created_at: Option<Text<'de>>,
    payload: Option<Option<Text<'de>>>,
    event_id: Option<Text<'de>>,
    links: Vec<(String, String)>,
    country: Option<Text<'de>>,
    region: Option<Text<'de>>,
    device_type: Option<Text<'de>>,
    traits: super::fields::TraitList,
}

/// The known top-level keys, each a bit of a "seen" set (a repeated key gives up).
fn key_bit(key: &str) -> Option<u16> {
    let bit = match key {
        "id" => 0,
        "id_type" => 1,
        "created_at" => 2,
        "payload" => 3,
        "event_id" => 4,
        "identities" => 5,
        "country" => 6,
        "region" => 7,
        "device_type" => 8,
        "traits" => 9,
        _ => return None,
    };
    Some(1 << bit)
}

impl<'de> Visitor<'de> for OneEvent<'_, '_> {
    type Value = Incoming;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Incoming, A::Error> {
        let mut seen = 0u16;
        let mut fields = Fields::default();
        while let Some(key) = map.next_key_seed(Key)? {
            let Some(bit) = key_bit(&key) else {
                map.next_value_seed(Skip::new())?;
                continue;
            };
            if seen & bit != 0 {
                return Err(give_up());
            }
            seen |= bit;
            match &*key {
                "id" => fields.id = map.next_value_seed(OptText)?,
                "id_type" => fields.id_type = map.next_value_seed(OptText)?,
                "created_at" => fields.created_at = map.next_value_seed(OptText)?,
                "payload" => fields.payload = map.next_value_seed(Payload)?,
                "event_id" => fields.event_id = map.next_value_seed(OptText)?,
                "identities" => {
                    let types = self.rules.identity_types;
                    fields.links = map.next_value_seed(Identities { types })?;
                }
                "country" => fields.country = map.next_value_seed(OptText)?,
                "region" => fields.region = map.next_value_seed(OptText)?,
                "device_type" => fields.device_type = map.next_value_seed(OptText)?,
                _ => fields.traits = map.next_value_seed(Traits)?,
            }
        }
        build(fields, self.rules).ok_or_else(give_up)
    }
}

/// At most `max` characters (`None` passes).
fn short(text: &Option<Text<'_>>, max: usize) -> bool {
    text.as_ref().is_none_or(|t| t.chars().count() <= max)
}

/// Checks the fields together, as `event_json::validate_event` does, and builds the
/// event; `None` where that would refuse it.
fn build(fields: Fields<'_>, rules: &EventRules<'_>) -> Option<Incoming> {
    let id = fields.id?;
    if id.is_empty() || id.chars().count() > 256 {
        return None;
    }
    let id_type = fields.id_type?;
    if !rules.identity_types.iter().any(|t| *t == *id_type) {
        return None;
    }
    let created_at = match &fields.created_at {
        None => rules.now,
        Some(text) if text.chars().count() <= 64 => Timestamp::parse(text).ok()?,
        Some(_) => return None,
    };
    if created_at > rules.latest {
        return None;
    }
    let activity = fields.payload??;
    if !is_activity_type(&activity) {
        return None;
    }
    if let Some(event_id) = &fields.event_id {
        if event_id.is_empty() || event_id.chars().count() > 256 {
            return None;
        }
    }
    if !short(&fields.country, 128) || !short(&fields.region, 128) {
        return None;
    }
    if !short(&fields.device_type, 128) {
        return None;
    }
    let mut event = Event::new(&activity, created_at);
    event.country = fields.country.map(Into::into);
    event.region = fields.region.map(Into::into);
    event.device_type = fields.device_type.map(Into::into);
    event.traits = fields.traits;
    Some(Incoming {
        identity: (id_type.into_owned(), id.into_owned()),
        event,
        event_id: fields.event_id.map(Into::into),
        links: fields.links,
    })
}
