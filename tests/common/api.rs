//! Calls the black-box tests make again and again, each asserting its success status.

use serde_json::{json, Value};

use super::client::call_for_test as call;
use super::server::TestServer;

/// Creates a segment; returns its id.
pub async fn create_segment_for_test(server: &TestServer, name: &str, rule: &str) -> u64 {
    let body = json!({"name": name, "rule": rule}).to_string();
    let created = call("POST", &server.url("/api/v1/segments"), Some(&body)).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["id"].as_u64().expect("segment id")
}

/// Sets the dev clock.
pub async fn set_clock_for_test(server: &TestServer, now: &str) {
    let body = json!({ "now": now }).to_string();
    let answer = call("POST", &server.url("/api/v1/admin/clock"), Some(&body)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

/// Posts one event or an array of events and expects them accepted.
pub async fn post_events_for_test(server: &TestServer, events: Value) {
    let answer = call(
        "POST",
        &server.url("/api/v1/events"),
        Some(&events.to_string()),
    )
    .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
}
