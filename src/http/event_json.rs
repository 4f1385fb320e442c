//! Validates incoming events against API.md's field table and turns them into the
//! engine's facts. A batch is checked whole before anything is applied; the first bad
//! event is named by `index` (only inside an array) and `field`.

use serde_json::{Map, Value};

use crate::actors::{Identity, Incoming};
use crate::domain::{Event, Timestamp, TraitValue};

use super::error::ApiError;

/// What event validation needs to know.
pub struct EventRules<'a> {
    /// Allowed `id_type` values.
    pub identity_types: &'a [String],
    /// Latest acceptable `created_at`.
    pub latest: Timestamp,
    /// The node's clock, for events without `created_at`.
    pub now: Timestamp,
    /// Most events in one body.
    pub max_events: usize,
}

fn bad(field: &str, message: impl Into<String>, index: Option<usize>) -> ApiError {
    ApiError::InvalidEvent {
        message: message.into(),
        field: field.to_owned(),
        index,
    }
}

/// Validates a body holding one event or an array of events.
pub fn validate_body(body: Value, rules: &EventRules<'_>) -> Result<Vec<Incoming>, ApiError> {
    match body {
        Value::Array(items) => {
            if items.len() > rules.max_events {
                return Err(ApiError::TooManyEvents(format!(
                    "at most {} events per request, got {}",
                    rules.max_events,
                    items.len()
                )));
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| validate_event(item, rules, Some(i)))
                .collect()
        }
        other => Ok(vec![validate_event(other, rules, None)?]),
    }
}

fn optional_string<'v>(
    object: &'v Map<String, Value>,
    field: &str,
    max: usize,
    index: Option<usize>,
) -> Result<Option<&'v str>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s)),
        Some(Value::String(_)) => Err(bad(
            field,
            format!("{field} is longer than {max} characters"),
            index,
        )),
        Some(_) => Err(bad(field, format!("{field} must be a string"), index)),
    }
}

fn required_string<'v>(
    object: &'v Map<String, Value>,
    field: &str,
    path: &str,
    index: Option<usize>,
) -> Result<&'v str, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Err(bad(path, format!("{path} is required"), index)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(bad(path, format!("{path} must be a string"), index)),
    }
}

fn validate_event(
    value: Value,
    rules: &EventRules<'_>,
    index: Option<usize>,
) -> Result<Incoming, ApiError> {
    let Value::Object(object) = value else {
        return Err(bad("", "an event must be a JSON object", index));
    };
    let id = required_string(&object, "id", "id", index)?;
    if id.is_empty() || id.chars().count() > 256 {
        return Err(bad("id", "id must be 1 to 256 characters", index));
    }
    let id_type = required_string(&object, "id_type", "id_type", index)?;
    if !rules.identity_types.iter().any(|t| t == id_type) {
        let allowed = rules.identity_types.join(", ");
        return Err(bad(
            "id_type",
            format!("id_type must be one of: {allowed}"),
            index,
        ));
    }
    let created_at = match optional_string(&object, "created_at", 64, index)? {
        None => rules.now,
        Some(text) => {
            Timestamp::parse(text).map_err(|e| bad("created_at", e.to_string(), index))?
        }
    };
    if created_at > rules.latest {
        return Err(bad(
            "created_at",
            "created_at is more than 5 minutes in the future",
            index,
        ));
    }
    let payload = match object.get("payload") {
        Some(Value::Object(payload)) => payload,
        None | Some(Value::Null) => return Err(bad("payload", "payload is required", index)),
        Some(_) => return Err(bad("payload", "payload must be an object", index)),
    };
    let activity = required_string(payload, "activity_type", "payload.activity_type", index)?;
    if !is_activity_type(activity) {
        return Err(bad(
            "payload.activity_type",
            "payload.activity_type must be 1 to 64 characters of letters, digits, _ . : -",
            index,
        ));
    }
    check_order_total(payload, index)?;
    let event_id = match object.get("event_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 256 => {
            Some(s.as_str().into())
        }
        Some(_) => {
            return Err(bad(
                "event_id",
                "event_id must be a string of 1 to 256 characters",
                index,
            ))
        }
    };
    let links = identities(&object, rules.identity_types, index)?;
    let mut event = Event::new(activity, created_at);
    event.country = optional_string(&object, "country", 128, index)?.map(Into::into);
    event.region = optional_string(&object, "region", 128, index)?.map(Into::into);
    event.device_type = optional_string(&object, "device_type", 128, index)?.map(Into::into);
    event.traits = traits(&object, index)?;
    Ok(Incoming {
        identity: (id_type.to_owned(), id.to_owned()),
        event,
        event_id,
        links,
    })
}

fn check_order_total(payload: &Map<String, Value>, index: Option<usize>) -> Result<(), ApiError> {
    match payload.get("order_total") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s.is_empty() || is_decimal(s) => Ok(()),
        Some(_) => Err(bad(
            "payload.order_total",
            "payload.order_total must be a decimal string like \"19.99\" or empty",
            index,
        )),
    }
}

/// Whether `text` is a valid `payload.activity_type`: 1 to 64 of `[A-Za-z0-9_.:-]`.
pub(super) fn is_activity_type(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

/// Whether `text` is a decimal like `19.99`, `-3` or `0.5` (an `order_total`).
pub(super) fn is_decimal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.chars().all(|c| c.is_ascii_digit())
        && fraction.chars().all(|c| c.is_ascii_digit())
}

