//! Tests of the workload generator: event shape per API.md, time stamps, mix, seeds.

use std::collections::HashMap;

use chrono::DateTime;
use serde_json::Value;

use super::*;

const NOW_MS: i64 = 1_790_000_000_000;

fn options(seed: u64) -> WorkloadOptions {
    WorkloadOptions {
        users: 1000,
        zipf: 1.0,
        spread_days: 30,
        seed,
    }
}

fn events(seed: u64, n: usize) -> Vec<Value> {
    let body = Workload::new(&options(seed)).body(n, NOW_MS);
    match serde_json::from_str(&body).expect("the body is JSON") {
        Value::Array(events) => events,
        single => vec![single],
    }
}

fn str_field<'a>(event: &'a Value, pointer: &str) -> &'a str {
    event
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} is a string in {event}"))
}

/// Checks one event against API.md's rules for `POST /api/v1/events`.
fn assert_valid_event(event: &Value) {
    let id = str_field(event, "/id");
    assert!((1..=256).contains(&id.chars().count()), "id {id}");
    assert_eq!(str_field(event, "/id_type"), "cookie");
    for field in ["/region", "/device_type", "/country"] {
        assert!(str_field(event, field).chars().count() <= 128);
    }
    let activity = str_field(event, "/payload/activity_type");
    assert!((1..=64).contains(&activity.len()));
    assert!(activity
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c)));
    let total = str_field(event, "/payload/order_total");
    assert!(
        total.is_empty() || total.parse::<f64>().is_ok_and(|t| t > 0.0),
        "order_total {total}"
    );
    for field in ["/payload/url", "/payload/order_id", "/payload/element_id"] {
        str_field(event, field);
    }
    let created = DateTime::parse_from_rfc3339(str_field(event, "/created_at"))
        .expect("created_at is RFC 3339");
    assert!(
        created.timestamp_millis() <= NOW_MS,
        "created_at in the future"
    );
    assert!(created.timestamp_millis() >= NOW_MS - 30 * DAY_MS);
}

#[test]
fn events_have_the_api_shape() {
    for event in events(1, 2000) {
        assert_valid_event(&event);
    }
}

#[test]
fn a_batch_of_one_is_a_single_object_and_more_is_an_array() {
    let mut workload = Workload::new(&options(1));
    let single: Value = serde_json::from_str(&workload.body(1, NOW_MS)).expect("JSON");
    assert!(single.is_object());
    assert_valid_event(&single);
    let batch: Value = serde_json::from_str(&workload.body(7, NOW_MS)).expect("JSON");
    assert_eq!(batch.as_array().map(Vec::len), Some(7));
}

#[test]
fn created_at_is_never_in_the_future_and_spreads_over_the_window() {
    let stamps: Vec<i64> = events(2, 5000)
        .iter()
        .map(|e| {
            DateTime::parse_from_rfc3339(str_field(e, "/created_at"))
                .expect("RFC 3339")
                .timestamp_millis()
        })
        .collect();
    assert!(stamps.iter().all(|&t| t <= NOW_MS));
    let oldest = NOW_MS - stamps.iter().min().copied().unwrap_or(NOW_MS);
    let newest = NOW_MS - stamps.iter().max().copied().unwrap_or(NOW_MS);
    assert!(oldest > 29 * DAY_MS, "the spread reaches back 30 days");
    assert!(newest < DAY_MS, "and covers the last day");
}

#[test]
fn zero_spread_stamps_now() {
    let mut workload = Workload::new(&WorkloadOptions {
        spread_days: 0,
        ..options(1)
    });
    let event: Value = serde_json::from_str(&workload.body(1, NOW_MS)).expect("JSON");
    assert_eq!(str_field(&event, "/created_at"), iso_millis(NOW_MS));
}

#[test]
fn the_activity_mix_holds_and_purchases_carry_an_order() {
    let all = events(3, 10_000);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for event in &all {
        let activity = str_field(event, "/payload/activity_type");
        *counts.entry(activity).or_default() += 1;
        let has_order = !str_field(event, "/payload/order_id").is_empty();
        assert_eq!(has_order, activity == "product_purchased");
        let has_element = !str_field(event, "/payload/element_id").is_empty();
        assert_eq!(has_element, activity == "clicked");
    }
    for (activity, share) in ACTIVITY_MIX {
        let seen = counts.get(activity).copied().unwrap_or(0) as f64 / all.len() as f64;
        let expected = share as f64 / 100.0;
        assert!((seen - expected).abs() < 0.02, "{activity}: {seen}");
    }
}

#[test]
fn users_keep_their_attributes_and_fixture_values_occur() {
    let mut seen: HashMap<String, (String, String, String)> = HashMap::new();
    for event in events(4, 5000) {
        let attributes = (
            str_field(&event, "/region").to_owned(),
            str_field(&event, "/device_type").to_owned(),
            str_field(&event, "/country").to_owned(),
        );
        let previous = seen.insert(str_field(&event, "/id").to_owned(), attributes.clone());
        assert!(previous.is_none_or(|p| p == attributes));
    }
    let values = seen.values();
    assert!(values.clone().any(|(r, _, _)| r == "Area X"));
    assert!(values.clone().any(|(_, d, _)| d == "mobile"));
    assert!(values.clone().any(|(_, _, c)| c == "US"));
}

#[test]
fn popular_users_are_few() {
    let all = events(5, 10_000);
    let top = all
        .iter()
        .filter(|e| str_field(e, "/id") == "lt-u1")
        .count();
    // P(rank 1) = 1 / H(1000) ≈ 0.134 at s = 1.
    assert!((1100..1600).contains(&top), "lt-u1 drew {top} of 10000");
}

#[test]
fn a_seed_fixes_the_events() {
    assert_eq!(events(9, 50), events(9, 50));
    assert_ne!(events(9, 50), events(10, 50));
}

#[test]
fn the_probe_event_is_valid_and_names_its_user() {
    let event: Value = serde_json::from_str(&probe_event("lt-probe-1")).expect("JSON");
    assert_eq!(str_field(&event, "/id"), "lt-probe-1");
    assert_eq!(str_field(&event, "/region"), "Area X");
    assert!(event.get("created_at").is_none());
}

#[test]
fn the_probe_setup_event_names_its_user_and_no_attribute_a_fixture_rule_reads() {
    let event: Value = serde_json::from_str(&probe_setup_event("lt-probe-1")).expect("JSON");
    assert_eq!(str_field(&event, "/id"), "lt-probe-1");
    assert_eq!(str_field(&event, "/payload/activity_type"), "clicked");
    for attribute in ["region", "device_type", "country", "created_at"] {
        assert!(event.get(attribute).is_none(), "{attribute} is set");
    }
}
