//! Calls the black-box tests make again and again, each asserting its success status.

use serde_json::{json, Value};

use super::client::Endpoint;
use super::client::{call_for_test as call, Answer};

/// Creates a segment; returns its id.
pub async fn create_segment_for_test(server: &impl Endpoint, name: &str, rule: &str) -> u64 {
    let body = json!({"name": name, "rule": rule}).to_string();
    let created = call("POST", &server.url("/api/v1/segments"), Some(&body)).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["id"].as_u64().expect("segment id")
}

/// Sets the dev clock.
pub async fn set_clock_for_test(server: &impl Endpoint, now: &str) {
    let body = json!({ "now": now }).to_string();
    let answer = call("POST", &server.url("/api/v1/admin/clock"), Some(&body)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

/// Posts one event or an array of events and expects them accepted.
pub async fn post_events_for_test(server: &impl Endpoint, events: Value) {
    let answer = call(
        "POST",
        &server.url("/api/v1/events"),
        Some(&events.to_string()),
    )
    .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
}

/// Calls `POST /api/v1/identify` with `(id_type, id)` pairs.
pub async fn identify_for_test(server: &impl Endpoint, identities: &[(&str, &str)]) -> Answer {
    let listed: Vec<Value> = identities
        .iter()
        .map(|(id_type, id)| json!({"id_type": id_type, "id": id}))
        .collect();
    let body = json!({ "identities": listed }).to_string();
    call("POST", &server.url("/api/v1/identify"), Some(&body)).await
}

/// Returns the user that owns the identity `id_type:id`.
pub async fn user_for_test(server: &impl Endpoint, id_type: &str, id: &str) -> Value {
    let url = server.url(&format!("/api/v1/users?clientRefId={id}&idType={id_type}"));
    let answer = call("GET", &url, None).await;
    assert_eq!(answer.status, 200, "{id_type}:{id} {:?}", answer.body);
    answer.body
}

/// Returns the `user_id` of the user that owns the identity `id_type:id`.
pub async fn user_id_for_test(server: &impl Endpoint, id_type: &str, id: &str) -> u64 {
    user_for_test(server, id_type, id).await["user_id"]
        .as_u64()
        .expect("user_id")
}
