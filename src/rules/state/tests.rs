//! Tests of the user state: ordering, ties, pending events, merges and encoding.

use super::*;
use crate::domain::{DAY_MS, HOUR_MS};

const RETENTION: i64 = 90 * DAY_MS;

fn t(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn visit(activity: &str, at: &str, region: Option<&str>) -> Event {
    let mut e = Event::new(activity, t(at));
    e.region = region.map(Into::into);
    e
}

#[test]
fn the_latest_event_sets_an_attribute_and_a_tie_goes_to_the_later_arrival() {
    let now = t("2026-11-01T00:00:00Z");
    let mut state = UserState::default();
    state.apply(
        &visit("v", "2026-10-20T10:00:00Z", Some("California")),
        now,
        RETENTION,
    );
    state.apply(
        &visit("v", "2026-10-20T10:00:00Z", Some("Area X")),
        now,
        RETENTION,
    );
    state.apply(
        &visit("v", "2026-10-01T00:00:00Z", Some("Old")),
        now,
        RETENTION,
    );
    state.apply(&visit("v", "2026-10-25T00:00:00Z", None), now, RETENTION);
    assert_eq!(state.attribute(Attr::Region, now), Some("Area X"));
    assert_eq!(state.attribute(Attr::Country, now), None);
}

#[test]
fn history_in_any_order_gives_the_same_answers() {
    let now = t("2026-11-01T00:00:00Z");
    let times = [
        "2026-10-31T18:00:00Z",
        "2026-10-31T06:00:00Z",
        "2026-09-01T00:00:00Z",
        "2026-10-30T23:00:00Z",
    ];
    let mut forward = UserState::default();
    let mut backward = UserState::default();
    for at in times {
        forward.apply(&visit("v", at, None), now, RETENTION);
    }
    for at in times.iter().rev() {
        backward.apply(&visit("v", at, None), now, RETENTION);
    }
    assert_eq!(forward, backward);
    assert_eq!(forward.count("v", None, now), 4);
    assert_eq!(forward.count("v", Some(24 * HOUR_MS), now), 2);
    assert_eq!(forward.count("v", Some(25 * HOUR_MS), now), 3);
    assert_eq!(
        forward.first_seen(None, now),
        Some(t("2026-09-01T00:00:00Z"))
    );
    assert_eq!(
        forward.last_seen(Some("v"), now),
        Some(t("2026-10-31T18:00:00Z"))
    );
    assert_eq!(forward.last_seen(Some("w"), now), None);
}

#[test]
fn future_events_wait_until_due_and_then_fold() {
    let now = t("2026-11-01T00:00:00Z");
    let mut state = UserState::default();
    state.apply(
        &visit("v", "2026-11-01T00:02:00Z", Some("Later")),
        now,
        RETENTION,
    );
    state.apply(
        &visit("v", "2026-10-31T00:00:00Z", Some("Now")),
        now,
        RETENTION,
    );
    assert_eq!(state.count("v", None, now), 1);
    assert_eq!(state.attribute(Attr::Region, now), Some("Now"));
    assert_eq!(state.next_pending(now), Some(t("2026-11-01T00:02:00Z")));

    let due = t("2026-11-01T00:02:00Z");
    assert_eq!(state.count("v", None, due), 2);
    assert_eq!(state.count("v", Some(HOUR_MS), due), 1);
    assert_eq!(state.attribute(Attr::Region, due), Some("Later"));
    assert_eq!(state.last_seen(None, due), Some(due));
    assert_eq!(state.next_pending(due), None);

    let before_settle = state.clone();
    state.settle(due, RETENTION);
    assert_ne!(state, before_settle);
    assert_eq!(state.count("v", Some(HOUR_MS), due), 1);
    assert_eq!(state.attribute(Attr::Region, due), Some("Later"));
}

#[test]
fn absorbing_adds_counts_and_keeps_the_latest_values() {
    let now = t("2026-11-01T00:00:00Z");
    let mut survivor = UserState::default();
    survivor.apply(
        &visit("v", "2026-10-10T00:00:00Z", Some("A")),
        now,
        RETENTION,
    );
    survivor.apply(&visit("buy", "2026-10-31T23:30:00Z", None), now, RETENTION);
    let mut absorbed = UserState::default();
    absorbed.apply(
        &visit("v", "2026-10-31T23:00:00Z", Some("B")),
        now,
        RETENTION,
    );
    absorbed.apply(&visit("v", "2026-09-01T00:00:00Z", None), now, RETENTION);
    absorbed.apply(&visit("cart", "2026-11-01T00:01:00Z", None), now, RETENTION);

    survivor.absorb(&absorbed, now, RETENTION);
    assert_eq!(survivor.count("v", None, now), 3);
    assert_eq!(survivor.count("v", Some(HOUR_MS), now), 1);
    assert_eq!(survivor.count("v", Some(30 * DAY_MS), now), 2);
    assert_eq!(
        survivor.first_seen(None, now),
        Some(t("2026-09-01T00:00:00Z"))
    );
    assert_eq!(
        survivor.last_seen(None, now),
        Some(t("2026-10-31T23:30:00Z"))
    );
    assert_eq!(survivor.attribute(Attr::Region, now), Some("B"));
    assert_eq!(survivor.count("cart", None, t("2026-11-01T00:01:00Z")), 1);
    let names: Vec<&str> = survivor.activity_types().collect();
    assert_eq!(names, ["buy", "v"]);
}

#[test]
fn traits_take_the_latest_value_by_time() {
    let now = t("2026-11-01T00:00:00Z");
    let mut state = UserState::default();
    let mut e = Event::new("v", t("2026-10-02T00:00:00Z"));
    e.traits = vec![("plan".into(), TraitValue::String("pro".into()))];
    state.apply(&e, now, RETENTION);
    e.created_at = t("2026-10-01T00:00:00Z");
    e.traits = vec![("plan".into(), TraitValue::String("free".into()))];
    state.apply(&e, now, RETENTION);
    assert_eq!(
        state.trait_value("plan", now),
        Some(&TraitValue::String("pro".into()))
    );
    assert_eq!(state.trait_names().collect::<Vec<_>>(), ["plan"]);
}

#[test]
fn encodes_and_decodes_with_field_names() {
    let now = t("2026-11-01T00:00:00Z");
    let mut state = UserState::default();
    let mut e = visit("page_viewed", "2026-10-20T10:00:00Z", Some("Area X"));
    e.traits = vec![
        ("n".into(), TraitValue::Number(3.0)),
        ("b".into(), TraitValue::Bool(true)),
    ];
    state.apply(&e, now, RETENTION);
    state.apply(
        &visit("page_viewed", "2026-11-01T00:01:00Z", None),
        now,
        RETENTION,
    );
    let bytes = rmp_serde::to_vec_named(&state).unwrap();
    let back: UserState = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, state);
}
