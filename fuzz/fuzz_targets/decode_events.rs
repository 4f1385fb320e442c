//! Fuzzes the typed events reader against the `Value` validator it stands in for: any
//! body gets the same events, or the same error, from both.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uss::domain::Timestamp;
use uss::http::{decode_events, parse_json, validate_body, EventRules};

fuzz_target!(|data: &[u8]| {
    let types: Vec<String> = ["cookie", "email", "facebook", "device_id", "user_id"]
        .map(String::from)
        .to_vec();
    let now = Timestamp::from_millis(1_767_225_600_000);
    let rules = EventRules {
        identity_types: &types,
        latest: now.add_millis(300_000),
        now,
        max_events: 4,
    };
    let expected = match parse_json(data) {
        Ok(body) => validate_body(body, &rules).map_err(|e| format!("{e:?}")),
        Err(e) => Err(format!("{e:?}")),
    };
    for texts in [false, true] {
        let got = decode_events(data, &rules, texts)
            .map(|decoded| decoded.events)
            .map_err(|refused| format!("{:?}", refused.error));
        assert_eq!(got, expected);
    }
});
