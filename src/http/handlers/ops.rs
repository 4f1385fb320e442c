//! Operations: health, readiness, metrics, and node-wide activity totals.

use std::sync::atomic::Ordering;

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::super::dto::time;
use super::super::error::ApiError;
use super::super::state::AppState;

/// `GET /healthz`
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if !state.ready.load(Ordering::SeqCst) {
        HttpResponse::ServiceUnavailable().json(json!({"status": "not_serving"}))
    } else if !state.health.is_ok() {
        HttpResponse::ServiceUnavailable().json(json!({"status": "storage_failing"}))
    } else {
        HttpResponse::Ok().json(json!({"status": "ready"}))
    }
}

/// `GET /metrics`
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// `GET /api/v1/activities`
pub async fn activities(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let activities: Vec<_> = state
        .totals
        .snapshot()
        .into_iter()
        .map(|(name, s)| json!({"activity_type": name, "count": s.count, "last_at": s.last_at.map(time)}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"activities": activities})))
}
