//! The one place errors become HTTP answers: `ApiError`, its status table, and the JSON
//! body `{"error": {"code", "message", "field"?, "index"?, "line"?, "column"?}}`.
//! Codes are public API.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use tracing::error;

use crate::actors::{ActorError, SegmentError};

/// Every error a route can answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON.
    #[error("{message}")]
    InvalidJson {
        message: String,
        line: usize,
        column: usize,
    },
    /// An event breaks a rule of the field table.
    #[error("{message}")]
    InvalidEvent {
        message: String,
        field: String,
        index: Option<usize>,
    },
    /// A request that is not an event is malformed (path id, query, body shape).
    #[error("{message}")]
    InvalidRequest {
        message: String,
        field: Option<String>,
    },
    /// More events than allowed in one body.
    #[error("{0}")]
    TooManyEvents(String),
    /// Body over the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// No such route or resource.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method.
    #[error("method not allowed; allowed: {}", .0.join(", "))]
    MethodNotAllowed(Vec<&'static str>),
    /// A segment name is taken.
    #[error("{0}")]
    NameTaken(String),
    /// No valid API key.
    #[error("{0}")]
    Unauthorized(String),
    /// The key's role may not use this route.
    #[error("{0}")]
    Forbidden(String),
    /// The key is over its rate.
    #[error("{message}")]
    RateLimited { message: String, retry_after_s: u64 },
    /// The dev clock cannot move backwards while users exist.
    #[error("{0}")]
    ClockBackwards(String),
    /// Every identity of an identify call was refused.
    #[error("{0}")]
    IdentityRefused(String),
    /// A rule does not compile.
    #[error("{message}")]
    InvalidRule {
        message: String,
        line: u32,
        column: u32,
    },
    /// The node is overloaded (a full mailbox).
    #[error("{0}")]
    Overloaded(String),
    /// Storage or shutdown prevented the work; nothing was acknowledged.
    #[error("{0}")]
    Unavailable(String),
    /// The node that owns the user (or identity) cannot be reached.
    #[error("{0}")]
    OwnerUnavailable(String),
    /// Another node answered with an error; it is passed on as it came.
    #[error("another node answered {}", .0.status)]
    Relayed(Box<crate::cluster::Answer>),
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<usize>,
}

impl ApiError {
    /// Returns the stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson { .. } => "invalid_json",
            ApiError::InvalidEvent { .. } => "invalid_event",
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::TooManyEvents(_) => "too_many_events",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::NameTaken(_) => "name_taken",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::ClockBackwards(_) => "clock_backwards",
            ApiError::InvalidRule { .. } => "invalid_rule",
            ApiError::IdentityRefused(_) => "identity_refused",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::OwnerUnavailable(_) => "owner_unavailable",
            ApiError::Relayed(_) => "relayed",
        }
    }

    /// Returns a `400 invalid_request` about `field`.
    pub fn invalid_request(message: impl Into<String>, field: Option<&str>) -> ApiError {
        ApiError::InvalidRequest {
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson { .. }
            | ApiError::InvalidEvent { .. }
            | ApiError::InvalidRequest { .. }
            | ApiError::TooManyEvents(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NameTaken(_) | ApiError::ClockBackwards(_) => StatusCode::CONFLICT,
            ApiError::InvalidRule { .. } | ApiError::IdentityRefused(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Overloaded(_) | ApiError::Unavailable(_) | ApiError::OwnerUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Relayed(answer) => answer.status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Relayed(answer) = self {
            let mut response = HttpResponse::build(answer.status);
            for (name, value) in &answer.headers {
                response.insert_header((name.clone(), value.clone()));
            }
            return response.body(answer.body.clone());
        }
        let status = self.status_code();
        if status.is_server_error() && !matches!(self, ApiError::Overloaded(_)) {
            error!(code = self.code(), error = %self, "request failed");
        }
        let mut response = HttpResponse::build(status);
        match self {
            ApiError::MethodNotAllowed(allowed) => {
                response.insert_header((header::ALLOW, allowed.join(", ")));
            }
            ApiError::Overloaded(_) | ApiError::Unavailable(_) | ApiError::OwnerUnavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::RateLimited { retry_after_s, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after_s.to_string()));
            }
            _ => {}
        }
        response
            .content_type("application/json")
            .body(self.body_json())
    }
}

impl ApiError {
    /// Returns the JSON error body, as sent over HTTP and WebSocket.
    pub fn body_json(&self) -> String {
        if let ApiError::Relayed(answer) = self {
            return String::from_utf8_lossy(&answer.body).into_owned();
        }
        let (field, index, line, column) = match self {
            ApiError::InvalidJson { line, column, .. } => (None, None, Some(*line), Some(*column)),
            ApiError::InvalidEvent { field, index, .. } => {
                (Some(field.as_str()), *index, None, None)
            }
            ApiError::InvalidRequest { field, .. } => (field.as_deref(), None, None, None),
            ApiError::InvalidRule { line, column, .. } => {
                (None, None, Some(*line as usize), Some(*column as usize))
            }
            _ => (None, None, None, None),
        };
        let body = Body {
            error: Detail {
                code: self.code(),
                message: self.to_string(),
                field,
                index,
                line,
                column,
            },
        };
        serde_json::to_string(&body).unwrap_or_default()
    }
}

impl From<ActorError> for ApiError {
    fn from(e: ActorError) -> Self {
        match e {
            ActorError::MailboxFull => {
                ApiError::Overloaded("the node is overloaded; retry shortly".into())
            }
            ActorError::ShuttingDown => ApiError::Unavailable("the node is shutting down".into()),
            ActorError::Storage(m) => ApiError::Unavailable(format!("storage failed: {m}")),
            ActorError::OwnerUnavailable(m) => ApiError::OwnerUnavailable(m),
            ActorError::Moved(survivor) => ApiError::Unavailable(format!(
                "the user was merged into user {survivor} while the request ran; retry"
            )),
            ActorError::NotServed(why) => ApiError::OwnerUnavailable(why),
        }
    }
}

impl From<SegmentError> for ApiError {
    fn from(e: SegmentError) -> Self {
        match e {
            SegmentError::InvalidRule(rule) => ApiError::InvalidRule {
                message: rule.message,
                line: rule.line,
                column: rule.column,
            },
            SegmentError::NameTaken(name) => {
                ApiError::NameTaken(format!("a segment named \"{name}\" already exists"))
            }
            SegmentError::NotFound(id) => ApiError::NotFound(format!("segment {id} not found")),
            SegmentError::InvalidName(m) => ApiError::invalid_request(m, Some("name")),
            SegmentError::Actor(a) => a.into(),
        }
    }
}
