//! Per-activity counters of one user: exact totals and first/last times, plus sparse
//! time buckets for windowed counts.
//!
//! Buckets are hours for events less than 48 h old and days beyond, pruned past the
//! retention (the longest window allowed). How a bucket is read depends only on the
//! window, never on when it was compacted, so answers do not jump when hours merge:
//! - a window `w` of at most 48 h counts an hour bucket starting at `s` when
//!   `s >= now - w` (error < 1 h at the window's edge; day buckets are older than 48 h
//!   and never count);
//! - a longer window counts every bucket whose UTC day starts at `d >= now - w`
//!   (error < 1 day at the edge).

use serde::{Deserialize, Serialize};

use crate::domain::{Timestamp, DAY_MS, HOUR_MS};

/// Windows up to this length are counted in hours; longer ones in days.
pub const SHORT_WINDOW_MS: i64 = 48 * HOUR_MS;

/// One bucket: its index (hours or days since the epoch) and how many events it holds.
type Bucket = (i32, u32);

/// What one user did of one activity type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActivityStats {
    /// Every event of this type, ever.
    #[serde(rename = "n")]
    pub(crate) count: u64,
    /// The earliest `created_at`.
    #[serde(rename = "f")]
    pub(crate) first: Option<Timestamp>,
    /// The latest `created_at`.
    #[serde(rename = "l")]
    pub(crate) last: Option<Timestamp>,
    /// Hour buckets, ascending, for events less than 48 h old.
    #[serde(rename = "h", default, skip_serializing_if = "Vec::is_empty")]
    hours: Vec<Bucket>,
    /// Day buckets, ascending, for older events within the retention.
    #[serde(rename = "d", default, skip_serializing_if = "Vec::is_empty")]
    days: Vec<Bucket>,
}

fn index(at: i64, unit: i64) -> i32 {
    let i = at.div_euclid(unit);
    i32::try_from(i).unwrap_or(if i < 0 { i32::MIN } else { i32::MAX })
}

fn start(index: i32, unit: i64) -> i64 {
    i64::from(index) * unit
}

fn add_to(buckets: &mut Vec<Bucket>, at: i32, events: u32) {
    match buckets.binary_search_by_key(&at, |b| b.0) {
        Ok(i) => buckets[i].1 = buckets[i].1.saturating_add(events),
        Err(i) => super::insert_exact(buckets, i, (at, events)),
    }
}

impl ActivityStats {
    /// Records one event at `at`, seen at `now` (`at <= now`).
    pub(crate) fn record(&mut self, at: Timestamp, now: Timestamp, retention_ms: i64) {
        self.count += 1;
        self.first = Some(self.first.map_or(at, |f| f.min(at)));
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
        self.add_bucketed(at.as_millis(), 1, now.as_millis(), retention_ms);
    }

    fn add_bucketed(&mut self, at: i64, events: u32, now: i64, retention_ms: i64) {
        let hour = index(at, HOUR_MS);
        if start(hour, HOUR_MS) >= now.saturating_sub(SHORT_WINDOW_MS) {
            add_to(&mut self.hours, hour, events);
            return;
        }
        let day = index(at, DAY_MS);
        if start(day, DAY_MS) >= now.saturating_sub(retention_ms) {
            add_to(&mut self.days, day, events);
        }
    }

    /// Moves hours older than 48 h into days and drops days past the retention.
    /// Answers never change by it.
    pub(crate) fn compact(&mut self, now: Timestamp, retention_ms: i64) {
        let now = now.as_millis();
        let short_edge = now.saturating_sub(SHORT_WINDOW_MS);
        let old = self
            .hours
            .iter()
            .take_while(|(h, _)| start(*h, HOUR_MS) < short_edge)
            .count();
        for (hour, events) in self.hours.drain(..old).collect::<Vec<_>>() {
            let day = index(start(hour, HOUR_MS), DAY_MS);
            add_to(&mut self.days, day, events);
        }
        if old > 0 {
            self.hours.shrink_to_fit();
        }
        let retention_edge = now.saturating_sub(retention_ms);
        let expired = self
            .days
            .iter()
            .take_while(|(d, _)| start(*d, DAY_MS) < retention_edge)
            .count();
        if expired > 0 {
            self.days.drain(..expired);
            self.days.shrink_to_fit();
        }
    }

