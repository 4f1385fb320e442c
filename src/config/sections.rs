//! The plain sections of `config.toml` and their defaults: server, ingest, rules,
//! actors, notifications, storage.

use std::path::PathBuf;

use serde::Deserialize;

use crate::domain::DAY_MS;
use crate::rules::Limits;

/// `[storage]`: the sled database.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// Memory sled may use to cache pages (32 MiB by default, so a million resident users
    /// stay under 2 KiB each; sled's real use is about twice it). More creates new users
    /// faster (17% with 256 MiB); returning users' ingest did not change.
    pub cache_capacity_bytes: u64,
    /// How often users with journaled events are saved whole (snapshots), after which
    /// the journal entries behind them are dropped. Longer saves CPU (5 s: 15% less per
    /// event batched) but lengthens the replay after a crash (5 s: a million users
    /// recovered in 41 s instead of 18 s).
    pub snapshot_interval_ms: u64,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            cache_capacity_bytes: 32 * 1024 * 1024,
            snapshot_interval_ms: 1000,
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
    /// Most events being ingested at once on the node (HTTP and WebSocket together); a
    /// body that would go past it is answered `503 overloaded` at once, not queued.
    pub max_in_flight_events: usize,
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
            max_in_flight_events: 20_000,
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
