//! `uss-loadtest`: measures a USS node the way its users load it.
//!
//! A run sets up its segments, then drives events at the node over HTTP or the events
//! WebSocket — open loop at a target rate or closed loop as fast as it answers — while
//! probes time the path from an event to its pushed notification. It ends with a
//! [`report::Summary`]: throughput, latency percentiles, errors by kind, probe
//! latencies, the node's memory, and the CPU time each event cost.
//!
//! Everything runs on the caller's actix system, on one thread: the connections are
//! tasks sharing one schedule ([`plan`]), one event stream ([`workload`]) and one set of
//! counters ([`load::Stats`]). Modules: [`args`] (flags), [`target`] (URL, loopback),
//! [`workload`], [`zipf`] and [`rng`] (events), [`plan`] (schedule), [`load`],
//! [`http`] and [`ws`] (sending), [`probe`] (event → notification), [`setup`]
//! (segments), [`api`] (the node's routes), [`latency`] (histograms), [`rss`] (memory),
//! [`cpu`] (CPU time),
//! [`progress`] (the bar), [`report`] (table and JSON), [`clock`] (the only wall time).
//! This crate depends on the server only through its HTTP API (and, in tests, to start
//! one).

pub mod api;
pub mod args;
pub mod clock;
pub mod cpu;
pub mod http;
pub mod latency;
pub mod load;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod report;
pub mod rng;
pub mod rss;
pub mod setup;
pub mod target;
pub mod workload;
pub mod ws;
pub mod zipf;

use std::cell::RefCell;
use std::rc::Rc;

use anyhow::Context as _;

use crate::api::Api;
use crate::args::{Mode, Options};
use crate::clock::{instant_now, unix_millis_now, TimeBase};
use crate::cpu::Counters;
use crate::latency::Latencies;
use crate::load::{drive, Shared, Stats};
use crate::plan::Plan;
use crate::probe::Probes;
use crate::report::{ServerSummary, Summary};
use crate::setup::SegmentRef;
use crate::target::Target;
use crate::workload::Workload;

/// Runs a whole load test against the node; call it inside an actix system.
pub async fn run(options: &Options) -> anyhow::Result<Summary> {
    let key = options.key.as_deref();
    let control = Api::new(&options.target, key);
    let wanted = setup::load(options.segments.as_deref())?;
    let segments = setup::ensure(&control, &wanted)
        .await
        .context("failed to set up the segments")?;
    let time_base = match control.dev_clock_ms().await? {
        Some(ms) => TimeBase::Fixed(ms),
        None => TimeBase::System,
    };
    let server_pid = options.server_pid.or_else(|| {
        let local = options.target.is_loopback();
        local
            .then(|| rss::find_listener(options.target.port))
            .flatten()
    });
    let probes = Rc::new(Probes::new(segments.iter().map(|s| s.id)));
    let listener = if options.probe_rate > 0.0 {
        let socket = subscribe(&options.target, key, &segments).await?;
        Some(actix_rt::spawn(probe::listen(socket, probes.clone())))
    } else {
        None
    };
    // Sockets are opened before the clock starts: connecting is not ingesting.
    let mut sockets = Vec::new();
    if options.mode == Mode::Ws {
        for _ in 0..options.connections {
            sockets.push(ws::WsTransport::open(&options.target, key).await?);
        }
    }

    let cpu_at_start = Counters::read(server_pid);
    let stats = Rc::new(Stats::default());
    let plan = Rc::new(Plan::new(
        options.rate,
        options.batch,
        options.duration,
        options.events,
    ));
    let shared = Rc::new(Shared {
        plan: plan.clone(),
        workload: Rc::new(RefCell::new(Workload::new(&options.workload))),
        time_base,
        stats: stats.clone(),
    });
    let workers: Vec<_> = match options.mode {
        Mode::Http => (0..options.connections)
            .map(|_| {
                let transport = http::HttpTransport::new(&options.target, key);
                actix_rt::spawn(drive(transport, shared.clone()))
            })
            .collect(),
        Mode::Ws => sockets
            .into_iter()
            .map(|socket| actix_rt::spawn(drive(socket, shared.clone())))
            .collect(),
    };
    let prober = (options.probe_rate > 0.0).then(|| {
        actix_rt::spawn(probe::send(
            Api::with_connections(&options.target, key, probe::CONNECTIONS),
            plan.clone(),
            options.probe_rate,
            probes.clone(),
            unix_millis_now(),
        ))
    });
    let bar = actix_rt::spawn(progress::show(
        options.progress,
        plan.clone(),
        stats.clone(),
    ));

    let mut latencies = Latencies::new();
    for worker in workers {
        latencies.merge(&worker.await.context("a connection task failed")?);
    }
    let elapsed_s = instant_now().duration_since(plan.start()).as_secs_f64();
    let cpu = cpu_at_start.summary(&Counters::read(server_pid), stats.events_acked.get());
    bar.await.context("the progress task failed")?;
    if let Some(prober) = prober {
        prober.await.context("the probe task failed")?;
    }
    if let Some(listener) = listener {
        listener.abort();
    }

    let server = server_summary(&control, server_pid).await;
    let errors = stats.errors.borrow().clone();
    let per_second = |n: u64| n as f64 / elapsed_s.max(1e-9);
    Ok(Summary {
        url: options.target.base.clone(),
        mode: options.mode,
        batch: options.batch,
        connections: options.connections,
        loop_kind: if options.rate.is_some() {
            "open"
        } else {
            "closed"
        },
        target_rate: options.rate,
        clock: match time_base {
            TimeBase::Fixed(_) => "dev",
            TimeBase::System => "system",
        },
        workload: options.workload.clone(),
        elapsed_s,
        requests_ok: stats.requests_ok.get(),
        requests_failed: stats.requests_failed.get(),
        events_sent: stats.events_sent.get(),
        events_acked: stats.events_acked.get(),
        events_missed: stats.events_missed.get(),
        throughput_events_per_s: per_second(stats.events_acked.get()),
        throughput_requests_per_s: per_second(stats.requests_ok.get()),
        latency: latencies.percentiles(),
        errors,
        probes: (options.probe_rate > 0.0).then(|| probes.summary()),
        server,
        cpu,
        segments,
    })
}

/// Subscribes to the notifications of the run's segments (before any event is sent,
/// so no probe's push can be missed).
async fn subscribe(
    target: &Target,
    key: Option<&str>,
    segments: &[SegmentRef],
) -> anyhow::Result<ws::Socket> {
    let ids: Vec<String> = segments.iter().map(|s| s.id.to_string()).collect();
    let path = format!("/api/v1/notifications/ws?segments={}", ids.join(","));
    ws::connect(target, &path, key)
        .await
        .context("failed to subscribe to notifications")
}

/// Reads the node's memory now: RSS from /proc, resident users from `/metrics`.
async fn server_summary(control: &Api, pid: Option<u32>) -> ServerSummary {
    let memory = pid.and_then(rss::memory);
    let resident_users = control.resident_users().await.ok().flatten();
    ServerSummary {
        pid,
        rss_bytes: memory.map(|m| m.rss_bytes),
        peak_rss_bytes: memory.map(|m| m.peak_rss_bytes),
        resident_users,
        rss_per_resident_user_bytes: match (memory, resident_users) {
            (Some(m), Some(users)) if users > 0 => Some(m.rss_bytes as f64 / users as f64),
            _ => None,
        },
    }
}
