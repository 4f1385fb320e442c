//! The node's configuration: `config.toml` sections, built-in defaults, validation.
//!
//! Precedence, highest first: a command-line flag, the environment (`USS_BIND`,
//! `USS_DATA_DIR`, `USS_NODE_ID`), the config file, the defaults written here (each
//! section's `Default` is the only place a default lives). Unknown keys are errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::DAY_MS;
use crate::rules::Limits;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read config file `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or wrong types.
    #[error("invalid config file `{path}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said (it names the key).
        message: String,
    },
    /// Values that parse but cannot work, all listed.
    #[error("invalid configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`
    pub server: ServerSection,
    /// `[ingest]`
    pub ingest: IngestSection,
    /// `[rules]`
    pub rules: RulesSection,
    /// `[actors]`
    pub actors: ActorsSection,
    /// `[notifications]`
    pub notifications: NotificationsSection,
    /// `[storage]`
    pub storage: StorageSection,
    /// `[auth]`
    pub auth: AuthSection,
}

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

/// `[storage]`: the sled database.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// Memory sled may use to cache pages.
    pub cache_capacity_bytes: u64,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            cache_capacity_bytes: 256 * 1024 * 1024,
        }
    }
}

/// `[server]`: where the node listens and keeps its data.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// The HTTP address to bind.
    pub bind: String,
    /// Where sled keeps everything the node persists.
    pub data_dir: PathBuf,
    /// This node's id.
    pub node_id: String,
    /// HTTP worker threads (0 = one per core).
    pub http_workers: usize,
    /// How long a graceful stop waits for requests in flight.
    pub shutdown_timeout_secs: u64,
    /// Most open connections per HTTP worker; beyond it new ones wait in the backlog.
    pub max_connections_per_worker: usize,
    /// How long a client may take to send a request's head.
    pub client_request_timeout_ms: u64,
    /// How long an idle keep-alive connection stays open.
    pub keep_alive_secs: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            bind: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            node_id: "n1".into(),
            http_workers: 0,
            shutdown_timeout_secs: 10,
            max_connections_per_worker: 25_000,
            client_request_timeout_ms: 5_000,
            keep_alive_secs: 5,
        }
    }
}

/// `[ingest]`: limits on incoming events.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Most events in one request or WebSocket message.
    pub max_batch_events: usize,
    /// How far in the future `created_at` may be.
    pub max_future_secs: u64,
    /// The identity types an event's `id_type` may name.
    pub identity_types: Vec<String>,
    /// Most messages per second one events WebSocket may send; more are answered with a
    /// `rate_limited` error and not applied.
    pub ws_max_messages_per_s: u32,
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection {
            max_body_bytes: 10 * 1024 * 1024,
            max_batch_events: 10_000,
            max_future_secs: 300,
            identity_types: ["cookie", "email", "facebook", "device_id", "user_id"]
                .map(String::from)
                .to_vec(),
            ws_max_messages_per_s: 1000,
        }
    }
}

/// `[rules]`: limits of the rule language.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesSection {
    /// Longest window a rule may use; state keeps buckets this long.
    pub max_window_days: u32,
}

impl Default for RulesSection {
    fn default() -> Self {
        RulesSection {
            max_window_days: 90,
        }
    }
}

impl RulesSection {
    /// Returns the rule limits these settings give.
    pub fn limits(&self) -> Limits {
        Limits {
            max_window_ms: i64::from(self.max_window_days) * DAY_MS,
            ..Limits::default()
        }
    }
}

/// `[actors]`: user actors and their placement.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActorsSection {
    /// Fixed number of shards users are hashed to.
    pub shards: u32,
    /// Arbiters (threads) user actors run on (0 = one per core).
    pub arbiters: usize,
    /// Messages a user actor's mailbox holds before callers get `503`.
    pub mailbox_capacity: usize,
    /// A user with no message for this long leaves memory (its record stays in storage).
    pub idle_timeout_secs: u64,
    /// Most users in memory; beyond it the least recently used leave.
    pub max_resident_users: usize,
    /// How often idle and excess users are passivated.
    pub passivation_interval_ms: u64,
}

impl Default for ActorsSection {
    fn default() -> Self {
        ActorsSection {
            shards: 1024,
            arbiters: 0,
            mailbox_capacity: 256,
            idle_timeout_secs: 600,
            max_resident_users: 1_000_000,
            passivation_interval_ms: 1000,
        }
    }
}

