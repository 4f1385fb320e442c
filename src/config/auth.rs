//! `[auth]`: API keys with their roles and rates, browser origins, open mode.

use std::net::SocketAddr;

use serde::Deserialize;

use super::Config;

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Send events (HTTP and WebSocket) and identify.
    Ingest,
    /// Every GET route, the notifications WebSocket, and rule validation.
    Read,
    /// Everything.
    Admin,
}

/// One API key.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// A name for logs and limits (the key itself is never logged).
    pub name: String,
    /// The secret.
    pub key: String,
    /// What it may do.
    pub role: Role,
    /// Requests per second allowed for this key (none = unlimited).
    #[serde(default)]
    pub rate_per_s: Option<f64>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .field("role", &self.role)
            .field("rate_per_s", &self.rate_per_s)
            .finish()
    }
}

/// `[auth]`: API keys and browser origins.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// The keys; none means every request is allowed (development only).
    pub keys: Vec<ApiKey>,
    /// Origins whose pages may call the API from a browser (`*` for any).
    pub cors_origins: Vec<String>,
    /// Allows running without keys on a non-loopback address.
    pub allow_open: bool,
}

impl Config {
    /// Returns the key nodes present to each other: the first admin key, if keys are set.
    pub fn cluster_key(&self) -> Option<&str> {
        self.auth
            .keys
            .iter()
            .find(|key| key.role == Role::Admin)
            .map(|key| key.key.as_str())
    }

    pub(super) fn auth_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let keys = &self.auth.keys;
        for (i, key) in keys.iter().enumerate() {
            if key.key.len() < 16 {
                problems.push(format!(
                    "auth.keys `{}`: a key must be at least 16 characters",
                    key.name
                ));
            }
            if keys[..i]
                .iter()
                .any(|k| k.key == key.key || k.name == key.name)
            {
                problems.push(format!(
                    "auth.keys `{}`: names and keys must be unique",
                    key.name
                ));
            }
            if key.rate_per_s.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                problems.push(format!(
                    "auth.keys `{}`: rate_per_s must be above 0",
                    key.name
                ));
            }
        }
        if !keys.is_empty() && self.cluster.nodes.len() > 1 && self.cluster_key().is_none() {
            problems.push(
                "auth.keys: a cluster needs an admin key, which nodes use to ask each other".into(),
            );
        }
        let loopback = self
            .server
            .bind
            .parse::<SocketAddr>()
            .map_or(true, |addr| addr.ip().is_loopback());
        if keys.is_empty() && !loopback && !self.auth.allow_open {
            problems.push(format!(
                "no auth.keys configured and server.bind `{}` is not loopback: add keys or set auth.allow_open = true",
                self.server.bind
            ));
        }
        problems
    }
}
