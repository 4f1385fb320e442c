//! `POST /api/v1/events`: one event or an array, acknowledged once durable. In a cluster
//! each event goes to the node that resolves its identity; the answer waits for all.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::join_all;
use serde_json::json;
use serde_json::value::RawValue;

use crate::actors::Incoming;
use crate::cluster::{identity_shard, Outgoing, Route};
use crate::domain::SECOND_MS;

use super::super::body::read_limited;
use super::super::error::ApiError;
use super::super::event_decode::{decode_events, Decoded};
use super::super::event_json::EventRules;
use super::super::peers::is_forwarded;
use super::super::state::AppState;

/// An event's JSON text, as sent.
type Text<'a> = Cow<'a, RawValue>;

/// Validates, ingests and acknowledges the JSON text of one body or message; `forwarded`
/// says another node sent it (its events are this node's to apply).
pub async fn ingest_json(
    state: &AppState,
    body: &[u8],
    forwarded: bool,
) -> Result<usize, ApiError> {
    if !forwarded && !state.ready.load(Ordering::SeqCst) {
        // Only an events WebSocket opened before the node began to stop gets here (the
        // ready gate holds back HTTP requests).
        return Err(ApiError::Unavailable(
            "the node is stopping; retry shortly".into(),
        ));
    }
    let now = state.clock.now();
    let ingest = &state.config.ingest;
    let rules = EventRules {
        identity_types: &ingest.identity_types,
        latest: now.add_millis(ingest.max_future_secs as i64 * SECOND_MS),
        now,
        max_events: ingest.max_batch_events,
    };
    // Another node applies some events: their texts are kept to send on.
    let split = !state.cluster.is_single() && !forwarded;
    let decoded = decode_events(body, &rules, split).map_err(|refused| {
        state.metrics.events_rejected.inc_by(refused.events);
        refused.error
    })?;
    let (events, sent) = if split {
        let (events, sent) = elsewhere(state, decoded);
        (events, Some(sent))
    } else {
        (decoded.events, None)
    };
    let count = events.len();
    let Ok(_permits) = state
        .in_flight
        .try_acquire_many(u32::try_from(count).unwrap_or(u32::MAX))
    else {
        state.metrics.events_shed.inc_by(count as u64);
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

/// Keeps the texts of the events that another node applies (by position in the body);
/// `None` for this node's.
fn elsewhere<'a>(state: &AppState, decoded: Decoded<'a>) -> (Vec<Incoming>, Vec<Option<Text<'a>>>) {
    debug_assert_eq!(decoded.events.len(), decoded.texts.len());
    let sent = decoded
        .events
        .iter()
        .zip(decoded.texts)
        .map(|(event, text)| {
            let local = matches!(place(state, event, false), Route::Local);
            (!local).then_some(text)
        })
        .collect();
    (decoded.events, sent)
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
    sent: Vec<Option<Text<'_>>>,
) -> Result<(), ApiError> {
    let mut local = Vec::new();
    let mut remote: BTreeMap<usize, Vec<Text<'_>>> = BTreeMap::new();
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
    let body = read_limited(payload, state.config.ingest.max_body_bytes).await?;
    let accepted = ingest_json(&state, &body, is_forwarded(&req)).await?;
    Ok(HttpResponse::Accepted().json(json!({"accepted": accepted})))
}
