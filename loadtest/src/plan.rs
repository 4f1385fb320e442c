//! The schedule every connection draws its next request from: how many events, and,
//! in open loop, when the request was meant to be sent.
//!
//! Open loop: request `k` carrying events `e..e+n` is due at `start + e / rate`. A
//! connection that is still busy when a request falls due sends it late, and its latency
//! is measured from the due time, so a slow answer delays the measure of every request
//! queued behind it (no coordinated omission). Closed loop: requests have no due time and
//! connections send as fast as the node answers. Either way the run ends at the first of
//! `--duration` and `--events`.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::clock::instant_now;

/// How late after the deadline a due request may still be sent.
pub const LATE_TOLERANCE: Duration = Duration::from_millis(100);

/// One request to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Events it carries.
    pub events: usize,
    /// When it is due (open loop); `None` in closed loop.
    pub due: Option<Instant>,
}

/// The run's schedule, shared by the connections of one thread.
#[derive(Debug)]
pub struct Plan {
    start: Instant,
    deadline: Option<Instant>,
    rate: Option<f64>,
    batch: usize,
    cap: Option<u64>,
    issued: Cell<u64>,
    stopped: Cell<bool>,
}

impl Plan {
    /// Returns a schedule starting now.
    pub fn new(
        rate: Option<f64>,
        batch: usize,
        duration: Option<Duration>,
        cap: Option<u64>,
    ) -> Plan {
        Plan::starting_at(instant_now(), rate, batch, duration, cap)
    }

    /// Returns a schedule starting at `start`.
    pub fn starting_at(
        start: Instant,
        rate: Option<f64>,
        batch: usize,
        duration: Option<Duration>,
        cap: Option<u64>,
    ) -> Plan {
        Plan {
            start,
            deadline: duration.map(|d| start + d),
            rate,
            batch,
            cap,
            issued: Cell::new(0),
            stopped: Cell::new(false),
        }
    }

    /// Returns when the run started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Returns the next request, or `None` once the run is over at `now`.
    pub fn next(&self, now: Instant) -> Option<Slot> {
        if self.is_over(now) {
            self.stopped.set(true);
            return None;
        }
        let issued = self.issued.get();
        let remaining = self.cap.map_or(u64::MAX, |cap| cap - issued);
        let events = self
            .batch
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let due = self
            .rate
            .map(|rate| self.start + Duration::from_secs_f64(issued as f64 / rate));
        if let (Some(due), Some(deadline)) = (due, self.deadline) {
            if due >= deadline {
                self.stopped.set(true);
                return None;
            }
        }
        self.issued.set(issued + events as u64);
        Some(Slot { events, due })
    }

    /// Returns whether no request will be issued any more at `now`.
    pub fn is_over(&self, now: Instant) -> bool {
        self.stopped.get()
            || self.cap.is_some_and(|cap| self.issued.get() >= cap)
            || self.deadline.is_some_and(|deadline| now >= deadline)
    }

    /// Returns whether a request due before the deadline but taken up only at `now` is
    /// missed: the run is over by more than `LATE_TOLERANCE` (timer wake-ups are late by
    /// a millisecond or so; a connection that is later than that fell behind).
    pub fn is_past_deadline(&self, now: Instant) -> bool {
        self.deadline
            .is_some_and(|deadline| now >= deadline + LATE_TOLERANCE)
    }

    /// Ends the run early (a connection found it past its deadline).
    pub fn stop(&self) {
        self.stopped.set(true);
    }

    /// Returns how far through the run `now` is, from 0 to 1, by time or by events.
    pub fn fraction_done(&self, now: Instant) -> f64 {
        let by_time = self.deadline.map(|deadline| {
            let total = deadline.saturating_duration_since(self.start).as_secs_f64();
            now.saturating_duration_since(self.start).as_secs_f64() / total.max(1e-9)
        });
        let by_events = self
            .cap
            .map(|cap| self.issued.get() as f64 / cap.max(1) as f64);
        by_time
            .into_iter()
            .chain(by_events)
            .fold(0.0, f64::max)
            .min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_loop_stops_at_the_event_cap_with_a_short_last_batch() {
        let start = instant_now();
        let plan = Plan::starting_at(start, None, 100, None, Some(250));
        let sizes: Vec<usize> = std::iter::from_fn(|| plan.next(start))
            .map(|slot| {
                assert_eq!(slot.due, None);
                slot.events
            })
            .collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        assert!(plan.is_over(start));
    }

    #[test]
    fn open_loop_spaces_requests_by_batch_over_rate() {
        let start = instant_now();
        let plan = Plan::starting_at(
            start,
            Some(1000.0),
            10,
            Some(Duration::from_millis(50)),
            None,
        );
        let dues: Vec<Duration> = std::iter::from_fn(|| plan.next(start))
            .map(|slot| slot.due.expect("open loop").duration_since(start))
            .collect();
        // 1000 events/s in tens: one request every 10 ms, the last due before 50 ms.
        let expected: Vec<Duration> = (0..5).map(|k| Duration::from_millis(10 * k)).collect();
        assert_eq!(dues, expected);
    }

    #[test]
    fn the_deadline_ends_a_closed_loop_and_stop_ends_any() {
        let start = instant_now();
        let plan = Plan::starting_at(start, None, 1, Some(Duration::from_secs(1)), None);
        assert!(plan.next(start).is_some());
        assert_eq!(plan.next(start + Duration::from_secs(1)), None);
        assert!(!plan.is_past_deadline(start));
        assert!(!plan.is_past_deadline(start + Duration::from_secs(1)));
        assert!(plan.is_past_deadline(start + Duration::from_secs(1) + LATE_TOLERANCE));
        let plan = Plan::starting_at(start, None, 1, None, None);
        plan.stop();
        assert_eq!(plan.next(start), None);
    }

    #[test]
    fn progress_is_the_larger_of_time_and_events() {
        let start = instant_now();
        let plan = Plan::starting_at(start, None, 10, Some(Duration::from_secs(10)), Some(100));
        assert_eq!(plan.fraction_done(start), 0.0);
        for _ in 0..5 {
            plan.next(start);
        }
        assert_eq!(plan.fraction_done(start), 0.5);
        assert_eq!(plan.fraction_done(start + Duration::from_secs(8)), 0.8);
        assert_eq!(plan.fraction_done(start + Duration::from_secs(80)), 1.0);
    }
}
