//! The HTTP and WebSocket API of API.md: routes, request validation, JSON errors,
//! WebSocket sessions, and the metrics endpoint; and the web console's static files.
//! Holds no business logic: it validates, calls the actors' services, and shapes answers.

mod auth;
mod body;
mod console;
mod cors;
mod draining;
mod dto;
mod error;
mod event_decode;
mod event_json;
mod handlers;
mod openapi;
mod peers;
mod routes;
mod state;
mod ws;

pub use auth::Access;
pub use body::parse_json;
pub use cors::cors;
pub use draining::{drain, Requests};
pub use error::ApiError;
pub use event_decode::{decode_events, Decoded, Refused};
pub use event_json::{validate_body, EventRules};
pub use peers::ready_gate;
pub use routes::{configure, method_label, route_label, status_label};
pub use state::AppState;

/// Takes what a node of a cluster may have missed while it was down: the segment catalog
/// from its keeper, and the dev clock of a running node.
pub async fn catch_up(state: &AppState) -> Result<(), ApiError> {
    handlers::replica::catch_up(state).await?;
    handlers::admin::catch_up(state).await
}
