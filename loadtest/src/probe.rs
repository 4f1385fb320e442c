//! Event → notification latency: probes built to make a fresh user enter a segment,
//! timed from the send of that event to the push of the change on
//! `/api/v1/notifications/ws`.
//!
//! Each probe creates its user first with an event that enters no fixture segment
//! (`workload::probe_setup_event`) and looks its `user_id` up by the cookie, both
//! untimed, so that the timed event is a plain ingest for an existing user. It then
//! arms the user, sends `workload::probe_event`, and the listener records the latency of
//! the first notification in which that user enters one of the run's segments. Probes
//! are sent open loop at `--probe-rate` on their own connection, next to the load. A
//! probe still unanswered `GRACE` after the load ends counts as lost.
//!
//! Probes used to create their users with `POST /api/v1/identify`. An identify is a
//! merge, made durable by a flush of sled. While merges ran one at a time on a node, at
//! 50 probes a second next to saturating batched ingestion identifies took 1 to over
//! 5 s (and the probes' push p99 up to 2.4 s); at 20k events/s, 100 probes a second cost
//! ~10% of the node's CPU (BENCHMARKS.md, session 13). The instrument should not be the
//! load: an event and a read cost the node what any user's do.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};

use crate::api::Api;
use crate::clock::instant_now;
use crate::latency::{Latencies, Percentiles};
use crate::plan::Plan;
use crate::workload::{probe_event, probe_setup_event};
use crate::ws::Socket;

/// How long probes may still be answered after the load ends.
pub const GRACE: Duration = Duration::from_secs(3);
/// Connections the probes may hold at once: each probe's requests go on a connection
/// of their own, never queued behind another probe's.
pub const CONNECTIONS: usize = 256;

/// The part of a notification the probes read.
#[derive(Debug, Deserialize)]
struct Notification {
    user_id: u64,
    #[serde(default)]
    in_segments: Vec<u64>,
}

/// The probes' shared state.
#[derive(Debug)]
pub struct Probes {
    segments: HashSet<u64>,
    armed: RefCell<HashMap<u64, Instant>>,
    latencies: RefCell<Latencies>,
    started: Cell<u64>,
    sent: Cell<u64>,
    failed: Cell<u64>,
    in_flight: Cell<u64>,
    notifications: Cell<u64>,
    closed: RefCell<Option<String>>,
}

/// What the probes measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeSummary {
    /// Probes started (their user's first event sent).
    pub started: u64,
    /// Probes whose timed event was sent (and did not fail).
    pub sent: u64,
    /// Probes whose notification arrived.
    pub measured: u64,
    /// Probes whose event was sent but whose notification had not arrived `GRACE`
    /// after the load ended.
    pub lost: u64,
    /// Probes whose user was not even created and looked up `GRACE` after the load ended.
    pub unsent: u64,
    /// Probes whose first event, lookup or timed event failed.
    pub failed: u64,
    /// Notifications received in all (the load's included).
    pub notifications: u64,
    /// Why the notification socket closed early, if it did.
    pub socket_closed: Option<String>,
    /// Send → push latency.
    pub latency: Percentiles,
}

impl Probes {
    /// Returns probes that count entries into `segments`.
    pub fn new(segments: impl IntoIterator<Item = u64>) -> Probes {
        Probes {
            segments: segments.into_iter().collect(),
            armed: RefCell::default(),
            latencies: RefCell::default(),
            started: Cell::new(0),
            sent: Cell::new(0),
            failed: Cell::new(0),
            in_flight: Cell::new(0),
            notifications: Cell::new(0),
            closed: RefCell::new(None),
        }
    }

    /// Takes one notification text; records a latency if it answers an armed probe.
    pub fn on_notification(&self, text: &[u8], at: Instant) {
        self.notifications.set(self.notifications.get() + 1);
        let Ok(notification) = serde_json::from_slice::<Notification>(text) else {
            return;
        };
        if !notification
            .in_segments
            .iter()
            .any(|s| self.segments.contains(s))
        {
            return;
        }
        if let Some(sent) = self.armed.borrow_mut().remove(&notification.user_id) {
            self.latencies.borrow_mut().record(at - sent);
        }
    }

    /// Returns whether every probe has been answered or has failed.
    fn settled(&self) -> bool {
        self.in_flight.get() == 0 && self.armed.borrow().is_empty()
    }

