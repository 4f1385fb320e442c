//! API keys and roles (API.md "Access"): who may call which route, per-key rate limits.
//!
//! A key comes as `Authorization: Bearer KEY`, or as `?key=KEY` on WebSocket routes
//! (browsers cannot set headers there). Keys are compared in constant time and never
//! logged. With no keys configured every request is allowed (development).

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpRequest};

use crate::clock::uptime_ms;
use crate::config::{AuthSection, Role};
use crate::sync::locked;

use super::error::ApiError;
use super::state::AppState;

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Sending events, identify.
    Ingest,
    /// Reading (every GET route, notifications, rule validation).
    Read,
    /// Changing segments and the clock.
    Admin,
    /// Any valid key (unknown routes and methods under `/api/`).
    AnyKey,
}

fn allows(role: Role, class: Class) -> bool {
    matches!(
        (role, class),
        (Role::Admin, _)
            | (_, Class::AnyKey)
            | (Role::Ingest, Class::Ingest)
            | (Role::Read, Class::Read)
    )
}

struct Key {
    name: String,
    secret: Vec<u8>,
    role: Role,
    rate_per_s: Option<f64>,
}

/// A token bucket: `tokens` left at `at_ms` (uptime).
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

/// The configured keys and their rate-limit buckets.
pub struct Access {
    keys: Vec<Key>,
    buckets: Mutex<HashMap<usize, Bucket>>,
}

/// Compares two byte strings in time that depends only on their lengths.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut difference = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        difference |= x ^ b.get(i).copied().unwrap_or(0);
    }
    difference == 0
}

impl Access {
    /// Builds the key table from `[auth]`.
    pub fn new(auth: &AuthSection) -> Access {
        let keys = auth
            .keys
            .iter()
            .map(|k| Key {
                name: k.name.clone(),
                secret: k.key.as_bytes().to_vec(),
                role: k.role,
                rate_per_s: k.rate_per_s,
            })
            .collect();
        Access {
            keys,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Returns whether no keys are configured (every request allowed).
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// Returns the index of the key matching `presented`, checking every key.
    fn find(&self, presented: &[u8]) -> Option<usize> {
        let mut found = None;
        for (i, key) in self.keys.iter().enumerate() {
            if same_secret(&key.secret, presented) && found.is_none() {
                found = Some(i);
            }
        }
        found
    }

    /// Takes one token from the key's bucket, or says how long to wait.
    fn take_token(&self, index: usize, rate: f64) -> Result<(), u64> {
        let now = uptime_ms();
        let mut buckets = locked(&self.buckets);
        let capacity = rate.max(1.0);
        let bucket = buckets.entry(index).or_insert(Bucket {
            tokens: capacity,
            at_ms: now,
        });
        let elapsed_s = now.saturating_sub(bucket.at_ms) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed_s * rate).min(capacity);
        bucket.at_ms = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64)
        }
    }

    /// Decides whether a request carrying `presented` may use a route of `class`. A
    /// request another node forwarded with the admin key is not rate-limited again (its
    /// client's own key was, on the node it reached).
    pub fn check(
        &self,
        presented: Option<&str>,
        class: Class,
        forwarded: bool,
    ) -> Result<(), ApiError> {
        if self.is_open() {
            return Ok(());
        }
        let Some(index) = presented.and_then(|k| self.find(k.as_bytes())) else {
            return Err(ApiError::Unauthorized(
                "a valid API key is required: send Authorization: Bearer KEY".into(),
            ));
        };
        let key = &self.keys[index];
        if !allows(key.role, class) {
            return Err(ApiError::Forbidden(format!(
                "key `{}` has role {:?}, which may not use this route",
                key.name, key.role
            )));
        }
        if let Some(rate) = key
            .rate_per_s
            .filter(|_| !(forwarded && key.role == Role::Admin))
        {
            self.take_token(index, rate)
                .map_err(|wait_s| ApiError::RateLimited {
                    message: format!("key `{}` is over its {rate} requests per second", key.name),
                    retry_after_s: wait_s,
                })?;
        }
        Ok(())
    }
}

