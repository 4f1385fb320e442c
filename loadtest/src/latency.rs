//! Latency recording: an HDR histogram in microseconds, one per task, merged at the end.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded exactly: one hour (longer ones are clamped to it).
const MAX_MICROS: u64 = 3_600_000_000;

/// Latencies of one kind (requests, or event → notification).
#[derive(Debug, Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

/// Percentiles of a [`Latencies`], in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// How many latencies were recorded.
    pub count: u64,
    /// The mean.
    pub mean_ms: f64,
    /// The median.
    pub p50_ms: f64,
    /// The 90th percentile.
    pub p90_ms: f64,
    /// The 99th percentile.
    pub p99_ms: f64,
    /// The 99.9th percentile.
    pub p999_ms: f64,
    /// The largest.
    pub max_ms: f64,
}

impl Default for Latencies {
    fn default() -> Latencies {
        Latencies::new()
    }
}

impl Latencies {
    /// Returns an empty recorder: 1 µs to 1 h with three significant digits.
    pub fn new() -> Latencies {
        Latencies {
            histogram: Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("1 µs to 1 h with 3 significant digits are valid bounds"),
        }
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS);
        self.histogram
            .saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Adds every latency of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms with the same bounds always merge");
    }

    /// Returns how many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Returns the summary percentiles (all zero when empty).
    pub fn percentiles(&self) -> Percentiles {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let at = |q: f64| ms(self.histogram.value_at_quantile(q));
        Percentiles {
            count: self.count(),
            mean_ms: self.histogram.mean() / 1000.0,
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: ms(self.histogram.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Returns whether `a` and `b` agree to the histogram's three significant digits.
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= b.abs() * 0.001 + 0.001
    }

    #[test]
    fn percentiles_of_one_to_a_thousand_ms() {
        let mut latencies = Latencies::new();
        for n in 1..=1000 {
            latencies.record(ms(n));
        }
        let p = latencies.percentiles();
        assert_eq!(p.count, 1000);
        assert!(close(p.p50_ms, 500.0), "{p:?}");
        assert!(close(p.p90_ms, 900.0), "{p:?}");
        assert!(close(p.p99_ms, 990.0), "{p:?}");
        assert!(close(p.p999_ms, 999.0), "{p:?}");
        assert!(close(p.max_ms, 1000.0), "{p:?}");
        assert!(close(p.mean_ms, 500.5), "{p:?}");
    }

    #[test]
    fn merging_equals_recording_everything_in_one() {
        let mut fast = Latencies::new();
        let mut slow = Latencies::new();
        let mut all = Latencies::new();
        for n in 1..=900 {
            fast.record(Duration::from_micros(n * 10));
            all.record(Duration::from_micros(n * 10));
        }
        for n in 1..=100 {
            slow.record(ms(100 + n));
            all.record(ms(100 + n));
        }
        let mut merged = Latencies::new();
        merged.merge(&fast);
        merged.merge(&slow);
        assert_eq!(merged.percentiles(), all.percentiles());
        assert_eq!(merged.count(), 1000);
        // The slow tail shows in the merged p99, not in the fast part's.
        assert!(merged.percentiles().p99_ms > 100.0);
        assert!(fast.percentiles().p99_ms < 10.0);
    }

    #[test]
    fn an_empty_recorder_reports_zeros_and_huge_values_are_clamped() {
        assert_eq!(Latencies::new().percentiles().count, 0);
        assert_eq!(Latencies::new().percentiles().max_ms, 0.0);
        let mut latencies = Latencies::new();
        latencies.record(Duration::from_secs(10_000));
        latencies.record(Duration::ZERO);
        assert_eq!(latencies.count(), 2);
        assert!(latencies.percentiles().max_ms >= 3_600_000.0 * 0.999);
    }
}
