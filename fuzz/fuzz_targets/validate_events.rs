//! Fuzzes event decoding and validation: any request body either becomes events that
//! obey API.md's field table or a JSON error with a position; nothing panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uss::domain::Timestamp;
use uss::http::{parse_json, validate_body, ApiError, EventRules};

fuzz_target!(|data: &[u8]| {
    let types: Vec<String> = ["cookie", "email", "facebook", "device_id", "user_id"]
        .map(String::from)
        .to_vec();
    let now = Timestamp::from_millis(1_767_225_600_000);
    let rules = EventRules {
        identity_types: &types,
        latest: now.add_millis(300_000),
        now,
        max_events: 10_000,
    };
    let body = match parse_json(data) {
        Ok(body) => body,
        Err(ApiError::InvalidJson { line, column, .. }) => {
            assert!(line >= 1 && column >= 1);
            return;
        }
        Err(other) => panic!("unexpected error {other:?}"),
    };
    match validate_body(body, &rules) {
        Ok(events) => {
            for incoming in events {
                let activity = &incoming.event.activity_type;
                assert!((1..=64).contains(&activity.len()));
                assert!(incoming.event.created_at <= rules.latest);
                assert!(types.contains(&incoming.identity.0));
                assert!(!incoming.identity.1.is_empty());
            }
        }
        Err(error) => {
            let json = error.body_json();
            assert!(json.contains(error.code()));
        }
    }
});
