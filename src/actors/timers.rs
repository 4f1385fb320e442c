//! Fires durable timers, and the ones not in storage yet (`DueSoon`): each user whose
//! next-change instant has come is ticked, loaded from storage if it is not in memory. Driven by the system clock (a loop) or by the dev
//! clock (each time it is set).

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use crate::clock::Clock;
use crate::domain::Timestamp;
use crate::metrics::Metrics;
use crate::storage::Store;

use super::due_soon::DueSoon;
use super::record::UserOp;
use super::registry::{Registry, Sweep};
use super::ActorError;

/// Longest sleep of the system-clock loop, so new timers are seen soon.
const MAX_SLEEP: Duration = Duration::from_millis(250);

/// Ticks users whose timers are due.
pub struct Timers {
    store: Store,
    registry: Arc<Registry>,
    metrics: Metrics,
    due_soon: Arc<DueSoon>,
}

impl Timers {
    /// Creates the timer service.
    pub fn new(
        store: Store,
        registry: Arc<Registry>,
        metrics: Metrics,
        due_soon: Arc<DueSoon>,
    ) -> Timers {
        Timers {
            store,
            registry,
            metrics,
            due_soon,
        }
    }

    /// Ticks every user due at or before `now` and waits until their changes are durable
    /// and pushed. Returns how many users were ticked.
    pub async fn fire_due(&self, now: Timestamp) -> Result<usize, ActorError> {
        let mut due = self.store.due_timers(now).map_err(super::storage)?;
        due.extend(self.due_soon.take_due(now));
        let count = due.len();
        for (at, _) in &due {
            let lag_ms = now.as_millis().saturating_sub(at.as_millis()).max(0);
            self.metrics.timer_lag.observe(lag_ms as f64 / 1000.0);
        }
        let mut users: Vec<u64> = due.into_iter().map(|(_, user)| user).collect();
        users.sort_unstable();
        users.dedup();
        self.registry
            .sweep(Sweep::These(users), UserOp::Tick)
            .await?;
        Ok(count)
    }

    /// Fires timers as the system clock reaches them, until the task is dropped.
    pub async fn run(self, clock: Arc<dyn Clock>) {
        loop {
            let now = clock.now();
            if let Err(e) = self.fire_due(now).await {
                warn!(error = %e, "some timers did not fire; retrying");
            }
            let stored = self.store.first_timer().ok().flatten();
            let next = match (stored, self.due_soon.first()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let wait_ms = next.map_or(i64::MAX, |due| due.as_millis() - clock.now().as_millis());
            let wait = Duration::from_millis(wait_ms.clamp(1, MAX_SLEEP.as_millis() as i64) as u64);
            tokio::time::sleep(wait).await;
        }
    }
}
