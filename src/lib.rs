//! USS — a real-time user segmentation server.
//!
//! Events about users come in; each user's compact state is kept live; every segment's
//! membership is kept true at every moment, including when time alone changes it.
//!
//! Module map (dependencies point downwards only):
//! - [`domain`]: the pure model (instants, event facts).
//! - [`rules`]: the rule language — parser, checker, evaluator, user state, and the
//!   next instant a rule can flip. No I/O.
//! - [`clock`], [`config`], [`metrics`], [`sync`]: leaves — time, configuration,
//!   Prometheus metrics, lock helpers.
//! - [`storage`]: the typed facade over sled.
//! - [`actors`]: user actors, registry, segment catalog, group commit, timers.
//! - [`http`]: routes, validation, JSON errors, WebSockets, access control.
//! - [`cluster`]: the nodes of a cluster — the ring, user ids, forwarding, notification
//!   fan-out, membership and failure detection (gossip).
//! - [`server`]: wiring, recovery, graceful stop.

pub mod actors;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod rules;
pub mod server;
pub mod storage;
pub mod sync;
