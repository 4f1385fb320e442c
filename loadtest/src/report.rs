//! The run's figures: the summary table printed at the end and the `--json` document.
//! Both come from the one [`Summary`], so they always agree.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::args::Mode;
use crate::cpu::CpuSummary;
use crate::latency::Percentiles;
use crate::probe::ProbeSummary;
use crate::setup::SegmentRef;
use crate::workload::WorkloadOptions;

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The node.
    pub url: String,
    /// The transport.
    pub mode: Mode,
    /// Events per request or message.
    pub batch: usize,
    /// Concurrent connections.
    pub connections: usize,
    /// `open` (at `target_rate`) or `closed`.
    pub loop_kind: &'static str,
    /// The open-loop rate asked for, in events/s.
    pub target_rate: Option<f64>,
    /// The node's clock: `dev` or `system`.
    pub clock: &'static str,
    /// The workload's shape.
    pub workload: WorkloadOptions,
    /// From the first send to the last answer, in seconds.
    pub elapsed_s: f64,
    /// Requests (or messages) acknowledged.
    pub requests_ok: u64,
    /// Requests (or messages) that failed.
    pub requests_failed: u64,
    /// Events sent.
    pub events_sent: u64,
    /// Events acknowledged.
    pub events_acked: u64,
    /// Open loop only: events due before the end but never sent (the node fell behind).
    pub events_missed: u64,
    /// Events acknowledged per second.
    pub throughput_events_per_s: f64,
    /// Requests (or messages) acknowledged per second.
    pub throughput_requests_per_s: f64,
    /// Per acknowledged request: from its due time (open loop) or its send (closed loop)
    /// to its answer.
    pub latency: Percentiles,
    /// Failed requests by label (`http 503`, `timeout`, an error code, …).
    pub errors: BTreeMap<String, u64>,
    /// Event → notification latency; `None` with `--probe-rate 0`.
    pub probes: Option<ProbeSummary>,
    /// The node's memory.
    pub server: ServerSummary,
    /// What the run cost in CPU, from its first send to its last answer.
    pub cpu: CpuSummary,
    /// The run's segments.
    pub segments: Vec<SegmentRef>,
}

/// The node's memory at the end of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerSummary {
    /// The node's process, when found.
    pub pid: Option<u32>,
    /// Its resident set size.
    pub rss_bytes: Option<u64>,
    /// Its peak resident set size.
    pub peak_rss_bytes: Option<u64>,
    /// `uss_resident_users` from `/metrics`.
    pub resident_users: Option<u64>,
    /// `rss_bytes / resident_users` (the whole process, so an upper bound).
    pub rss_per_resident_user_bytes: Option<f64>,
}

impl Summary {
    /// Returns the summary as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a summary always serializes")
    }

    /// Returns the human summary table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let rate = match self.target_rate {
            Some(rate) => format!("open loop at {} events/s", thousands(rate as u64)),
            None => "closed loop".to_owned(),
        };
        let mode = match self.mode {
            Mode::Http => "http",
            Mode::Ws => "ws",
        };
        let mut row = |name: &str, value: String| {
            let _ = writeln!(out, "  {name:<12}{value}");
        };
        row(
            "run",
            format!(
                "{mode}, batch {}, {} connections, {rate}, {:.1} s, {} users (zipf {}), {} clock",
                self.batch,
                self.connections,
                self.elapsed_s,
                thousands(self.workload.users),
                self.workload.zipf,
                self.clock
            ),
        );
        row(
            "events",
            format!(
                "{} acked of {} sent, {} missed; requests {} ok, {} failed",
                thousands(self.events_acked),
                thousands(self.events_sent),
                thousands(self.events_missed),
                thousands(self.requests_ok),
                thousands(self.requests_failed)
            ),
        );
        row(
            "throughput",
            format!(
                "{} events/s, {} requests/s",
                thousands(self.throughput_events_per_s as u64),
                thousands(self.throughput_requests_per_s as u64)
            ),
        );
        row("latency", percentiles(&self.latency));
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            list.join(", ")
        };
        row("errors", errors);
        match &self.probes {
            Some(p) => {
                row(
                    "probes",
                    format!(
                        "{} started, {} sent, {} measured, {} lost, {} unsent, {} failed{}",
                        thousands(p.started),
                        thousands(p.sent),
                        thousands(p.measured),
                        thousands(p.lost),
                        thousands(p.unsent),
                        thousands(p.failed),
                        p.socket_closed
                            .as_ref()
                            .map(|r| format!("; notification socket {r}"))
                            .unwrap_or_default()
                    ),
                );
                row("event→push", percentiles(&p.latency));
            }
            None => row("probes", "off".to_owned()),
        }
        let s = &self.server;
        let server = match (s.pid, s.rss_bytes) {
            (Some(pid), Some(rss)) => format!(
                "pid {pid}, RSS {} (peak {}), {} resident users, {} per resident user",
                mib(rss),
                s.peak_rss_bytes.map(mib).unwrap_or_else(|| "?".into()),
                s.resident_users
                    .map(thousands)
                    .unwrap_or_else(|| "?".into()),
                s.rss_per_resident_user_bytes
                    .map(|b| format!("{:.2} KiB", b / 1024.0))
                    .unwrap_or_else(|| "?".into())
            ),
            _ => "RSS unknown (not local, or not found: pass --server-pid)".to_owned(),
        };
        row("server", server);
        row("cpu", cpu(&self.cpu));
        out
    }
}

