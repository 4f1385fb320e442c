//! The generated traffic: events in the original's shape, for Zipf-popular users.
//!
//! Each user (a cookie `lt-u<rank>`) keeps the same region, device and country across
//! runs, derived from its rank, so segments on attributes have stable members. Activity
//! types follow a fixed mix and `created_at` is spread uniformly over the past
//! `spread_days`, so counting windows and time-driven flips see real work. Events are
//! written as JSON by hand: the generator shares one core with the server, and
//! `serde_json::Value` trees would cost more than the sending.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat};

use crate::rng::{mix, Rng};
use crate::zipf::Zipf;

/// Regions; "Area X" is the fixture segments' region.
pub const REGIONS: [&str; 6] = [
    "Area X",
    "California",
    "Texas",
    "Bavaria",
    "Ontario",
    "Ile-de-France",
];
/// Device types; the fixture segments use "mobile", "desktop" and "tablet".
pub const DEVICES: [&str; 3] = ["mobile", "desktop", "tablet"];
/// Countries; "US" is the fixture segments' country.
pub const COUNTRIES: [&str; 5] = ["US", "DE", "FR", "CA", "GB"];
/// The activity mix: each type with its share in percent (they add up to 100).
pub const ACTIVITY_MIX: [(&str, u64); 4] = [
    ("page_viewed", 60),
    ("clicked", 20),
    ("added_to_cart", 15),
    ("product_purchased", 5),
];

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// What shapes the generated events.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WorkloadOptions {
    /// How many distinct users (cookies `lt-u1` to `lt-u<users>`).
    pub users: u64,
    /// The Zipf exponent of user popularity (0 = uniform).
    pub zipf: f64,
    /// `created_at` falls uniformly in the past this many days.
    pub spread_days: u32,
    /// The seed of the generator: one seed, one sequence of events.
    pub seed: u64,
}

/// A stream of events.
#[derive(Debug, Clone)]
pub struct Workload {
    zipf: Zipf,
    rng: Rng,
    spread_ms: u64,
    orders: u64,
}

impl Workload {
    /// Returns the generator for `options`.
    pub fn new(options: &WorkloadOptions) -> Workload {
        Workload {
            zipf: Zipf::new(options.users.max(1), options.zipf),
            rng: Rng::new(options.seed),
            spread_ms: u64::from(options.spread_days) * DAY_MS as u64,
            orders: 0,
        }
    }

    /// Returns a request body of `n` events stamped at or before `now_ms` (Unix
    /// milliseconds): one JSON object when `n` is 1, else an array.
    pub fn body(&mut self, n: usize, now_ms: i64) -> String {
        let mut out = String::with_capacity(n * 330 + 2);
        if n == 1 {
            self.write_event(&mut out, now_ms);
            return out;
        }
        out.push('[');
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            self.write_event(&mut out, now_ms);
        }
        out.push(']');
        out
    }

    /// Appends one event to `out`.
    pub fn write_event(&mut self, out: &mut String, now_ms: i64) {
        let rank = self.zipf.sample(&mut self.rng);
        let traits = mix(rank);
        let region = REGIONS[(traits % REGIONS.len() as u64) as usize];
        let device = DEVICES[((traits >> 16) % DEVICES.len() as u64) as usize];
        let country = COUNTRIES[((traits >> 32) % COUNTRIES.len() as u64) as usize];
        let age_ms = if self.spread_ms == 0 {
            0
        } else {
            self.rng.below(self.spread_ms + 1)
        };
        let created_at = iso_millis(now_ms - age_ms as i64);
        let activity = self.activity();
        let product = self.rng.below(1000);
        let (order_total, order_id, element_id) = match activity {
            "product_purchased" => {
                self.orders += 1;
                let cents = 500 + self.rng.below(50_000);
                (
                    format!("{}.{:02}", cents / 100, cents % 100),
                    format!("o-{rank}-{}", self.orders),
                    String::new(),
                )
            }
            "clicked" => (
                String::new(),
                String::new(),
                format!("btn-{}", self.rng.below(50)),
            ),
            _ => (String::new(), String::new(), String::new()),
        };
        // Formatting into a String cannot fail.
        let _ = write!(
            out,
            r#"{{"id":"lt-u{rank}","id_type":"cookie","region":"{region}","device_type":"{device}","country":"{country}","created_at":"{created_at}","payload":{{"activity_type":"{activity}","url":"https://shop.example.com/p/{product}","order_total":"{order_total}","order_id":"{order_id}","element_id":"{element_id}"}}}}"#
        );
    }

    /// Returns an activity type drawn from the mix.
    fn activity(&mut self) -> &'static str {
        let mut roll = self.rng.below(100);
        for (activity, share) in ACTIVITY_MIX {
            if roll < share {
                return activity;
            }
            roll -= share;
        }
        ACTIVITY_MIX[0].0
    }
}

/// Returns the event that makes the fresh user `cookie` enter a segment: a page view
/// from "Area X" on a desktop in the US, stamped by the server (no `created_at`). With
/// the fixture segments it enters `area_x_no_purchase_30d` and `desktop_or_tablet_active`.
pub fn probe_event(cookie: &str) -> String {
    format!(
        r#"{{"id":"{cookie}","id_type":"cookie","region":"Area X","device_type":"desktop","country":"US","payload":{{"activity_type":"page_viewed","url":"https://shop.example.com/probe","order_total":"","order_id":"","element_id":""}}}}"#
    )
}

/// Returns the event that creates the probe user `cookie` without making it enter any
/// fixture segment: a click with no region, device or country, stamped by the server.
pub fn probe_setup_event(cookie: &str) -> String {
    format!(
        r#"{{"id":"{cookie}","id_type":"cookie","payload":{{"activity_type":"clicked","url":"https://shop.example.com/probe","order_total":"","order_id":"","element_id":"probe"}}}}"#
    )
}

/// Returns `ms` (Unix milliseconds) as RFC 3339 UTC with milliseconds.
pub fn iso_millis(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests;
