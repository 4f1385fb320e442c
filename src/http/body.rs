//! Reads request bodies with a size limit and parses JSON with line/column errors.

use actix_web::web;
use futures_util::StreamExt;
use serde_json::Value;

use super::error::ApiError;

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    let too_large = || ApiError::PayloadTooLarge(format!("body is larger than {limit} bytes"));
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            actix_web::error::PayloadError::Overflow => too_large(),
            other => ApiError::invalid_request(format!("failed to read the body: {other}"), None),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses JSON text, reporting the line and column of a syntax error.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidJson {
        message: format!("malformed JSON: {e}"),
        line: e.line().max(1),
        column: e.column().max(1),
    })
}

/// Reads and parses a JSON body.
pub async fn json_body(payload: web::Payload, limit: usize) -> Result<Value, ApiError> {
    parse_json(&read_limited(payload, limit).await?)
}
