//! `POST /api/v1/events`: one event or an array, acknowledged once durable. In a cluster
//! each event goes to the node that resolves its identity; the answer waits for all.

use std::collections::BTreeMap;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::actors::Incoming;
use crate::cluster::{identity_shard, Outgoing, Route};
use crate::domain::SECOND_MS;

use super::super::body::json_body;
use super::super::error::ApiError;
use super::super::event_json::{validate_body, EventRules};
use super::super::peers::is_forwarded;
use super::super::state::AppState;

/// Validates, ingests and acknowledges the JSON text of one body or message; `forwarded`
/// says another node sent it (its events are this node's to apply).
pub async fn ingest_json(
    state: &AppState,
    body: Value,
    forwarded: bool,
) -> Result<usize, ApiError> {
    let now = state.clock.now();
    let ingest = &state.config.ingest;
    let rules = EventRules {
        identity_types: &ingest.identity_types,
        latest: now.add_millis(ingest.max_future_secs as i64 * SECOND_MS),
        now,
        max_events: ingest.max_batch_events,
    };
    let size = body.as_array().map_or(1, Vec::len) as u64;
    // The events that other nodes apply, kept as sent (by position in the body).
    let sent = (!state.cluster.is_single() && !forwarded).then(|| elsewhere(state, &body));
    let events =
        validate_body(body, &rules).inspect_err(|_| state.metrics.events_rejected.inc_by(size))?;
    let count = events.len();
    let Ok(_permits) = state
        .in_flight
        .try_acquire_many(u32::try_from(count).unwrap_or(u32::MAX))
    else {
        state.metrics.events_shed.inc_by(size);
        return Err(ApiError::Overloaded(format!(
            "the node is ingesting {} events already; retry shortly",
            ingest.max_in_flight_events
        )));
    };
    match sent {
        Some(sent) => route(state, events, sent).await?,
        None => {
            if forwarded {
                for event in &events {
                    if let Route::Unavailable(why) = place(state, event, true) {
                        return Err(ApiError::OwnerUnavailable(why));
                    }
                }
            }
            state.ingestor.ingest(events).await?;
        }
    }
    Ok(count)
}

/// Copies the events of `body` that another node applies; `None` for this node's (and
/// for events too malformed to place, which validation refuses).
fn elsewhere(state: &AppState, body: &Value) -> Vec<Option<Value>> {
    let items = match body {
        Value::Array(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    items
        .iter()
        .map(|item| {
            let (Some(id_type), Some(id)) = (item["id_type"].as_str(), item["id"].as_str()) else {
                return None;
            };
            let shard = identity_shard(id_type, id);
            let local = matches!(state.cluster.route(shard, false), Route::Local);
            (!local).then(|| item.clone())
        })
        .collect()
}

/// Where an event is applied: by the node that resolves its identity.
fn place(state: &AppState, event: &Incoming, forwarded: bool) -> Route {
    let (id_type, id) = &event.identity;
    state.cluster.route(identity_shard(id_type, id), forwarded)
}

/// Applies this node's events and forwards the others, each batch to the node that
/// resolves its identities, all at once.
async fn route(
    state: &AppState,
    events: Vec<Incoming>,
    sent: Vec<Option<Value>>,
) -> Result<(), ApiError> {
    let mut local = Vec::new();
    let mut remote: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
    for (event, raw) in events.into_iter().zip(sent) {
        match (place(state, &event, false), raw) {
            (Route::Local, _) => local.push(event),
            (Route::Forward(owner), Some(raw)) => remote.entry(owner).or_default().push(raw),
            (Route::Forward(_), None) => {
                return Err(ApiError::OwnerUnavailable(
                    "the event's node changed while the request ran (a handoff); retry".into(),
                ))
            }
            (Route::Unavailable(why), _) => return Err(ApiError::OwnerUnavailable(why)),
        }
    }
    let forwards = remote.into_iter().map(|(owner, items)| async move {
        let body = serde_json::to_vec(&items)
            .map_err(|e| ApiError::Unavailable(format!("failed to encode events: {e}")))?;
        let request = Outgoing::json(Method::POST, "/api/v1/events", body);
        let answer = state.cluster.send(owner, request).await?;
        if answer.status == StatusCode::ACCEPTED {
            Ok(())
        } else {
            Err(ApiError::Relayed(Box::new(answer)))
        }
    });
    let applied = async {
        if local.is_empty() {
            Ok(())
        } else {
            state.ingestor.ingest(local).await.map(|_| ())
        }
    };
    let (applied, forwarded) = tokio::join!(applied, join_all(forwards));
    applied?;
    forwarded.into_iter().collect()
}

/// `POST /api/v1/events`
pub async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(payload, state.config.ingest.max_body_bytes).await?;
    let accepted = ingest_json(&state, body, is_forwarded(&req)).await?;
    Ok(HttpResponse::Accepted().json(json!({"accepted": accepted})))
}
