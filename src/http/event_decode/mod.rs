//! Turns the JSON text of an events body (HTTP or WebSocket) into `Incoming`s.
//!
//! The typed path (`typed`, `fields`) reads the text straight into events, borrowing
//! strings from it, and handles every valid body. A body it does not take, for any
//! reason, is parsed again into a `serde_json::Value` and checked by `event_json`, which
//! alone words every refusal: errors stay exactly what that validator says, and a valid
//! body that the typed path declines on purpose (a repeated key, a deep nesting) gets
//! the same events from it. `tests` holds both paths to the same answers.

mod fields;
mod typed;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

use serde::de::DeserializeSeed;
use serde_json::value::RawValue;
use serde_json::{Deserializer, Value};

use crate::actors::Incoming;

use super::body::parse_json;
use super::error::ApiError;
use super::event_json::{validate_body, EventRules};

use typed::{Body, OneEvent};

/// A valid body's events.
#[derive(Debug)]
pub struct Decoded<'a> {
    /// The events, in body order.
    pub events: Vec<Incoming>,
    /// Each event's JSON text, in body order, when asked for (to forward it to another
    /// node); empty otherwise.
    pub texts: Vec<Cow<'a, RawValue>>,
}

/// A refused body.
#[derive(Debug)]
pub struct Refused {
    /// The answer.
    pub error: ApiError,
    /// How many events the body held when it was JSON but invalid (for the rejected
    /// events metric); 0 when it was not JSON.
    pub events: u64,
}

/// Reads an events body; `texts` keeps each event's JSON text too.
pub fn decode_events<'a>(
    bytes: &'a [u8],
    rules: &EventRules<'_>,
    texts: bool,
) -> Result<Decoded<'a>, Refused> {
    let typed = if texts {
        typed_with_texts(bytes, rules)
    } else {
        typed_body(bytes, rules).map(|events| Decoded {
            events,
            texts: Vec::new(),
        })
    };
    typed.or_else(|_declined| by_value(bytes, rules, texts))
}

/// The typed path, in one pass.
fn typed_body(bytes: &[u8], rules: &EventRules<'_>) -> serde_json::Result<Vec<Incoming>> {
    let mut deserializer = Deserializer::from_slice(bytes);
    let events = Body { rules }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(events)
}

/// The typed path keeping texts: the body is cut into its events' texts first, then
/// each is read.
fn typed_with_texts<'a>(
    bytes: &'a [u8],
    rules: &EventRules<'_>,
) -> serde_json::Result<Decoded<'a>> {
    let texts: Vec<&RawValue> = if starts_an_array(bytes) {
        serde_json::from_slice(bytes)?
    } else {
        vec![serde_json::from_slice(bytes)?]
    };
    if texts.len() > rules.max_events {
        return Err(fields::give_up());
    }
    let events = texts
        .iter()
        .map(|text| typed_event(text.get(), rules))
        .collect::<serde_json::Result<_>>()?;
    Ok(Decoded {
        events,
        texts: texts.into_iter().map(Cow::Borrowed).collect(),
    })
}

/// Whether the first byte past JSON whitespace opens an array.
fn starts_an_array(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .is_some_and(|b| *b == b'[')
}

fn typed_event(text: &str, rules: &EventRules<'_>) -> serde_json::Result<Incoming> {
    let mut deserializer = Deserializer::from_str(text);
    let event = OneEvent { rules }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(event)
}

/// The reference path: a `Value` tree checked by `event_json`, as every body was read
/// before the typed path; its answer is the one that counts.
fn by_value(
    bytes: &[u8],
    rules: &EventRules<'_>,
    texts: bool,
) -> Result<Decoded<'static>, Refused> {
    let body = parse_json(bytes).map_err(|error| Refused { error, events: 0 })?;
    let items = match &body {
        Value::Array(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    let size = items.len() as u64;
    let kept: serde_json::Result<Vec<_>> = if texts {
        items
            .iter()
            .map(|item| serde_json::value::to_raw_value(item).map(Cow::Owned))
            .collect()
    } else {
        Ok(Vec::new())
    };
    let events = validate_body(body, rules).map_err(|error| Refused {
        error,
        events: size,
    })?;
    let texts = kept.map_err(|e| Refused {
        error: ApiError::Unavailable(format!("failed to encode events: {e}")),
        events: 0,
    })?;
    Ok(Decoded { events, texts })
}
