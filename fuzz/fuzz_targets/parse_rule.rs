//! Fuzzes the rule language: any text either compiles or is refused with a 1-based
//! position; a compiled rule prints to a canonical text that compiles to the same text,
//! and evaluating it or asking for its next change never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uss::domain::{Event, Timestamp, TraitValue, DAY_MS, HOUR_MS};
use uss::rules::{compile, next_change, Limits, UserState};

/// 2026-01-01T00:00:00Z.
const NOW_MS: i64 = 1_767_225_600_000;

fn small_state(now: Timestamp, retention_ms: i64) -> UserState {
    let mut state = UserState::default();
    let mut view = Event::new("page_viewed", now.add_millis(-3 * DAY_MS));
    view.country = Some("US".into());
    view.region = Some("Area X".into());
    view.device_type = Some("mobile".into());
    view.traits = vec![
        ("plan".into(), TraitValue::String("pro".into())),
        ("age".into(), TraitValue::Number(42.5)),
        ("vip".into(), TraitValue::Bool(true)),
    ];
    let events = [
        view,
        Event::new("added_to_cart", now.add_millis(-2 * HOUR_MS)),
        Event::new("product_purchased", now.add_millis(-40 * DAY_MS)),
        Event::new("sign-up", now.add_millis(-100 * DAY_MS)),
        // Dated in the future: kept aside as pending.
        Event::new("page_viewed", now.add_millis(HOUR_MS)),
    ];
    for event in &events {
        state.apply(event, now, retention_ms);
    }
    state
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits::default();
    match compile(text, &limits) {
        Ok(rule) => {
            let canonical = rule.to_string();
            // The length limit is on what people write; the canonical text adds spaces
            // (`a==b` prints `a == b`) and may be a little longer. Nodes and depth
            // still apply unchanged.
            let relaxed = Limits {
                max_chars: usize::MAX,
                ..limits.clone()
            };
            let again = match compile(&canonical, &relaxed) {
                Ok(again) => again,
                Err(e) => panic!("canonical text {canonical:?} of {text:?} does not compile: {e}"),
            };
            assert!(
                again.to_string() == canonical,
                "canonical text is not stable: {text:?} -> {canonical:?} -> {:?}",
                again.to_string()
            );
            let now = Timestamp::from_millis(NOW_MS);
            let empty = UserState::default();
            let small = small_state(now, limits.max_window_ms);
            for state in [&empty, &small] {
                // The canonical text must mean the same as the original.
                assert_eq!(
                    rule.eval(state, now),
                    again.eval(state, now),
                    "{text:?} and its canonical text {canonical:?} disagree"
                );
                assert_eq!(
                    next_change([&rule], state, now),
                    next_change([&again], state, now),
                    "{text:?} and its canonical text {canonical:?} wake differently"
                );
            }
        }
        Err(err) => {
            assert!(
                err.line >= 1 && err.column >= 1,
                "error position not 1-based: {err:?} for {text:?}"
            );
        }
    }
});