fn identities(
    object: &Map<String, Value>,
    identity_types: &[String],
    index: Option<usize>,
) -> Result<Vec<Identity>, ApiError> {
    match object.get("identities") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(id_type, id)| {
                let field = format!("identities.{id_type}");
                if !identity_types.iter().any(|t| t == id_type) {
                    return Err(bad(
                        &field,
                        format!(
                            "{id_type} is not an identity type; use one of: {}",
                            identity_types.join(", ")
                        ),
                        index,
                    ));
                }
                match id {
                    Value::String(s) if !s.is_empty() && s.chars().count() <= 256 => {
                        Ok((id_type.clone(), s.clone()))
                    }
                    _ => Err(bad(
                        &field,
                        format!("{field} must be a string of 1 to 256 characters"),
                        index,
                    )),
                }
            })
            .collect(),
        Some(_) => Err(bad(
            "identities",
            "identities must be an object like {\"email\": \"a@b.com\"}",
            index,
        )),
    }
}

fn traits(
    object: &Map<String, Value>,
    index: Option<usize>,
) -> Result<Vec<(Box<str>, TraitValue)>, ApiError> {
    let map = match object.get("traits") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(bad("traits", "traits must be a flat object", index)),
    };
    map.iter()
        .map(|(name, value)| {
            let field = format!("traits.{name}");
            if name.is_empty() || name.len() > 128 {
                return Err(bad(
                    &field,
                    "a trait name must be 1 to 128 characters",
                    index,
                ));
            }
            let value = match value {
                Value::String(s) if s.chars().count() <= 1024 => {
                    TraitValue::String(s.as_str().into())
                }
                Value::Number(n) => TraitValue::Number(n.as_f64().unwrap_or(f64::NAN)),
                Value::Bool(b) => TraitValue::Bool(*b),
                _ => {
                    return Err(bad(
                        &field,
                        format!(
                            "{field} must be a string (up to 1024 characters), number or boolean"
                        ),
                        index,
                    ))
                }
            };
            Ok((name.as_str().into(), value))
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use serde_json::json;

    use super::*;

    /// Event rules at a fixed instant, at most 3 events per body (shared by the decoder's
    /// tests).
    pub(in crate::http) fn rules(types: &[String]) -> EventRules<'_> {
        EventRules {
            identity_types: types,
            latest: Timestamp::parse("2026-11-01T00:05:00Z").unwrap(),
            now: Timestamp::parse("2026-11-01T00:00:00Z").unwrap(),
            max_events: 3,
        }
    }

    fn event() -> Value {
        json!({"id": "c1", "id_type": "cookie", "created_at": "2026-10-31T00:00:00",
               "payload": {"activity_type": "page_viewed", "order_total": ""}})
    }

    fn error_of(body: Value) -> (String, String, Option<usize>) {
        let types = vec!["cookie".to_owned()];
        match validate_body(body, &rules(&types)) {
            Err(ApiError::InvalidEvent {
                field,
                index,
                message,
            }) => (field, message, index),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn accepts_the_original_format() {
        let types = vec!["cookie".to_owned()];
        let events = validate_body(event(), &rules(&types)).unwrap();
        assert_eq!(events[0].identity, ("cookie".to_owned(), "c1".to_owned()));
        assert_eq!(&*events[0].event.activity_type, "page_viewed");
        assert!(events[0].links.is_empty());
        let mut linked = event();
        linked["identities"] = json!({"cookie": "c2"});
        let events = validate_body(linked, &rules(&types)).unwrap();
        assert_eq!(
            events[0].links,
            vec![("cookie".to_owned(), "c2".to_owned())]
        );
    }

    #[test]
    fn names_the_first_bad_field_and_its_index() {
        let mut missing = event();
        missing["payload"]
            .as_object_mut()
            .unwrap()
            .remove("activity_type");
        assert_eq!(error_of(missing.clone()).0, "payload.activity_type");
        assert_eq!(error_of(missing.clone()).2, None);
        let (field, _, index) = error_of(json!([event(), missing]));
        assert_eq!((field.as_str(), index), ("payload.activity_type", Some(1)));

        let cases = [
            ("id", json!(""), "id"),
            ("id_type", json!("passport"), "id_type"),
            ("created_at", json!("2026-11-01T00:06:00Z"), "created_at"),
            ("created_at", json!("yesterday"), "created_at"),
            ("region", json!(3), "region"),
            ("traits", json!({"plan": {"nested": 1}}), "traits.plan"),
            ("identities", json!({"email": 3}), "identities.email"),
            (
                "identities",
                json!({"passport": "x"}),
                "identities.passport",
            ),
            ("event_id", json!(5), "event_id"),
        ];
        for (key, value, field) in cases {
            let mut e = event();
            e[key] = value;
            assert_eq!(error_of(e).0, field, "{key}");
        }
        let mut total = event();
        total["payload"]["order_total"] = json!("12,5");
        assert_eq!(error_of(total).0, "payload.order_total");
    }

    #[test]
    fn refuses_oversized_batches() {
        let types = vec!["cookie".to_owned()];
        let batch = json!([event(), event(), event(), event()]);
        assert!(matches!(
            validate_body(batch, &rules(&types)),
            Err(ApiError::TooManyEvents(_))
        ));
    }
}