/// `[notifications]`: live membership subscribers.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsSection {
    /// Messages buffered per subscriber; one that falls further behind is disconnected.
    pub subscriber_buffer: usize,
    /// How often the server pings a WebSocket peer.
    pub ping_interval_secs: u64,
    /// A peer silent for this long is dropped.
    pub peer_timeout_secs: u64,
    /// A subscriber that does not take a message within this long is dropped.
    pub send_timeout_secs: u64,
    /// Most notification WebSockets at once; more are refused with `503`.
    pub max_subscribers: usize,
}

impl Default for NotificationsSection {
    fn default() -> Self {
        NotificationsSection {
            subscriber_buffer: 4096,
            ping_interval_secs: 10,
            peer_timeout_secs: 30,
            send_timeout_secs: 5,
            max_subscribers: 10_000,
        }
    }
}

impl Config {
    /// Reads `path` (missing keys take their defaults), or the defaults when `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim().replace('\n', " "))
    }

    fn auth_problems(&self) -> Vec<String> {
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

    /// Checks every value and reports all problems at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.server.bind.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "server.bind `{}` is not an address like 127.0.0.1:8080",
                self.server.bind
            ));
        }
        if self.server.node_id.is_empty() {
            problems.push("server.node_id must not be empty".into());
        }
        if self.ingest.max_batch_events == 0 || self.ingest.max_body_bytes == 0 {
            problems
                .push("ingest.max_batch_events and ingest.max_body_bytes must be above 0".into());
        }
        if self.ingest.identity_types.is_empty() {
            problems.push("ingest.identity_types must list at least one type".into());
        }
        if self.rules.max_window_days == 0 {
            problems.push("rules.max_window_days must be above 0".into());
        }
        if self.actors.shards == 0 || self.actors.mailbox_capacity == 0 {
            problems.push("actors.shards and actors.mailbox_capacity must be above 0".into());
        }
        if self.actors.max_resident_users == 0 || self.actors.passivation_interval_ms == 0 {
            problems.push(
                "actors.max_resident_users and passivation_interval_ms must be above 0".into(),
            );
        }
        if self.notifications.subscriber_buffer == 0 || self.notifications.ping_interval_secs == 0 {
            problems.push(
                "notifications.subscriber_buffer and ping_interval_secs must be above 0".into(),
            );
        }
        problems.extend(self.auth_problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_config_toml_is_the_defaults() {
        let text = include_str!("../config.toml");
        assert_eq!(Config::from_toml(text).unwrap(), Config::default());
        Config::default().validate().unwrap();
    }

    #[test]
    fn a_file_may_hold_one_section() {
        let config = Config::from_toml("[server]\nbind = \"127.0.0.1:9000\"\n").unwrap();
        assert_eq!(config.server.bind, "127.0.0.1:9000");
        assert_eq!(config.server.node_id, "n1");
        assert_eq!(config.ingest, IngestSection::default());
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_toml("[server]\nbindd = \"x\"\n").unwrap_err();
        assert!(err.contains("bindd"), "{err}");
        let err = Config::from_toml("[nope]\n").unwrap_err();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn open_mode_is_refused_off_loopback_and_keys_are_never_printed() {
        let mut config = Config::default();
        config.server.bind = "0.0.0.0:8080".into();
        assert!(config.validate().is_err());
        config.auth.allow_open = true;
        config.validate().unwrap();
        let parsed = Config::from_toml(
            "[auth]\nkeys = [{ name = \"site\", key = \"k_ingest_0123456789\", role = \"ingest\", rate_per_s = 5.0 }]\ncors_origins = [\"*\"]\n",
        )
        .unwrap();
        assert_eq!(parsed.auth.keys[0].role, Role::Ingest);
        assert!(!format!("{parsed:?}").contains("k_ingest_0123456789"));
        let err =
            Config::from_toml("[auth]\nkeys = [{ name = \"x\", key = \"k\", role = \"root\" }]\n")
                .unwrap_err();
        assert!(err.contains("root"), "{err}");
    }

    #[test]
    fn validation_lists_every_problem() {
        let mut config = Config::default();
        config.server.bind = "nowhere".into();
        config.actors.shards = 0;
        let ConfigError::Invalid(problems) = config.validate().unwrap_err() else {
            panic!("expected Invalid")
        };
        assert_eq!(problems.len(), 2);
    }
}
