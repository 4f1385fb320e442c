//! `POST /api/v1/events`: one event or an array, acknowledged once durable.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::domain::SECOND_MS;

use super::super::body::json_body;
use super::super::error::ApiError;
use super::super::event_json::{validate_body, EventRules};
use super::super::state::AppState;

/// Validates, ingests and acknowledges the JSON text of one body or message.
pub async fn ingest_json(state: &AppState, body: serde_json::Value) -> Result<usize, ApiError> {
    let now = state.clock.now();
    let ingest = &state.config.ingest;
    let rules = EventRules {
        identity_types: &ingest.identity_types,
        latest: now.add_millis(ingest.max_future_secs as i64 * SECOND_MS),
        now,
        max_events: ingest.max_batch_events,
    };
    let size = body.as_array().map_or(1, Vec::len) as u64;
    let events =
        validate_body(body, &rules).inspect_err(|_| state.metrics.events_rejected.inc_by(size))?;
    let count = u32::try_from(events.len()).unwrap_or(u32::MAX);
    let Ok(_permits) = state.in_flight.try_acquire_many(count) else {
        state.metrics.events_shed.inc_by(size);
        return Err(ApiError::Overloaded(format!(
            "the node is ingesting {} events already; retry shortly",
            ingest.max_in_flight_events
        )));
    };
    Ok(state.ingestor.ingest(events).await?)
}

/// `POST /api/v1/events`
pub async fn post(
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = json_body(payload, state.config.ingest.max_body_bytes).await?;
    let accepted = ingest_json(&state, body).await?;
    Ok(HttpResponse::Accepted().json(json!({"accepted": accepted})))
}
