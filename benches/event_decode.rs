//! Benchmarks of reading an events body: the typed path against the `Value` path it
//! replaced (`parse_json` then `validate_body`), on a batch shaped like the load tool's.
//!
//! Run with `cargo bench --bench event_decode`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, Criterion};
use uss::domain::Timestamp;
use uss::http::{decode_events, parse_json, validate_body, EventRules};

/// A JSON array of `count` events like `uss-loadtest` sends.
fn batch(count: usize) -> String {
    let activities = [
        "page_viewed",
        "added_to_cart",
        "product_purchased",
        "clicked",
    ];
    let mut out = String::from("[");
    for i in 0..count {
        if i > 0 {
            out.push(',');
        }
        let activity = activities[i % activities.len()];
        let total = if activity == "product_purchased" {
            "19.99"
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"{{"id":"lt-u{i}","id_type":"cookie","region":"Area {r}","device_type":"mobile","country":"US","created_at":"2026-10-{d:02}T12:34:56.789Z","payload":{{"activity_type":"{activity}","url":"https://shop.example.com/p/{i}","order_total":"{total}","order_id":"","element_id":""}}}}"#,
            r = i % 7,
            d = 1 + i % 28,
        );
    }
    out.push(']');
    out
}

fn bench(c: &mut Criterion) {
    let types: Vec<String> = ["cookie", "email", "facebook", "device_id", "user_id"]
        .map(String::from)
        .to_vec();
    let now = Timestamp::parse("2026-11-01T00:00:00Z").expect("a time");
    let rules = EventRules {
        identity_types: &types,
        latest: now.add_millis(300_000),
        now,
        max_events: 10_000,
    };
    for count in [1, 1000] {
        let body = batch(count);
        let mut group = c.benchmark_group(format!("events_body_{count}"));
        group.bench_function("value", |b| {
            b.iter(|| {
                let value = parse_json(black_box(body.as_bytes())).expect("JSON");
                validate_body(value, &rules).expect("valid")
            })
        });
        group.bench_function("typed", |b| {
            b.iter(|| decode_events(black_box(body.as_bytes()), &rules, false).expect("valid"))
        });
        group.bench_function("typed_with_texts", |b| {
            b.iter(|| decode_events(black_box(body.as_bytes()), &rules, true).expect("valid"))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
