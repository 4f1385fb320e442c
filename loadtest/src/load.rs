//! The connection loop shared by both transports: take a slot from the plan, wait for
//! its due time, build the body, send, count, and record the latency.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use crate::clock::{instant_now, TimeBase};
use crate::latency::Latencies;
use crate::plan::Plan;
use crate::workload::Workload;

/// The errors table's label of a connection that could not be opened: nothing was
/// sent, and the connection backs off before trying again.
pub const CONNECT: &str = "connect";

/// How long a connection waits after failing to connect.
const CONNECT_BACKOFF: Duration = Duration::from_millis(100);

/// A way to deliver one body of events and learn whether the node acknowledged it.
pub(crate) trait Transport {
    /// Sends `body` (`events` events); `Err` carries the errors table's label
    /// ([`CONNECT`] when no connection could be opened).
    async fn send(&mut self, body: String, events: usize) -> Result<(), String>;
}

/// Counters shared by every connection of the run.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests (or messages) acknowledged.
    pub requests_ok: Cell<u64>,
    /// Requests (or messages) that failed.
    pub requests_failed: Cell<u64>,
    /// Events sent.
    pub events_sent: Cell<u64>,
    /// Events acknowledged.
    pub events_acked: Cell<u64>,
    /// Events of the open-loop schedule that fell due but were not sent by the end.
    pub events_missed: Cell<u64>,
    /// Failures by label.
    pub errors: RefCell<BTreeMap<String, u64>>,
}

impl Stats {
    /// Counts one failure labelled `label`.
    pub fn error(&self, label: String) {
        *self.errors.borrow_mut().entry(label).or_default() += 1;
    }
}

/// What every connection shares.
pub struct Shared {
    /// The schedule.
    pub plan: Rc<Plan>,
    /// The one event stream (so a seed fixes the events whatever the connections).
    pub workload: Rc<RefCell<Workload>>,
    /// The node's now, for `created_at`.
    pub time_base: TimeBase,
    /// The counters.
    pub stats: Rc<Stats>,
}

/// Runs one connection until the plan is over; returns its latencies.
pub(crate) async fn drive(mut transport: impl Transport, shared: Rc<Shared>) -> Latencies {
    let mut latencies = Latencies::new();
    let stats = &shared.stats;
    while let Some(slot) = shared.plan.next(instant_now()) {
        if let Some(due) = slot.due {
            actix_rt::time::sleep_until(due.into()).await;
            if shared.plan.is_past_deadline(instant_now()) {
                // Due before the end but not sent by it: the node (or we) fell behind.
                shared.plan.stop();
                stats
                    .events_missed
                    .set(stats.events_missed.get() + slot.events as u64);
                break;
            }
        }
        let body = shared
            .workload
            .borrow_mut()
            .body(slot.events, shared.time_base.now_ms());
        let sent_at = instant_now();
        let outcome = transport.send(body, slot.events).await;
        if outcome.as_ref().is_err_and(|label| label == CONNECT) {
            stats.requests_failed.set(stats.requests_failed.get() + 1);
            stats.error(CONNECT.to_owned());
            // The node is down or refusing: do not spin.
            actix_rt::time::sleep(CONNECT_BACKOFF).await;
            continue;
        }
        stats
            .events_sent
            .set(stats.events_sent.get() + slot.events as u64);
        match outcome {
            Ok(()) => {
                latencies.record(instant_now() - slot.due.unwrap_or(sent_at));
                stats.requests_ok.set(stats.requests_ok.get() + 1);
                stats
                    .events_acked
                    .set(stats.events_acked.get() + slot.events as u64);
            }
            Err(label) => {
                stats.requests_failed.set(stats.requests_failed.get() + 1);
                stats.error(label);
            }
        }
    }
    latencies
}
