//! Benchmarks of the rule engine's hot paths: compile, eval, apply, next_change.
//!
//! Run with `cargo bench --bench rules`. The "typical" state is one user with three
//! activity types and 60 events spread over 30 days; see `typical_state`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, BatchSize, Criterion};
use uss::domain::{Event, Timestamp, DAY_MS, HOUR_MS};
use uss::rules::{compile, next_change, Limits, Rule, UserState};

/// The five rules of `/work/shared/fixtures/segments.json`, by name.
const RULES: [(&str, &str); 5] = [
    (
        "area_x_no_purchase_30d",
        r#"region == "Area X" and count(product_purchased, 30d) == 0"#,
    ),
    (
        "mobile_10_views_inactive_7d",
        r#"device_type == "mobile" and count(page_viewed) >= 10 and last_seen() < now - 7d"#,
    ),
    (
        "us_cart_abandoners",
        r#"country == "US" and count(added_to_cart, 7d) >= 1 and count(product_purchased, 7d) == 0"#,
    ),
    (
        "big_spenders_recent",
        r#"count(product_purchased, 30d) >= 3"#,
    ),
    (
        "desktop_or_tablet_active",
        r#"device_type in ["desktop", "tablet"] and last_seen() >= now - 1d"#,
    ),
];

/// 2026-01-01T00:00:00Z.
const START_MS: i64 = 1_767_225_600_000;
/// Number of events in the typical state.
const EVENTS: i64 = 60;
/// Spacing between events: 60 events over 30 days.
const STEP_MS: i64 = 30 * DAY_MS / EVENTS;

fn retention() -> i64 {
    Limits::default().max_window_ms
}

fn event(activity: &str, at: Timestamp) -> Event {
    let mut e = Event::new(activity, at);
    e.country = Some("US".into());
    e.region = Some("Area X".into());
    e.device_type = Some("mobile".into());
    e
}

/// Activity of the `i`th event: mostly views, every 5th an add to cart, every 15th a
/// purchase (40 views, 16 adds to cart, 4 purchases).
fn activity_of(i: i64) -> &'static str {
    if i % 15 == 14 {
        "product_purchased"
    } else if i % 5 == 4 {
        "added_to_cart"
    } else {
        "page_viewed"
    }
}

/// One user, 60 events over 30 days, each applied when it happened (at `now` = its
/// `created_at`, as a live stream would). Returns the state and the time of the last event.
fn typical_state() -> (UserState, Timestamp) {
    let mut state = UserState::default();
    let mut last = Timestamp::from_millis(START_MS);
    for i in 0..EVENTS {
        // A few minutes of jitter so events don't all sit on bucket edges.
        let at = Timestamp::from_millis(START_MS + i * STEP_MS + (i * 7 % 50) * 60_000);
        state.apply(&event(activity_of(i), at), at, retention());
        last = at;
    }
    (state, last)
}

fn compiled() -> Vec<(&'static str, Rule)> {
    RULES
        .iter()
        .map(|(name, src)| match compile(src, &Limits::default()) {
            Ok(rule) => (*name, rule),
            Err(e) => panic!("rule {name} does not compile: {e}"),
        })
        .collect()
}

fn bench_compile(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("compile");
    for (name, src) in RULES {
        group.bench_function(name, |b| {
            b.iter(|| compile(black_box(src), &limits).is_ok())
        });
    }
    group.finish();
}

fn bench_eval(c: &mut Criterion) {
    let (state, last) = typical_state();
    let now = last.add_millis(60_000);
    let rules = compiled();
    let mut group = c.benchmark_group("eval");
    for (name, rule) in &rules {
        group.bench_function(*name, |b| {
            b.iter(|| rule.eval(black_box(&state), black_box(now)))
        });
    }
    group.finish();
}

fn bench_apply(c: &mut Criterion) {
    let (state, last) = typical_state();
    let now = last.add_millis(60_000);
    let mut group = c.benchmark_group("apply");
    // Created at the moment it is applied (the common live case).
    let at_now = event("page_viewed", now);
    // Arrived an hour late, at the same `now`.
    let late = event("added_to_cart", now.add_millis(-HOUR_MS));
    // Dated an hour in the future (clock skew): kept aside as pending.
    let future = event("page_viewed", now.add_millis(HOUR_MS));
    // Created and applied a day after the last event: compaction moves hour buckets.
    let next_day = now.add_millis(DAY_MS);
    let after_a_day = event("page_viewed", next_day);
    let cases = [
        ("at_now", &at_now, now),
        ("late_1h", &late, now),
        ("future_1h", &future, now),
        ("next_day", &after_a_day, next_day),
    ];
    for (name, e, at) in cases {
        group.bench_function(name, |b| {
            b.iter_batched(
                || state.clone(),
                |mut s| {
                    s.apply(black_box(e), black_box(at), retention());
                    s
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn bench_next_change(c: &mut Criterion) {
    let (state, last) = typical_state();
    let now = last.add_millis(60_000);
    let rules: Vec<Rule> = compiled().into_iter().map(|(_, r)| r).collect();
    c.bench_function("next_change/all_five", |b| {
        b.iter(|| next_change(black_box(&rules), black_box(&state), black_box(now)))
    });
}

fn report_sizes() {
    let (state, last) = typical_state();
    let now = last.add_millis(60_000);
    match rmp_serde::to_vec_named(&state) {
        Ok(bytes) => println!(
            "typical state: {EVENTS} events over 30 days, 3 activity types; \
             rmp_serde::to_vec_named = {} bytes",
            bytes.len()
        ),
        Err(e) => println!("typical state does not encode: {e}"),
    }
    for (name, rule) in compiled() {
        println!("  {name} at now: {}", rule.eval(&state, now));
    }
    let rules: Vec<Rule> = compiled().into_iter().map(|(_, r)| r).collect();
    println!(
        "  next_change: {:?}",
        next_change(&rules, &state, now).map(|t| t.to_string())
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    targets = bench_compile, bench_eval, bench_apply, bench_next_change
}

fn main() {
    report_sizes();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