/// Returns the CPU time per event and the machine's idle and steal shares.
fn cpu(c: &CpuSummary) -> String {
    let micros = |us: Option<f64>| us.map_or_else(|| "?".to_owned(), |us| format!("{us:.1} µs"));
    let percent = |p: Option<f64>| p.map_or_else(|| "?".to_owned(), |p| format!("{p:.1}%"));
    format!(
        "node {}, load generator {} per event; machine idle {}, steal {}",
        micros(c.node_us_per_event),
        micros(c.generator_us_per_event),
        percent(c.machine_idle_percent),
        percent(c.machine_steal_percent)
    )
}

/// Returns `p50 … max` in milliseconds, or "none" when nothing was recorded.
fn percentiles(p: &Percentiles) -> String {
    if p.count == 0 {
        return "none measured".to_owned();
    }
    format!(
        "p50 {:.2} ms, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2} ({} samples)",
        p.p50_ms,
        p.p90_ms,
        p.p99_ms,
        p.p999_ms,
        p.max_ms,
        thousands(p.count)
    )
}

/// Returns `n` with thousands separators: `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Returns bytes in MiB with one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::Latencies;

    fn sample() -> Summary {
        let mut latencies = Latencies::new();
        latencies.record(std::time::Duration::from_millis(3));
        Summary {
            url: "http://127.0.0.1:8080".into(),
            mode: Mode::Http,
            batch: 1000,
            connections: 4,
            loop_kind: "closed",
            target_rate: None,
            clock: "dev",
            workload: WorkloadOptions {
                users: 100_000,
                zipf: 1.0,
                spread_days: 30,
                seed: 1,
            },
            elapsed_s: 20.0,
            requests_ok: 2000,
            requests_failed: 1,
            events_sent: 2_001_000,
            events_acked: 2_000_000,
            events_missed: 0,
            throughput_events_per_s: 100_000.0,
            throughput_requests_per_s: 100.0,
            latency: latencies.percentiles(),
            errors: BTreeMap::from([("http 503".to_owned(), 1)]),
            probes: None,
            server: ServerSummary {
                pid: Some(42),
                rss_bytes: Some(100 << 20),
                peak_rss_bytes: Some(120 << 20),
                resident_users: Some(100_000),
                rss_per_resident_user_bytes: Some(1048.576),
            },
            cpu: CpuSummary {
                node_us_per_event: Some(16.25),
                generator_us_per_event: Some(2.5),
                machine_idle_percent: Some(9.5),
                machine_steal_percent: None,
            },
            segments: vec![],
        }
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn the_table_shows_the_figures() {
        let table = sample().table();
        for expected in [
            "http, batch 1000, 4 connections, closed loop, 20.0 s, 100,000 users",
            "2,000,000 acked of 2,001,000 sent",
            "100,000 events/s, 100 requests/s",
            "p50 3.00 ms",
            "http 503: 1",
            "probes      off",
            "RSS 100.0 MiB (peak 120.0 MiB), 100,000 resident users, 1.02 KiB per resident user",
            "cpu         node 16.2 µs, load generator 2.5 µs per event; machine idle 9.5%, steal ?",
        ] {
            assert!(
                table.contains(expected),
                "{expected:?} missing from\n{table}"
            );
        }
    }

    #[test]
    fn the_table_shows_the_probes() {
        let mut latencies = Latencies::new();
        latencies.record(std::time::Duration::from_millis(7));
        let mut summary = sample();
        summary.probes = Some(ProbeSummary {
            started: 1000,
            sent: 998,
            measured: 997,
            lost: 1,
            unsent: 1,
            failed: 1,
            notifications: 5000,
            socket_closed: Some("closed by the node: policy".into()),
            latency: latencies.percentiles(),
        });
        let table = summary.table();
        for expected in [
            "1,000 started, 998 sent, 997 measured, 1 lost, 1 unsent, 1 failed; notification socket closed by the node: policy",
            "event→push  p50 7.00 ms",
        ] {
            assert!(table.contains(expected), "{expected:?} missing from\n{table}");
        }
    }

    #[test]
    fn the_json_has_the_same_figures() {
        let json: serde_json::Value = serde_json::from_str(&sample().to_json()).expect("JSON");
        assert_eq!(json["throughput_events_per_s"], 100_000.0);
        let p50 = json["latency"]["p50_ms"].as_f64().expect("a number");
        assert!((p50 - 3.0).abs() < 0.01, "p50 {p50}");
        assert_eq!(json["errors"]["http 503"], 1);
        assert_eq!(json["mode"], "http");
        assert_eq!(json["server"]["rss_bytes"], 100 << 20);
        assert_eq!(json["cpu"]["node_us_per_event"], 16.25);
        assert_eq!(
            json["cpu"]["machine_steal_percent"],
            serde_json::Value::Null
        );
        assert_eq!(json["workload"]["users"], 100_000);
    }
}
