//! The node's configuration: `config.toml` sections, built-in defaults, validation.
//!
//! Precedence, highest first: a command-line flag, the environment (`USS_BIND`,
//! `USS_DATA_DIR`, `USS_NODE_ID`), the config file, the defaults written here (each
//! section's `Default` is the only place a default lives). Unknown keys are errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod auth;
mod cluster;
mod identity;
mod sections;

pub use auth::{ApiKey, AuthSection, Role};
pub use cluster::{ClusterSection, NodeAddr, MAX_NODES};
pub use identity::IdentitySection;
pub use sections::{
    ActorsSection, IngestSection, NotificationsSection, RulesSection, ServerSection, StorageSection,
};

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
    /// `[identity]`
    pub identity: IdentitySection,
    /// `[cluster]`
    pub cluster: ClusterSection,
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
        if self.ingest.max_in_flight_events < self.ingest.max_batch_events {
            problems.push("ingest.max_in_flight_events must be at least max_batch_events".into());
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
        problems.extend(self.identity.problems());
        problems.extend(self.cluster.problems(&self.server.node_id));
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
        let text = include_str!("../../config.toml");
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
