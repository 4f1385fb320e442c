//! Table-driven tests of checking, evaluation, next change and reads.

use super::*;
use crate::domain::{Event, TraitValue, HOUR_MS};

const RETENTION: i64 = 90 * DAY_MS;

fn t(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn rule(src: &str) -> Rule {
    compile(src, &Limits::default()).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn event(activity: &str, at: &str) -> Event {
    Event::new(activity, t(at))
}

fn state_of(events: &[Event], now: Timestamp) -> UserState {
    let mut state = UserState::default();
    for e in events {
        state.apply(e, now, RETENTION);
    }
    state
}

#[test]
fn type_errors_are_refused_with_a_position() {
    let cases: [(&str, &str, u32, u32); 14] = [
        ("count(x) == \"a\"", "cannot compare a count with a string", 1, 10),
        ("now > 3", "cannot compare a time with a number", 1, 5),
        ("region == 3", "cannot compare a string with a number", 1, 8),
        ("count(x)", "expected a condition, found a count — compare it, like count(page_viewed) >= 1", 1, 1),
        ("last_seen() and count(a) > 1", "expected a condition, found a time — compare it, like last_seen() < now - 7d", 1, 1),
        ("now - now > 1d", "cannot subtract a time from a time — a time can only be moved by a duration, like now - 7d", 1, 7),
        ("7d - now < now", "cannot subtract a time from a duration — a time can only be moved by a duration, like now - 7d", 1, 6),
        ("count(a) + 1d > 3", "cannot add a duration to a count", 1, 12),
        ("count(a, 91d) > 1", "window 91d is longer than the longest allowed window, 90d", 1, 10),
        ("count(a, 0s) > 1", "a window must be longer than 0s", 1, 10),
        ("traits.vip < true", "true/false can only be compared with == or !=", 1, 12),
        ("country in [\"US\", 3]", "cannot look for a string among values like a number", 1, 19),
        ("now in [1]", "cannot look up a time in a list — use a string, number or true/false", 1, 1),
        ("traits.signup > now - 1d", "cannot compare a trait with a time", 1, 15),
    ];
    for (src, message, line, column) in cases {
        let err = compile(src, &Limits::default()).expect_err(src);
        assert_eq!(
            (err.message.as_str(), err.line, err.column),
            (message, line, column),
            "{src}"
        );
    }
}

#[test]
fn the_longest_window_is_configurable() {
    let limits = Limits {
        max_window_ms: 7 * DAY_MS,
        ..Limits::default()
    };
    let err = compile("count(a, 8d) > 1", &limits).unwrap_err();
    assert_eq!(
        err.message,
        "window 8d is longer than the longest allowed window, 7d"
    );
    assert!(compile("count(a, 1w) > 1", &limits).is_ok());
}

#[test]
fn evaluates_the_examples_of_rules_md() {
    let now = t("2026-11-01T00:00:00Z");
    let mut shopper = event("page_viewed", "2026-10-20T10:00:00Z");
    shopper.region = Some("Area X".into());
    shopper.country = Some("US".into());
    shopper.device_type = Some("mobile".into());
    let mut views: Vec<Event> = (0..10)
        .map(|i| event("page_viewed", &format!("2026-10-2{i}T08:00:00Z")))
        .collect();
    views.insert(0, shopper);
    let state = state_of(&views, now);
    let cases = [
        (
            r#"region == "Area X" and count(product_purchased, 30d) == 0"#,
            true,
        ),
        (
            r#"device_type == "mobile" and count(page_viewed) >= 10 and last_seen() < now - 7d"#,
            false,
        ),
        (
            r#"device_type == "mobile" and count(page_viewed) >= 10 and last_seen() < now - 2d"#,
            true,
        ),
        (
            r#"country == "US" and count(added_to_cart, 7d) >= 1"#,
            false,
        ),
        ("count(page_viewed, 7d) >= 3", true),
        ("count(page_viewed, 7d) >= 5", true),
        ("count(page_viewed, 7d) >= 6", false),
        (r#"device_type in ["desktop", "tablet"]"#, false),
        (
            r#"device_type in ["mobile"] and last_seen() >= now - 1d"#,
            false,
        ),
        (r#"traits.plan == "pro""#, false),
        (r#"not (traits.plan == "pro")"#, true),
        ("not (first_seen() > now - 14d)", false),
        ("not (first_seen() > now - 10d)", true),
        ("first_seen(page_viewed) + 12d == now", false),
        ("count(page_viewed) + count(x) - 1 == 10", true),
        ("7d > 1d and true", true),
    ];
    for (src, want) in cases {
        assert_eq!(rule(src).eval(&state, now), want, "{src}");
    }
}

#[test]
fn comparisons_with_null_are_false_even_negated_ones() {
    let now = t("2026-11-01T00:00:00Z");
    let state = state_of(&[event("page_viewed", "2026-10-31T00:00:00Z")], now);
    let cases = [
        (r#"country == "US""#, false),
        (r#"country != "US""#, false),
        (r#"not (country == "US")"#, true),
        (r#"country in ["US"]"#, false),
        ("last_seen(product_purchased) < now - 30d", false),
        ("last_seen(product_purchased) >= now - 30d", false),
        ("count(product_purchased, 30d) == 0", true),
        ("count(product_purchased) == 0", true),
        ("traits.age + 1 > 3", false),
        ("traits.vip", false),
    ];
    for (src, want) in cases {
        assert_eq!(rule(src).eval(&state, now), want, "{src}");
    }
}

#[test]
fn traits_of_the_wrong_type_behave_like_null() {
    let now = t("2026-11-01T00:00:00Z");
    let mut e = event("signed_up", "2026-10-31T00:00:00Z");
    e.traits = vec![
        ("plan".into(), TraitValue::String("pro".into())),
        ("age".into(), TraitValue::Number(41.0)),
        ("vip".into(), TraitValue::Bool(true)),
    ];
    let state = state_of(&[e], now);
    let cases = [
        (r#"traits.plan == "pro""#, true),
        ("traits.plan == 3", false),
        ("traits.plan != 3", false),
        ("traits.age > 40.5", true),
        ("traits.age + count(signed_up) == 42", true),
        (r#"traits.age in [41, 42]"#, true),
        ("traits.vip", true),
        ("traits.vip == true", true),
        ("traits.plan == traits.plan", true),
        ("traits.age < traits.plan", false),
        ("traits.plan", false),
    ];
    for (src, want) in cases {
        assert_eq!(rule(src).eval(&state, now), want, "{src}");
    }
}

#[test]
fn presence_forms_of_windowed_counts_are_exact() {
    let now = t("2026-11-01T00:00:00Z");
    // 29 min past the hour: bucketed counting could place it either side of the edge.
    let state = state_of(&[event("product_purchased", "2026-10-02T00:29:00Z")], now);
    let edge_in = "count(product_purchased, 30d) >= 1";
    assert!(rule(edge_in).eval(&state, now));
    assert!(!rule(edge_in).eval(&state, t("2026-11-01T00:29:00Z")));
    for src in [
        "count(product_purchased, 30d) == 0",
        "0 == count(product_purchased, 30d)",
        "count(product_purchased, 30d) < 1",
        "count(product_purchased, 30d) <= 0",
        "not (count(product_purchased, 30d) > 0)",
        "not (1 <= count(product_purchased, 30d))",
    ] {
        assert!(
            !rule(src).eval(&state, t("2026-11-01T00:28:59.999Z")),
            "{src}"
        );
        assert!(rule(src).eval(&state, t("2026-11-01T00:29:00Z")), "{src}");
    }
}

#[test]
fn future_events_count_from_the_moment_they_are_due() {
    let now = t("2026-11-01T00:00:00Z");
    let mut later = event("page_viewed", "2026-11-01T00:03:00Z");
    later.device_type = Some("desktop".into());
    let mut earlier = event("page_viewed", "2026-10-31T00:00:00Z");
    earlier.device_type = Some("mobile".into());
    let state = state_of(&[later, earlier], now);
    let desktop = rule(r#"device_type == "desktop" and count(page_viewed) == 2"#);
    assert!(!desktop.eval(&state, now));
    assert_eq!(
        next_change([&desktop], &state, now),
        Some(t("2026-11-01T00:03:00Z"))
    );
    assert!(desktop.eval(&state, t("2026-11-01T00:03:00Z")));
}

#[test]
fn next_change_finds_time_only_flips() {
    let now = t("2026-11-01T00:00:00Z");
    let state = state_of(&[event("page_viewed", "2026-10-30T12:00:00Z")], now);
    let cases = [
        ("last_seen() < now - 7d", Some("2026-11-06T12:00:00.001Z")),
        ("last_seen() <= now - 7d", Some("2026-11-06T12:00:00Z")),
        ("now - 7d > last_seen()", Some("2026-11-06T12:00:00.001Z")),
        ("count(page_viewed, 7d) == 0", Some("2026-11-06T12:00:00Z")),
        ("count(page_viewed, 24h) >= 1", None),
        (
            "count(page_viewed, 3d) >= 2",
            Some("2026-11-02T00:00:00.001Z"),
        ),
        (
            "count(page_viewed, 36h) >= 2",
            Some("2026-11-01T00:00:00.001Z"),
        ),
        ("count(page_viewed) >= 1", None),
        (r#"country == "US""#, None),
    ];
    for (src, want) in cases {
        let r = rule(src);
        let next = next_change([&r], &state, now);
        assert_eq!(next, want.map(t), "{src}");
        if let Some(at) = next {
            let before = r.eval(&state, at.add_millis(-1));
            assert_eq!(before, r.eval(&state, now), "{src} holds until the flip");
        }
    }
    let both = [
        rule("last_seen() < now - 7d"),
        rule("count(page_viewed, 3d) >= 2"),
    ];
    assert_eq!(
        next_change(&both, &state, now),
        Some(t("2026-11-02T00:00:00.001Z"))
    );
}

#[test]
fn next_change_after_a_flip_moves_on() {
    let rules = [rule("count(page_viewed, 2h) >= 2")];
    let mut now = t("2026-11-01T00:00:00Z");
    let events: Vec<Event> = (0..5)
        .map(|i| Event::new("page_viewed", now.add_millis(-i * 20 * 60_000)))
        .collect();
    let state = state_of(&events, now);
    let mut wakeups = 0;
    while let Some(next) = next_change(&rules, &state, now) {
        assert!(next > now);
        now = next;
        wakeups += 1;
        assert!(wakeups < 10, "bounded wake-ups");
    }
    assert!(!rules[0].eval(&state, now));
    assert!(now <= t("2026-11-01T02:00:00.001Z"));
}

#[test]
fn reads_name_what_can_change_a_rule() {
    let r = rule(
        r#"country == "US" and count(a, 7d) + count(b) > 1 and traits.plan == "x" and last_seen(c) < now"#,
    );
    let reads = r.reads();
    let names: Vec<&str> = reads.activities.iter().map(|a| &**a).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(!reads.any_activity && reads.time_dependent);
    assert_eq!(
        reads.attributes.iter().copied().collect::<Vec<_>>(),
        [Attr::Country]
    );
    assert_eq!(reads.longest_window(), Some(7 * DAY_MS));
    let mut e = Event::new("z", t("2026-11-01T00:00:00Z"));
    assert!(!reads.affected_by(&e));
    e.region = Some("r".into());
    assert!(!reads.affected_by(&e));
    e.country = Some("US".into());
    assert!(reads.affected_by(&e));
    assert!(reads.affected_by(&Event::new("b", t("2026-11-01T00:00:00Z"))));

    let any = rule("last_seen() < now - 1h");
    assert!(any.reads().any_activity);
    assert!(any
        .reads()
        .affected_by(&Event::new("z", t("2026-11-01T00:00:00Z"))));
    assert_eq!(any.reads().longest_window(), None);
    assert!(!rule("count(a) > 1").reads().time_dependent);
    let _ = HOUR_MS;
}

#[test]
fn display_prints_the_canonical_rule() {
    let r = rule(
        "count( page_viewed ,30d )>=1 AND_not_a_keyword == 1"
            .split(" AND")
            .next()
            .unwrap(),
    );
    assert_eq!(r.to_string(), "count(page_viewed, 30d) >= 1");
    assert_eq!(r.source(), "count( page_viewed ,30d )>=1");
}