/// Returns the key a request presents: the Bearer header, or `?key=` on WebSockets.
fn presented_key(req: &HttpRequest) -> Option<String> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|k| k.trim().to_owned());
    header.or_else(|| {
        if !req.path().ends_with("/ws") {
            return None;
        }
        web::Query::<HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.into_inner().remove("key"))
    })
}

async fn guard(
    class: Class,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        let forwarded = super::peers::is_forwarded(req.request());
        state
            .access
            .check(presented_key(req.request()).as_deref(), class, forwarded)?;
    }
    next.call(req).await
}

/// Route middleware: needs the ingest role (or admin).
pub async fn ingest(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    guard(Class::Ingest, req, next).await
}

/// Route middleware: needs the read role (or admin).
pub async fn read(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    guard(Class::Read, req, next).await
}

/// Route middleware: needs the admin role.
pub async fn admin(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    guard(Class::Admin, req, next).await
}

/// Checks a request to an unknown route or method: under `/api/` it still needs a
/// valid key (`401` first), so that only key holders learn which routes exist.
pub fn check_any_key(req: &HttpRequest) -> Result<(), ApiError> {
    match req.app_data::<web::Data<AppState>>() {
        Some(state) if req.path().starts_with("/api/") => {
            state
                .access
                .check(presented_key(req).as_deref(), Class::AnyKey, false)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKey;

    fn access() -> Access {
        let key = |name: &str, key: &str, role, rate_per_s| ApiKey {
            name: name.into(),
            key: key.into(),
            role,
            rate_per_s,
        };
        Access::new(&AuthSection {
            keys: vec![
                key("site", "k_ingest_0123456789", Role::Ingest, None),
                key("crm", "k_read_0123456789", Role::Read, Some(2.0)),
                key("ops", "k_admin_0123456789", Role::Admin, None),
                key("peer", "k_admin_limited_0123", Role::Admin, Some(1.0)),
            ],
            ..AuthSection::default()
        })
    }

    #[test]
    fn roles_open_exactly_their_routes() {
        let access = access();
        let code = |key: Option<&str>, class| access.check(key, class, false).map_err(|e| e.code());
        assert_eq!(code(None, Class::Read), Err("unauthorized"));
        assert_eq!(
            code(Some("k_nope_0123456789"), Class::AnyKey),
            Err("unauthorized")
        );
        assert_eq!(code(Some("k_ingest_0123456789"), Class::Ingest), Ok(()));
        assert_eq!(
            code(Some("k_ingest_0123456789"), Class::Read),
            Err("forbidden")
        );
        assert_eq!(code(Some("k_ingest_0123456789"), Class::AnyKey), Ok(()));
        assert_eq!(
            code(Some("k_read_0123456789"), Class::Admin),
            Err("forbidden")
        );
        assert_eq!(code(Some("k_admin_0123456789"), Class::Admin), Ok(()));
        assert_eq!(code(Some("k_admin_0123456789"), Class::Ingest), Ok(()));
    }

    #[test]
    fn a_key_over_its_rate_is_limited() {
        let access = access();
        let key = Some("k_read_0123456789");
        assert!(access.check(key, Class::Read, false).is_ok());
        assert!(access.check(key, Class::Read, false).is_ok());
        let limited = access.check(key, Class::Read, false).unwrap_err();
        assert_eq!(limited.code(), "rate_limited");
    }

    #[test]
    fn requests_forwarded_with_the_admin_key_are_not_limited_twice() {
        let access = access();
        let admin = Some("k_admin_limited_0123");
        for _ in 0..5 {
            assert!(access.check(admin, Class::Admin, true).is_ok());
        }
        assert!(access.check(admin, Class::Admin, false).is_ok());
        let limited = access.check(admin, Class::Admin, false).unwrap_err();
        assert_eq!(limited.code(), "rate_limited");
        let read = Some("k_read_0123456789");
        for _ in 0..2 {
            assert!(access.check(read, Class::Read, true).is_ok());
        }
        assert!(access.check(read, Class::Read, true).is_err());
    }

    #[test]
    fn no_keys_means_open() {
        let open = Access::new(&AuthSection::default());
        assert!(open.is_open());
        assert!(open.check(None, Class::Admin, false).is_ok());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }
}
