//! The leaf readers of the typed path: a string or null, a skipped value, `payload`,
//! `identities` and `traits`. Each reads straight from the JSON text and borrows what it
//! can; anything that the Value validator would refuse, or that it would read otherwise
//! (a duplicate key, a deep nesting), makes the reader give up with an error, so the
//! caller falls back to that validator. They never decide an answer a client sees.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::actors::Identity;
use crate::domain::TraitValue;

use super::super::event_json::is_decimal;

/// Gives up on the typed path (the message is never shown).
pub fn give_up<E: de::Error>() -> E {
    E::custom("typed event path gave up")
}

/// How deep a skipped value may nest before the typed path gives up, so it stays far
/// below serde_json's limit of 128 even when an item is read on its own.
const SKIP_DEPTH: u8 = 64;

/// A map key or string value, borrowed from the body when it has no escapes.
pub type Text<'de> = Cow<'de, str>;

/// Reads a JSON string or `null` (as `None`); anything else gives up.
pub struct OptText;

impl<'de> DeserializeSeed<'de> for OptText {
    type Value = Option<Text<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for OptText {
    type Value = Option<Text<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Reads a map key as text.
pub struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Text<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        match deserializer.deserialize_str(OptText)? {
            Some(text) => Ok(text),
            None => Err(give_up()),
        }
    }
}

/// Reads and drops any value, parsing it as fully as `serde_json::Value` would (numbers
/// in range, strings valid), unlike `IgnoredAny`, which only scans.
pub struct Skip {
    /// How many more arrays or objects may open inside.
    depth: u8,
}

impl Skip {
    /// Returns a reader for a value at the top of an event's fields.
    pub fn new() -> Skip {
        Skip { depth: SKIP_DEPTH }
    }

    fn inner<E: de::Error>(&self) -> Result<Skip, E> {
        match self.depth.checked_sub(1) {
            Some(depth) => Ok(Skip { depth }),
            None => Err(give_up()),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self.inner()?)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Key)?.is_some() {
            map.next_value_seed(self.inner()?)?;
        }
        Ok(())
    }
}

/// Reads `payload`: `None` for null; otherwise its `activity_type` (if any), with
/// `order_total` checked on the way. Other fields are skipped.
pub struct Payload;

impl<'de> DeserializeSeed<'de> for Payload {
    type Value = Option<Option<Text<'de>>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Payload {
    type Value = Option<Option<Text<'de>>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut activity = None;
        let mut seen_activity = false;
        let mut seen_total = false;
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "activity_type" if !seen_activity => {
                    seen_activity = true;
                    activity = map.next_value_seed(OptText)?;
                }
                "order_total" if !seen_total => {
                    seen_total = true;
                    match map.next_value_seed(OptText)? {
                        Some(total) if !total.is_empty() && !is_decimal(&total) => {
                            return Err(give_up())
                        }
                        _ => {}
                    }
                }
                "activity_type" | "order_total" => return Err(give_up()),
                _ => map.next_value_seed(Skip::new())?,
            }
        }
        Ok(Some(activity))
    }
}

/// Reads `identities` against the configured identity types; null is none.
pub struct Identities<'r> {
    /// Allowed `id_type` values.
    pub types: &'r [String],
}

impl<'de> DeserializeSeed<'de> for Identities<'_> {
    type Value = Vec<Identity>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Identities<'_> {
    type Value = Vec<Identity>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of identities or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut links: Vec<Identity> = Vec::new();
        while let Some(id_type) = map.next_key_seed(Key)? {
            if !self.types.iter().any(|t| *t == *id_type) {
                return Err(give_up());
            }
            match map.next_value_seed(OptText)? {
                Some(id) if !id.is_empty() && id.chars().count() <= 256 => {
                    links.push((id_type.into_owned(), id.into_owned()));
                }
                _ => return Err(give_up()),
            }
        }
        // A repeated key keeps its first place and its last value in the Value path.
        if !is_duplicate_free(links.iter().map(|(t, _)| t.as_str())) {
            return Err(give_up());
        }
        Ok(links)
    }
}

/// Reads `traits`: a flat object of strings, numbers and booleans; null is none.
pub struct Traits;

/// An event's traits, in the order they came.
pub type TraitList = Vec<(Box<str>, TraitValue)>;

impl<'de> DeserializeSeed<'de> for Traits {
    type Value = TraitList;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Traits {
    type Value = TraitList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a flat object or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut traits: TraitList = Vec::new();
        while let Some(name) = map.next_key_seed(Key)? {
            if name.is_empty() || name.len() > 128 {
                return Err(give_up());
            }
            let value = map.next_value_seed(Trait)?;
            traits.push((name.into(), value));
        }
        if !is_duplicate_free(traits.iter().map(|(name, _)| &**name)) {
            return Err(give_up());
        }
        Ok(traits)
    }
}

/// Reads one trait value.
struct Trait;

impl<'de> DeserializeSeed<'de> for Trait {
    type Value = TraitValue;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Trait {
    type Value = TraitValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<TraitValue, E> {
        Ok(TraitValue::Bool(v))
    }

    // The Value path reads numbers through `Number::as_f64`: these casts are its own.
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<TraitValue, E> {
        Ok(TraitValue::Number(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<TraitValue, E> {
        Ok(TraitValue::Number(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<TraitValue, E> {
        // `Value` turns a non-finite float into null, which a trait refuses.
        if v.is_finite() {
            Ok(TraitValue::Number(v))
        } else {
            Err(give_up())
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<TraitValue, E> {
        if v.chars().count() <= 1024 {
            Ok(TraitValue::String(v.into()))
        } else {
            Err(give_up())
        }
    }
}

/// Whether no name repeats (a repeated key is read differently by the Value path).
fn is_duplicate_free<'n>(names: impl ExactSizeIterator<Item = &'n str> + Clone) -> bool {
    let count = names.len();
    if count <= 16 {
        // Few names: comparing pairs beats hashing.
        return names
            .clone()
            .enumerate()
            .all(|(i, name)| names.clone().skip(i + 1).all(|other| other != name));
    }
    let mut unique = std::collections::HashSet::with_capacity(count);
    names.into_iter().all(|name| unique.insert(name))
}
