//! CPU time over a run, read from /proc: the node's (when it runs on this host), this
//! generator's, and the machine's idle and steal shares. On a small shared machine the
//! throughput of one run says little alone: the same binary's CPU per event drifts with
//! the host, so a run also reports what each event cost.
//!
//! `/proc/PID/stat` counts a process's CPU time (`utime` + `stime`, every thread) in
//! clock ticks of `USER_HZ`, which Linux fixes at 100 per second for user space; the
//! first line of `/proc/stat` counts the machine's time by state, in the same ticks.

use std::fs;

use serde::Serialize;

/// Clock ticks per second in /proc's counts (Linux's `USER_HZ`).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// The node's CPU ticks, when it is readable.
    node: Option<u64>,
    /// This process's CPU ticks.
    generator: Option<u64>,
    /// The machine's ticks by state, when readable.
    machine: Option<MachineTicks>,
}

/// The machine's ticks in the states a run's figures need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MachineTicks {
    idle: u64,
    steal: u64,
    total: u64,
}

/// What the run cost in CPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuSummary {
    /// The node's CPU time per acknowledged event, in microseconds.
    pub node_us_per_event: Option<f64>,
    /// This generator's CPU time per acknowledged event, in microseconds.
    pub generator_us_per_event: Option<f64>,
    /// The share of the machine's CPU time that was idle, in percent.
    pub machine_idle_percent: Option<f64>,
    /// The share the hypervisor took for other guests (steal), in percent.
    pub machine_steal_percent: Option<f64>,
}

impl Counters {
    /// Reads the counters now; `node` is the node's process, when known.
    pub fn read(node: Option<u32>) -> Counters {
        let ticks = |path: String| {
            fs::read_to_string(path)
                .ok()
                .and_then(|s| process_ticks(&s))
        };
        Counters {
            node: node.and_then(|pid| ticks(format!("/proc/{pid}/stat"))),
            generator: ticks("/proc/self/stat".to_owned()),
            machine: fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|s| machine_ticks(&s)),
        }
    }

    /// What was spent from `self` to `end`, over `events` acknowledged events.
    pub fn summary(&self, end: &Counters, events: u64) -> CpuSummary {
        let per_event = |start: Option<u64>, end: Option<u64>| {
            let ticks = end?.checked_sub(start?)?;
            (events > 0).then(|| ticks as f64 / TICKS_PER_SECOND * 1e6 / events as f64)
        };
        let machine = self
            .machine
            .zip(end.machine)
            .and_then(|(start, end)| end.since(&start));
        CpuSummary {
            node_us_per_event: per_event(self.node, end.node),
            generator_us_per_event: per_event(self.generator, end.generator),
            machine_idle_percent: machine.map(|m| 100.0 * m.idle as f64 / m.total as f64),
            machine_steal_percent: machine.map(|m| 100.0 * m.steal as f64 / m.total as f64),
        }
    }
}

impl MachineTicks {
    /// The ticks from `start` to `self`; `None` when no time passed or a count went back.
    fn since(&self, start: &MachineTicks) -> Option<MachineTicks> {
        let total = self.total.checked_sub(start.total).filter(|t| *t > 0)?;
        Some(MachineTicks {
            idle: self.idle.checked_sub(start.idle)?,
            steal: self.steal.checked_sub(start.steal)?,
            total,
        })
    }
}

/// Returns `utime + stime` of a `/proc/PID/stat` text. The command name (field 2) is
/// in parentheses and may hold spaces and parentheses itself, so fields are counted
/// after its last `)`: `utime` and `stime` are fields 14 and 15.
fn process_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Returns the machine's ticks from the `cpu` line of a `/proc/stat` text: `user nice
/// system idle iowait irq softirq steal` (guest time is already in `user`).
fn machine_ticks(stat: &str) -> Option<MachineTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    let [_, _, _, idle, _, _, _, steal] = ticks[..] else {
        return None;
    };
    Some(MachineTicks {
        idle,
        steal,
        total: ticks.iter().sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_ticks_count_after_the_last_parenthesis() {
        let stat =
            "4242 (odd) name (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 56 0 0 20 0 9 0 \
                    100 2000000 500 18446744073709551615";
        assert_eq!(process_ticks(stat), Some(1234 + 56));
        assert_eq!(process_ticks("4242 (short) S 1 2"), None);
        assert_eq!(process_ticks("no parenthesis"), None);
    }

    #[test]
    fn machine_ticks_read_the_summary_line() {
        let stat = "cpu  100 5 50 800 10 0 20 15 7 0\ncpu0 50 2 25 400 5 0 10 8 3 0\n";
        let ticks = machine_ticks(stat).unwrap();
        assert_eq!(
            ticks,
            MachineTicks {
                idle: 800,
                steal: 15,
                total: 1000
            }
        );
        assert_eq!(machine_ticks("cpu0 1 2 3\n"), None);
        assert_eq!(machine_ticks("cpu  1 2 3\n"), None, "too few states");
    }

    #[test]
    fn a_summary_divides_what_was_spent_by_the_events() {
        let start = Counters {
            node: Some(1_000),
            generator: Some(50),
            machine: Some(MachineTicks {
                idle: 100,
                steal: 10,
                total: 1_000,
            }),
        };
        let end = Counters {
            node: Some(1_300),
            generator: Some(150),
            machine: Some(MachineTicks {
                idle: 140,
                steal: 14,
                total: 1_400,
            }),
        };
        let summary = start.summary(&end, 50_000);
        assert_eq!(summary.node_us_per_event, Some(60.0), "3 s over 50k events");
        assert_eq!(summary.generator_us_per_event, Some(20.0));
        assert_eq!(summary.machine_idle_percent, Some(10.0));
        assert_eq!(summary.machine_steal_percent, Some(1.0));
        let unknown = Counters {
            node: None,
            generator: None,
            machine: None,
        };
        let nothing = unknown.summary(&end, 50_000);
        assert_eq!(nothing.node_us_per_event, None);
        assert_eq!(nothing.machine_idle_percent, None);
        assert_eq!(start.summary(&end, 0).node_us_per_event, None, "no event");
    }

    #[test]
    fn this_process_is_readable() {
        let now = Counters::read(Some(std::process::id()));
        assert!(now.node.is_some() && now.generator.is_some());
        assert!(now.machine.is_some_and(|m| m.total > 0));
    }
}