    /// Iterates `(bucket start, events)` in the granularity used for `window`, newest first.
    fn buckets_for(&self, window: i64) -> impl Iterator<Item = (i64, u32)> + '_ {
        let long = window > SHORT_WINDOW_MS;
        let hours = self.hours.iter().rev().map(move |(h, n)| {
            let at = start(*h, HOUR_MS);
            (
                if long {
                    at.div_euclid(DAY_MS) * DAY_MS
                } else {
                    at
                },
                *n,
            )
        });
        let days = self
            .days
            .iter()
            .rev()
            .filter(move |_| long)
            .map(|(d, n)| (start(*d, DAY_MS), *n));
        hours.chain(days)
    }

    /// Returns the events counted in `count(_, window)` at `now` (bucket precision).
    pub(crate) fn count_in(&self, window: i64, now: Timestamp) -> u64 {
        let edge = now.as_millis().saturating_sub(window);
        self.buckets_for(window)
            .take_while(|(at, _)| *at >= edge)
            .map(|(_, n)| u64::from(n))
            .sum()
    }

    /// Returns the first instant after `now` at which an event leaves `count(_, window)`.
    pub(crate) fn next_departure(&self, window: i64, now: Timestamp) -> Option<Timestamp> {
        let edge = now.as_millis().saturating_sub(window);
        self.buckets_for(window)
            .take_while(|(at, _)| *at >= edge)
            .last()
            .map(|(at, _)| Timestamp::from_millis(at.saturating_add(window).saturating_add(1)))
    }

    /// Adds `other`'s events to these (identity merge).
    pub(crate) fn absorb(&mut self, other: &ActivityStats, now: Timestamp, retention_ms: i64) {
        self.count += other.count;
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = self.last.max(other.last);
        for (hour, events) in &other.hours {
            self.add_bucketed(
                start(*hour, HOUR_MS),
                *events,
                now.as_millis(),
                retention_ms,
            );
        }
        for (day, events) in &other.days {
            add_to(&mut self.days, *day, *events);
        }
        self.compact(now, retention_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETENTION: i64 = 90 * DAY_MS;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn counts_hours_for_short_windows_and_days_for_long_ones() {
        let now = at(100 * DAY_MS + 12 * HOUR_MS);
        let mut stats = ActivityStats::default();
        for age_hours in [1, 5, 30, 47, 60, 24 * 10, 24 * 89] {
            stats.record(at(now.as_millis() - age_hours * HOUR_MS), now, RETENTION);
        }
        assert_eq!(stats.count, 7);
        assert_eq!(stats.count_in(2 * HOUR_MS, now), 1);
        assert_eq!(stats.count_in(24 * HOUR_MS, now), 2);
        assert_eq!(stats.count_in(48 * HOUR_MS, now), 4);
        assert_eq!(stats.count_in(7 * DAY_MS, now), 5);
        assert_eq!(stats.count_in(90 * DAY_MS, now), 7);
    }

    #[test]
    fn compaction_never_changes_an_answer() {
        let mut stats = ActivityStats::default();
        let start_at = at(50 * DAY_MS);
        for i in 0..40 {
            stats.record(
                at(start_at.as_millis() + i * 5 * HOUR_MS),
                at(start_at.as_millis() + i * 5 * HOUR_MS),
                RETENTION,
            );
        }
        let later = at(start_at.as_millis() + 9 * DAY_MS);
        let windows = [
            HOUR_MS,
            20 * HOUR_MS,
            48 * HOUR_MS,
            49 * HOUR_MS,
            5 * DAY_MS,
            30 * DAY_MS,
        ];
        let before: Vec<u64> = windows.iter().map(|w| stats.count_in(*w, later)).collect();
        let mut compacted = stats.clone();
        compacted.compact(later, RETENTION);
        let after: Vec<u64> = windows
            .iter()
            .map(|w| compacted.count_in(*w, later))
            .collect();
        assert_eq!(before, after);
        assert!(compacted.hours.len() < stats.hours.len());
    }

    #[test]
    fn drops_days_past_the_retention_but_keeps_totals() {
        let mut stats = ActivityStats::default();
        stats.record(at(DAY_MS), at(DAY_MS), RETENTION);
        stats.compact(at(200 * DAY_MS), RETENTION);
        assert!(stats.days.is_empty() && stats.hours.is_empty());
        assert_eq!(stats.count, 1);
        assert_eq!(stats.last, Some(at(DAY_MS)));
    }

    #[test]
    fn next_departure_is_when_the_oldest_counted_bucket_leaves() {
        let now = at(10 * DAY_MS);
        let mut stats = ActivityStats::default();
        stats.record(at(now.as_millis() - 90 * 60_000), now, RETENTION);
        stats.record(at(now.as_millis() - 10 * 60_000), now, RETENTION);
        let window = 3 * HOUR_MS;
        let leave = stats.next_departure(window, now).unwrap();
        assert_eq!(
            leave.as_millis(),
            now.as_millis() - 2 * HOUR_MS + window + 1
        );
        assert_eq!(stats.count_in(window, at(leave.as_millis() - 1)), 2);
        assert_eq!(stats.count_in(window, leave), 1);
    }
}
