//! Replays the fixture workloads through the rule engine and matches the independent
//! SQL oracle exactly.

use std::collections::{BTreeMap, BTreeSet};

use uss::domain::Timestamp;
use uss::rules::{compile, Limits, UserState};

use crate::common::{events_for_test, oracle_for_test, segments_for_test};

fn replay_and_match(events_file: &str, oracle_file: &str) {
    let limits = Limits::default();
    let oracle = oracle_for_test(oracle_file);
    let now = Timestamp::parse(&oracle.now).expect("oracle time");
    let mut users: BTreeMap<String, UserState> = BTreeMap::new();
    for fixture in events_for_test(events_file) {
        let state = users.entry(fixture.user_key()).or_default();
        state.apply(&fixture.to_event_for_test(), now, limits.max_window_ms);
    }
    let segments = segments_for_test();
    assert_eq!(segments.len(), oracle.segments.len());
    for segment in segments {
        let rule = compile(&segment.rule, &limits).expect("fixture rule");
        let members: BTreeSet<&str> = users
            .iter()
            .filter(|(_, state)| rule.eval(state, now))
            .map(|(key, _)| key.as_str())
            .collect();
        let expected: BTreeSet<&str> = oracle.segments[&segment.name]
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(members, expected, "{events_file}: segment {}", segment.name);
    }
}

#[test]
fn sample_workload_matches_the_sql_oracle() {
    replay_and_match("sample_events.jsonl", "sample_oracle.json");
}

#[test]
fn edge_workload_matches_the_sql_oracle() {
    replay_and_match("edge_events.jsonl", "edge_oracle.json");
}
