//! `GET`/`POST /api/v1/admin/clock`: the dev clock (404 without `--dev-clock`).

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use tracing::info;

use crate::clock::{ManualClock, DEV_CLOCK_KEY};
use crate::domain::Timestamp;

use super::super::body::json_body;
use super::super::dto::time;
use super::super::error::ApiError;
use super::super::state::AppState;

fn dev_clock(state: &AppState) -> Result<&Arc<ManualClock>, ApiError> {
    state
        .dev_clock
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("no such route (start the node with --dev-clock)".into()))
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(e.to_string())
}

/// `GET /api/v1/admin/clock`
pub async fn get(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let clock = dev_clock(&state)?;
    Ok(HttpResponse::Ok().json(json!({"now": time(crate::clock::Clock::now(clock.as_ref()))})))
}

/// `POST /api/v1/admin/clock {"now": …}`: answers after the flips it causes are pushed.
pub async fn set(
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let clock = dev_clock(&state)?;
    let body = json_body(payload, 4096).await?;
    let text = match body.get("now") {
        Some(Value::String(text)) => text.clone(),
        _ => {
            return Err(ApiError::invalid_request(
                "now is required, like \"2026-11-10T00:00:00Z\"",
                Some("now"),
            ))
        }
    };
    let now = Timestamp::parse(&text)
        .map_err(|e| ApiError::invalid_request(e.to_string(), Some("now")))?;
    let _one_move_at_a_time = state.clock_moves.lock().await;
    let current = crate::clock::Clock::now(clock.as_ref());
    if now < current && !state.store.has_no_users().map_err(unavailable)? {
        return Err(ApiError::ClockBackwards(format!(
            "the clock cannot move back from {} while users exist",
            time(current)
        )));
    }
    state
        .store
        .set_meta(DEV_CLOCK_KEY, &now)
        .map_err(unavailable)?;
    state.store.flush().await.map_err(unavailable)?;
    clock.set(now);
    let fired = state.timers.fire_due(now).await?;
    info!(now = %now, fired, "dev clock set");
    Ok(HttpResponse::Ok().json(json!({"now": time(now)})))
}
