//! What every request handler can reach.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::actors::{
    ActivityTotals, Catalog, Hub, IdentityService, Ingestor, Registry, SegmentService,
    StorageHealth, Timers,
};
use crate::clock::{Clock, ManualClock};
use crate::cluster::handoff::Services;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::storage::Store;

/// Shared by all handlers (behind `web::Data`).
pub struct AppState {
    /// The configuration in force.
    pub config: Config,
    /// The nodes, the ring, and how to reach the others.
    pub cluster: Arc<Cluster>,
    /// Storage.
    pub store: Store,
    /// User actors.
    pub registry: Arc<Registry>,
    /// The ingestion pipeline.
    pub ingestor: Ingestor,
    /// Identity links and merges.
    pub identities: Arc<IdentityService>,
    /// Segment lifecycle.
    pub segments: Arc<SegmentService>,
    /// The segments.
    pub catalog: Arc<Catalog>,
    /// Notification fan-out.
    pub hub: Hub,
    /// The node's clock.
    pub clock: Arc<dyn Clock>,
    /// The settable clock, with `--dev-clock`.
    pub dev_clock: Option<Arc<ManualClock>>,
    /// Serialises clock moves.
    pub clock_moves: tokio::sync::Mutex<()>,
    /// Timer firing.
    pub timers: Arc<Timers>,
    /// Node-wide activity totals.
    pub totals: Arc<ActivityTotals>,
    /// Metrics.
    pub metrics: Metrics,
    /// API keys and rate limits.
    pub access: super::auth::Access,
    /// Whether storage writes work.
    pub health: Arc<StorageHealth>,
    /// True once state is recovered and the node serves traffic.
    pub ready: AtomicBool,
    /// Permits for events being ingested (`ingest.max_in_flight_events`).
    pub in_flight: tokio::sync::Semaphore,
    /// The HTTP requests being served, which a stopping node waits for.
    pub requests: Arc<super::draining::Requests>,
}

impl AppState {
    /// Returns what a shard handoff touches, for the handoff's sender and receiver.
    pub fn handoff_services(&self) -> Services {
        Services {
            cluster: Arc::clone(&self.cluster),
            registry: Arc::clone(&self.registry),
            totals: Arc::clone(&self.totals),
            timers: Arc::clone(&self.timers),
            clock: Arc::clone(&self.clock),
            metrics: self.metrics.clone(),
        }
    }
}
