//! Routes nodes use to move users between them, outside API.md (they need
//! `x-uss-forwarded-by` and the admin key, like `replica.rs`'s):
//! `POST /internal/v1/shards` takes a message of a shard handoff (`cluster::handoff`).

use actix_web::{web, HttpRequest, HttpResponse};

use crate::cluster::forward::FORWARDED_BY;
use crate::cluster::handoff::wire::Message;
use crate::cluster::handoff::HandoffError;

use super::super::body::read_limited;
use super::super::error::ApiError;
use super::super::state::AppState;
use super::replica::from_a_node;

/// Largest message accepted from another node (a chunk is about 4 MiB).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

impl From<HandoffError> for ApiError {
    fn from(e: HandoffError) -> Self {
        match e {
            HandoffError::Refused(why) => ApiError::invalid_request(why, None),
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}

/// `POST /internal/v1/shards`: one message of a handoff, from the shards' old owner.
pub async fn receive(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    from_a_node(&req)?;
    let from = req
        .headers()
        .get(FORWARDED_BY)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = read_limited(payload, MAX_MESSAGE_BYTES).await?;
    let message = Message::decode(&bytes)
        .map_err(|e| ApiError::invalid_request(format!("not a handoff message: {e}"), None))?;
    let services = state.handoff_services();
    state
        .cluster
        .handoff()
        .receive(&services, &from, message)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