    /// Returns the summary; armed probes left are lost.
    pub fn summary(&self) -> ProbeSummary {
        let latencies = self.latencies.borrow();
        let lost = self.armed.borrow().len() as u64;
        let measured = latencies.count();
        ProbeSummary {
            started: self.started.get(),
            sent: self.sent.get(),
            measured,
            lost,
            unsent: self
                .started
                .get()
                .saturating_sub(self.sent.get() + self.failed.get()),
            failed: self.failed.get(),
            notifications: self.notifications.get(),
            socket_closed: self.closed.borrow().clone(),
            latency: latencies.percentiles(),
        }
    }
}

/// Reads notifications until the socket closes (or the task is dropped).
pub async fn listen(mut socket: Socket, probes: Rc<Probes>) {
    use awc::ws::{Frame, Message};
    let reason = loop {
        match socket.next().await {
            Some(Ok(Frame::Text(text))) => probes.on_notification(&text, instant_now()),
            Some(Ok(Frame::Ping(bytes))) => {
                if socket.send(Message::Pong(bytes)).await.is_err() {
                    break "pong failed".to_owned();
                }
            }
            Some(Ok(Frame::Close(reason))) => break format!("closed by the node: {reason:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => break format!("protocol error: {e}"),
            None => break "connection ended".to_owned(),
        }
    };
    *probes.closed.borrow_mut() = Some(reason);
}

/// Sends probes at `rate` per second until the plan is over, then waits up to `GRACE`
/// for their notifications.
pub async fn send(api: Api, plan: Rc<Plan>, rate: f64, probes: Rc<Probes>, run_id: i64) {
    let start = instant_now();
    for k in 0u64.. {
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        actix_rt::time::sleep_until(due.into()).await;
        if plan.is_over(instant_now()) {
            break;
        }
        let (api, probes) = (api.clone(), probes.clone());
        probes.in_flight.set(probes.in_flight.get() + 1);
        probes.started.set(probes.started.get() + 1);
        actix_rt::spawn(async move {
            one(&api, &probes, &format!("lt-probe-{run_id}-{k}")).await;
            probes.in_flight.set(probes.in_flight.get() - 1);
        });
    }
    let deadline = instant_now() + GRACE;
    while !probes.settled() && instant_now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs one probe for the fresh cookie `cookie`.
async fn one(api: &Api, probes: &Probes, cookie: &str) {
    let created = api.post_events(probe_setup_event(cookie), 1).await;
    let user = match created {
        Ok(()) => api.user_of_cookie(cookie).await.ok(),
        Err(_) => None,
    };
    let Some(user) = user else {
        probes.failed.set(probes.failed.get() + 1);
        return;
    };
    probes.armed.borrow_mut().insert(user, instant_now());
    probes.sent.set(probes.sent.get() + 1);
    if api.post_events(probe_event(cookie), 1).await.is_err() {
        probes.armed.borrow_mut().remove(&user);
        probes.sent.set(probes.sent.get() - 1);
        probes.failed.set(probes.failed.get() + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_entry_into_a_run_segment_answers_an_armed_probe() {
        let probes = Probes::new([1, 2]);
        let sent = instant_now();
        probes.armed.borrow_mut().insert(7, sent);
        probes.started.set(2);
        probes.sent.set(1);
        let later = sent + Duration::from_millis(4);
        // Another user, a leave, a foreign segment, junk: none answers the probe.
        probes.on_notification(
            br#"{"user_id": 8, "in_segments": [1], "out_segments": []}"#,
            later,
        );
        probes.on_notification(
            br#"{"user_id": 7, "in_segments": [], "out_segments": [1]}"#,
            later,
        );
        probes.on_notification(
            br#"{"user_id": 7, "in_segments": [9], "out_segments": []}"#,
            later,
        );
        probes.on_notification(b"not json", later);
        let summary = probes.summary();
        assert_eq!((summary.measured, summary.lost, summary.unsent), (0, 1, 1));
        probes.on_notification(
            br#"{"user_id": 7, "in_segments": [2, 9], "out_segments": [], "at": "x"}"#,
            later,
        );
        let summary = probes.summary();
        assert_eq!(
            (summary.measured, summary.lost, summary.notifications),
            (1, 0, 5)
        );
        assert!((summary.latency.p50_ms - 4.0).abs() < 0.01, "{summary:?}");
        // A second entry of the same user is not a second measurement.
        probes.on_notification(br#"{"user_id": 7, "in_segments": [1]}"#, later);
        assert_eq!(probes.summary().measured, 1);
    }
}
