//! One file per HTTP resource, plus the small helpers they share.

pub mod admin;
pub mod events;
pub mod identify;
pub mod links;
pub mod ops;
pub mod replica;
pub mod segments;
pub mod shards;
pub mod users;

use std::collections::HashMap;

use actix_web::HttpRequest;

use super::error::ApiError;

/// Parses the `{name}` path segment as an integer id.
pub fn path_id(req: &HttpRequest, name: &str) -> Result<u64, ApiError> {
    let raw = req.match_info().get(name).unwrap_or_default();
    raw.parse().map_err(|_| {
        ApiError::invalid_request(
            format!("{name} must be a positive integer, got \"{raw}\""),
            Some(name),
        )
    })
}

/// Parses the query string.
pub fn query(req: &HttpRequest) -> Result<HashMap<String, String>, ApiError> {
    actix_web::web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(actix_web::web::Query::into_inner)
        .map_err(|e| ApiError::invalid_request(format!("invalid query string: {e}"), None))
}
