//! Command-line arguments: flags, defaults and validation (lexopt, no derive magic).
//!
//! Every flag here is documented, with its default, in `USAGE` and in loadtest/README.md.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};

use crate::target::Target;
use crate::workload::WorkloadOptions;

/// Most events one request may carry (API.md).
pub const MAX_BATCH: usize = 10_000;

/// The `--help` text.
pub const USAGE: &str = "\
uss-loadtest: measures a USS node like a user would

usage: uss-loadtest [FLAGS]

  --url URL            the node (default http://127.0.0.1:8080); loopback only
  --allow-remote       allow a --url host that is not this machine's loopback
  --key KEY            API key, sent as `Authorization: Bearer KEY` (`?key=` on sockets)
  --mode http|ws       POST /api/v1/events, or the events WebSocket (default http)
  --batch N            events per request or message, 1 to 10000 (default 100)
  --connections C      concurrent connections (default 8)
  --rate R             open loop at R events/s, latencies from the intended send
                       time; without it, closed loop as fast as the node answers
  --duration D         stop after D (`20s`, `500ms`, `2m`; default 10s unless --events)
  --events N           stop after N events (default: no limit)
  --users N            distinct users (default 100000)
  --zipf S             Zipf exponent of user popularity, 0 = uniform (default 1.0)
  --spread-days D      created_at spread over the past D days (default 30)
  --seed N             seed of the workload (default 1)
  --probe-rate R       event -> notification probes per second, 0 = none (default 50)
  --segments FILE      segments to create when missing, a JSON array of
                       {\"name\", \"rule\"} (default: the five fixture segments)
  --server-pid PID     read the node's RSS and CPU time from /proc/PID (default: found by port)
  --json FILE          also write the summary as JSON to FILE
  -h, --help           print this help
";

/// The transport used for events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `POST /api/v1/events`.
    Http,
    /// `GET /api/v1/events/ws`, one message in flight per connection.
    Ws,
}

/// A whole run's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The node.
    pub target: Target,
    /// The API key, if the node has keys.
    pub key: Option<String>,
    /// The transport.
    pub mode: Mode,
    /// Events per request or message.
    pub batch: usize,
    /// Concurrent connections.
    pub connections: usize,
    /// Open loop at this many events/s; `None` is closed loop.
    pub rate: Option<f64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many events.
    pub events: Option<u64>,
    /// The workload's shape.
    pub workload: WorkloadOptions,
    /// Probes per second (0 = no probes).
    pub probe_rate: f64,
    /// Segments file; `None` is the built-in fixture segments.
    pub segments: Option<PathBuf>,
    /// The node's process id for RSS and CPU time.
    pub server_pid: Option<u32>,
    /// Where to write the JSON summary.
    pub json: Option<PathBuf>,
    /// Whether to draw a progress bar.
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            target: Target::parse("http://127.0.0.1:8080").expect("the default URL is valid"),
            key: None,
            mode: Mode::Http,
            batch: 100,
            connections: 8,
            rate: None,
            duration: None,
            events: None,
            workload: WorkloadOptions {
                users: 100_000,
                zipf: 1.0,
                spread_days: 30,
                seed: 1,
            },
            probe_rate: 50.0,
            segments: None,
            server_pid: None,
            json: None,
            progress: false,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run with these options.
    Run(Box<Options>),
    /// Print `USAGE`.
    Help,
}

/// Parses the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<Command> {
    use lexopt::prelude::*;
    let mut options = Options::default();
    let mut url = String::from("http://127.0.0.1:8080");
    let mut allow_remote = false;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        // Owned, so that `parser` is free to give the flag's value.
        let flag = match arg {
            Long(name) => format!("--{name}"),
            Short(c) => format!("-{c}"),
            Value(value) => bail!("unexpected argument {value:?} (see --help)"),
        };
        let mut value = || -> anyhow::Result<String> {
            parser
                .value()
                .map_err(|_| anyhow!("{flag} needs a value"))?
                .into_string()
                .map_err(|v| anyhow!("{flag}: {v:?} is not UTF-8"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--url" => url = value()?,
            "--allow-remote" => allow_remote = true,
            "--key" => options.key = Some(value()?),
            "--mode" => {
                options.mode = match value()?.as_str() {
                    "http" => Mode::Http,
                    "ws" => Mode::Ws,
                    other => bail!("--mode must be http or ws (got {other:?})"),
                }
            }
            "--batch" => options.batch = number(&flag, &value()?)?,
            "--connections" => options.connections = number(&flag, &value()?)?,
            "--rate" => options.rate = Some(number(&flag, &value()?)?),
            "--duration" => options.duration = Some(duration(&value()?)?),
            "--events" => options.events = Some(number(&flag, &value()?)?),
            "--users" => options.workload.users = number(&flag, &value()?)?,
            "--zipf" => options.workload.zipf = number(&flag, &value()?)?,
            "--spread-days" => options.workload.spread_days = number(&flag, &value()?)?,
            "--seed" => options.workload.seed = number(&flag, &value()?)?,
            "--probe-rate" => options.probe_rate = number(&flag, &value()?)?,
            "--segments" => options.segments = Some(PathBuf::from(value()?)),
            "--server-pid" => options.server_pid = Some(number(&flag, &value()?)?),
            "--json" => options.json = Some(PathBuf::from(value()?)),
            _ => bail!("unknown flag {flag} (see --help)"),
        }
    }
    options.target = Target::parse(&url)?;
    if !options.target.is_loopback() && !allow_remote {
        bail!(
            "refusing to load {}: not a loopback host (pass --allow-remote if you mean it)",
            options.target.host
        );
    }
    if options.duration.is_none() && options.events.is_none() {
        options.duration = Some(Duration::from_secs(10));
    }
    validate(&options)?;
    Ok(Command::Run(Box::new(options)))
}

/// Checks the ranges the flags must fall in.
fn validate(options: &Options) -> anyhow::Result<()> {
    if !(1..=MAX_BATCH).contains(&options.batch) {
        bail!("--batch must be 1 to {MAX_BATCH}");
    }
    if options.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if options.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        bail!("--rate must be a positive number of events per second");
    }
    if options.duration.is_some_and(|d| d.is_zero()) || options.events == Some(0) {
        bail!("--duration and --events must be positive");
    }
    if options.workload.users == 0 {
        bail!("--users must be at least 1");
    }
    if !(options.workload.zipf.is_finite() && options.workload.zipf >= 0.0) {
        bail!("--zipf must be a number >= 0");
    }
    if !(options.probe_rate.is_finite() && options.probe_rate >= 0.0) {
        bail!("--probe-rate must be a number >= 0");
    }
    Ok(())
}

/// Parses a number, naming the flag when it is not one.
fn number<T: std::str::FromStr>(flag: &str, text: &str) -> anyhow::Result<T> {
    text.parse()
        .map_err(|_| anyhow!("{flag}: {text:?} is not a valid number"))
}

/// Parses `500ms`, `20s`, `2m`, `1h`, or a bare number of seconds.
pub fn duration(text: &str) -> anyhow::Result<Duration> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (amount, unit) = text.split_at(split);
    let amount: f64 = amount
        .parse()
        .with_context(|| format!("--duration: {text:?} is not like 20s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => amount / 1000.0,
        "" | "s" => amount,
        "m" => amount * 60.0,
        "h" => amount * 3600.0,
        _ => bail!("--duration: unknown unit {unit:?} (use ms, s, m or h)"),
    };
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| anyhow!("--duration: {text:?} is out of range"))
}

#[cfg(test)]
mod tests;
