//! Every Prometheus metric of the node: names, help, buckets, registration.
//!
//! Names follow `uss_<area>_<what>_<unit>[_total]`; labels take values from bounded
//! sets only (route patterns, methods, status classes) — never a user id or rule text.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// The node's metrics, registered once in their own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Events applied (a repeated `event_id` is not counted).
    pub events_ingested: IntCounter,
    /// Events refused as invalid.
    pub events_rejected: IntCounter,
    /// Events refused with `503 overloaded` at the node's in-flight limit.
    pub events_shed: IntCounter,
    /// Segment entries plus exits.
    pub membership_changes: IntCounter,
    /// Rule evaluations.
    pub rule_evaluations: IntCounter,
    /// User actors in memory.
    pub resident_users: IntGauge,
    /// Users asked to leave memory (idle or least recently used).
    pub passivations: IntCounter,
    /// Durable timers pending.
    pub timers_pending: IntGauge,
    /// How late timers fire (now − due).
    pub timer_lag: Histogram,
    /// Open notification WebSockets.
    pub notification_subscribers: IntGauge,
    /// Subscribers disconnected for falling behind.
    pub notification_dropped_subscribers: IntCounter,
    /// Group-commit flush time.
    pub journal_flush_duration: Histogram,
    /// Writes covered by one flush.
    pub journal_flush_batch_size: Histogram,
    /// From a commit's submission to its acknowledgement: waiting for the group ahead
    /// of it, then its own group's writes and flush.
    pub commit_wait: Histogram,
    /// Users with journaled events no snapshot of theirs covers yet.
    pub journal_dirty_users: IntGauge,
    /// Journal entries in storage (one per group commit that journaled events).
    pub journal_entries: IntGauge,
    /// User snapshots written (whole records saved).
    pub snapshots: IntCounter,
    /// Overlays written: steps that changed only a stored user's membership or timer.
    pub overlays: IntCounter,
    /// Stored user records that failed to decode (each rebuilt from the journal).
    pub snapshot_decode_failures: IntCounter,
    /// HTTP latency by route pattern, method and status class.
    pub http_request_duration: HistogramVec,
    /// Users absorbed by identity merges.
    pub identity_merges: IntCounter,
    /// How long merges waited for other merges of the same identities or users.
    pub identity_merge_lock_wait: Histogram,
    /// Identity links refused, by reason (`blocklisted`, `limit_reached`, `too_many_users`).
    pub identity_links_refused: IntCounterVec,
    /// Requests this node sent to other nodes, by outcome (`answered`, `unavailable`).
    pub cluster_requests: IntCounterVec,
    /// How long other nodes took to answer this node's requests.
    pub cluster_request_duration: Histogram,
    /// Shards handed over to another node (`out`) or taken from one (`in`).
    pub handoff_shards: IntCounterVec,
    /// Keys sent to a shard's new owner (`out`) or written from its old one (`in`).
    pub handoff_keys: IntCounterVec,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let metric = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let r = &registry;
        let http_request_duration = HistogramVec::new(
            HistogramOpts::from(Opts::new(
                "uss_http_request_duration_seconds",
                "HTTP request latency",
            ))
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(http_request_duration.clone()))
            .expect("metric registered once");
        let identity_links_refused = counter_vec(
            r,
            "uss_identity_links_refused_total",
            "Identity links refused by a guardrail",
            "reason",
        );
        Metrics {
            cluster_requests: counter_vec(
                r,
                "uss_cluster_requests_total",
                "Requests sent to other nodes, by outcome",
                "outcome",
            ),
            cluster_request_duration: histogram(
                r,
                "uss_cluster_request_duration_seconds",
                "How long other nodes took to answer",
                LATENCY_BUCKETS.to_vec(),
            ),
            handoff_shards: counter_vec(
                r,
                "uss_handoff_shards_total",
                "Shards handed over to another node (out) or taken from one (in)",
                "direction",
            ),
            handoff_keys: counter_vec(
                r,
                "uss_handoff_keys_total",
                "Keys sent to a shard's new owner (out) or written from its old one (in)",
                "direction",
            ),
            identity_merges: counter(
                r,
                "uss_identity_merges_total",
                "Users absorbed by identity merges",
            ),
            identity_merge_lock_wait: histogram(
                r,
                "uss_identity_merge_lock_wait_seconds",
                "How long merges waited for other merges of the same identities or users",
                LATENCY_BUCKETS.to_vec(),
            ),
            identity_links_refused,
            events_ingested: counter(r, "uss_events_ingested_total", "Events applied"),
            events_rejected: counter(r, "uss_events_rejected_total", "Events refused as invalid"),
            events_shed: counter(
                r,
                "uss_events_shed_total",
                "Events refused with 503 at the in-flight limit",
            ),
            membership_changes: counter(
                r,
                "uss_membership_changes_total",
                "Segment entries and exits",
            ),
            rule_evaluations: counter(r, "uss_rule_evaluations_total", "Rule evaluations"),
            resident_users: gauge(r, "uss_resident_users", "User actors in memory"),
            passivations: counter(r, "uss_passivations_total", "Users asked to leave memory"),
            timers_pending: gauge(r, "uss_timers_pending", "Durable timers pending"),
            timer_lag: histogram(
                r,
                "uss_timer_lag_seconds",
                "How late timers fire",
                LATENCY_BUCKETS.to_vec(),
            ),
            notification_subscribers: gauge(
                r,
                "uss_notification_subscribers",
                "Open notification WebSockets",
            ),
            notification_dropped_subscribers: counter(
                r,
                "uss_notification_dropped_subscribers_total",
                "Subscribers disconnected for falling behind",
            ),
            journal_flush_duration: histogram(
                r,
                "uss_journal_flush_duration_seconds",
                "Group-commit flush time",
                LATENCY_BUCKETS.to_vec(),
            ),
            commit_wait: histogram(
                r,
                "uss_commit_wait_seconds",
                "From a write's submission to the committer until it is durable and acknowledged",
                LATENCY_BUCKETS.to_vec(),
            ),
            journal_flush_batch_size: histogram(
                r,
                "uss_journal_flush_batch_size",
                "Commits covered by one flush",
                vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0],
            ),
            journal_dirty_users: gauge(
                r,
                "uss_journal_dirty_users",
                "Users with journaled events no snapshot covers yet",
            ),
            journal_entries: gauge(
                r,
                "uss_journal_entries",
                "Journal entries in storage, not yet covered by snapshots",
            ),
            snapshots: counter(r, "uss_snapshots_total", "User snapshots written"),
            overlays: counter(
                r,
                "uss_overlays_total",
                "Membership and timer changes written without rewriting the user's record",
            ),
            snapshot_decode_failures: counter(
                r,
                "uss_snapshot_decode_failures_total",
                "Stored user records that failed to decode (rebuilt from the journal)",
            ),
            http_request_duration,
            registry,
        }
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let encoder = TextEncoder::new();
        if encoder.encode(&self.registry.gather(), &mut out).is_err() {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
