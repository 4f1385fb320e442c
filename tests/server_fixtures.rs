//! Replays the sample workload through `POST /api/v1/events` and checks the members of
//! the five fixture segments against the SQL oracle, via `/members` and via the
//! notification stream.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::client::{call_for_test as call, Socket};
use crate::common::server::TestServer;
use crate::common::{event_lines_for_test, oracle_for_test, segments_for_test};

#[actix_rt::test]
async fn sample_workload_matches_the_oracle_over_http() {
    let server = TestServer::start();
    let oracle = oracle_for_test("sample_oracle.json");
    let clock = json!({"now": format!("{}Z", oracle.now)}).to_string();
    assert_eq!(
        call("POST", &server.url("/api/v1/admin/clock"), Some(&clock))
            .await
            .status,
        200
    );
    let mut ids = BTreeMap::new();
    for segment in segments_for_test() {
        let body = json!({"name": segment.name, "rule": segment.rule}).to_string();
        let created = call("POST", &server.url("/api/v1/segments"), Some(&body)).await;
        ids.insert(segment.name, created.body["id"].as_u64().unwrap());
    }
    let mut socket = Socket::connect_for_test(&server.ws_url("/api/v1/notifications/ws")).await;

    let lines = event_lines_for_test("sample_events.jsonl");
    for chunk in lines.chunks(250) {
        let body = format!("[{}]", chunk.join(","));
        let answer = call("POST", &server.url("/api/v1/events"), Some(&body)).await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
    }

    // user id -> identity key, from the users the workload created
    let mut keys = BTreeMap::new();
    for line in &lines {
        let event: Value = serde_json::from_str(line).unwrap();
        let (id_type, id) = (
            event["id_type"].as_str().unwrap(),
            event["id"].as_str().unwrap(),
        );
        let user = call(
            "GET",
            &server.url(&format!("/api/v1/users?clientRefId={id}&idType={id_type}")),
            None,
        )
        .await;
        keys.insert(
            user.body["user_id"].as_u64().unwrap(),
            format!("{id_type}:{id}"),
        );
    }

    let mut streamed: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    while let Some(message) = socket.next_json_for_test(Duration::from_millis(500)).await {
        let user = message["user_id"].as_u64().unwrap();
        let members = streamed.entry(user).or_default();
        for s in message["in_segments"].as_array().unwrap() {
            members.insert(s.as_u64().unwrap());
        }
        for s in message["out_segments"].as_array().unwrap() {
            members.remove(&s.as_u64().unwrap());
        }
    }

    for (name, id) in &ids {
        let expected: BTreeSet<String> = oracle.segments[name].iter().cloned().collect();
        let page = call(
            "GET",
            &server.url(&format!("/api/v1/segments/{id}/members?limit=10000")),
            None,
        )
        .await;
        let listed: BTreeSet<String> = page.body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| keys[&u.as_u64().unwrap()].clone())
            .collect();
        assert_eq!(listed, expected, "members of {name}");
        let pushed: BTreeSet<String> = streamed
            .iter()
            .filter(|(_, segments)| segments.contains(id))
            .map(|(user, _)| keys[user].clone())
            .collect();
        assert_eq!(pushed, expected, "notification stream of {name}");
    }
}
