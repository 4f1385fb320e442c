//! WebSockets: events in with acks, and a slow notification subscriber that is dropped
//! while ingestion and other subscribers carry on.

use std::time::Duration;

use serde_json::json;

use crate::common::client::{call_for_test as call, stalled_subscriber_for_test, Socket};
use crate::common::server::{test_config_for_test, TestServer};

const WAIT: Duration = Duration::from_secs(5);

fn event(id: &str) -> serde_json::Value {
    json!({"id": id, "id_type": "cookie", "created_at": "2026-10-31T00:00:00Z", "payload": {"activity_type": "page_viewed"}})
}

#[actix_rt::test]
async fn the_events_socket_acks_and_survives_bad_messages() {
    let server = TestServer::start();
    call(
        "POST",
        &server.url("/api/v1/admin/clock"),
        Some(r#"{"now": "2026-11-01T00:00:00Z"}"#),
    )
    .await;
    let mut socket = Socket::connect_for_test(&server.ws_url("/api/v1/events/ws")).await;
    socket.send_for_test(&event("w1").to_string()).await;
    assert_eq!(
        socket.next_json_for_test(WAIT).await,
        Some(json!({"ack": 1}))
    );
    socket.send_for_test("{nope").await;
    let error = socket
        .next_json_for_test(WAIT)
        .await
        .expect("an error answer");
    assert_eq!(error["error"]["code"], "invalid_json");
    socket
        .send_for_test(&json!([{"id": "w2", "id_type": "cookie"}]).to_string())
        .await;
    let error = socket
        .next_json_for_test(WAIT)
        .await
        .expect("an error answer");
    assert_eq!(
        (
            error["error"]["code"].as_str(),
            error["error"]["index"].as_u64()
        ),
        (Some("invalid_event"), Some(0))
    );
    socket
        .send_for_test(&json!([event("w2"), event("w3")]).to_string())
        .await;
    assert_eq!(
        socket.next_json_for_test(WAIT).await,
        Some(json!({"ack": 2})),
        "still open"
    );
    assert_eq!(
        call("GET", &server.url("/api/v1/users?clientRefId=w3"), None)
            .await
            .status,
        200
    );
}

#[actix_rt::test]
async fn a_slow_subscriber_is_dropped_and_ingestion_goes_on() {
    let temp = tempfile::tempdir().unwrap();
    let mut config = test_config_for_test(temp.path());
    config.notifications.subscriber_buffer = 256;
    config.notifications.send_timeout_secs = 1;
    let server = TestServer::start_with_send_buffer(config, Some(8192));
    call(
        "POST",
        &server.url("/api/v1/admin/clock"),
        Some(r#"{"now": "2026-11-01T00:00:00Z"}"#),
    )
    .await;
    let body = r#"{"name": "all", "rule": "count(page_viewed) >= 1"}"#;
    assert_eq!(
        call("POST", &server.url("/api/v1/segments"), Some(body))
            .await
            .status,
        201
    );

    let _slow = stalled_subscriber_for_test(server.addr, "/api/v1/notifications/ws");
    let mut reader = Socket::connect_for_test(&server.ws_url("/api/v1/notifications/ws")).await;
    let mut received = 0;
    for batch in 0..40 {
        let events: Vec<_> = (0..50).map(|i| event(&format!("s{batch}-{i}"))).collect();
        let answer = call(
            "POST",
            &server.url("/api/v1/events"),
            Some(&serde_json::Value::Array(events).to_string()),
        )
        .await;
        assert_eq!(
            answer.status, 202,
            "ingestion is never held up by a slow subscriber"
        );
        while let Some(message) = reader.next_json_for_test(Duration::from_millis(50)).await {
            assert_eq!(message["in_segments"], json!([1]));
            received += 1;
        }
    }
    while reader
        .next_json_for_test(Duration::from_millis(300))
        .await
        .is_some()
    {
        received += 1;
    }
    assert_eq!(received, 2000, "a reading subscriber gets every change");
    let dropped = crate::common::client::wait_for_metric_for_test(
        &server.url("/metrics"),
        "uss_notification_dropped_subscribers_total 1",
    )
    .await;
    assert!(dropped, "the slow subscriber was disconnected and counted");
}

#[actix_rt::test]
async fn a_peer_that_never_answers_pings_is_dropped() {
    let temp = tempfile::tempdir().unwrap();
    let mut config = test_config_for_test(temp.path());
    config.notifications.ping_interval_secs = 1;
    config.notifications.peer_timeout_secs = 1;
    let server = TestServer::start_with(config);
    let _silent = stalled_subscriber_for_test(server.addr, "/api/v1/notifications/ws");
    let url = server.url("/metrics");
    let counted =
        crate::common::client::wait_for_metric_for_test(&url, "uss_notification_subscribers 1")
            .await;
    assert!(counted, "the subscriber was counted");
    let dropped =
        crate::common::client::wait_for_metric_for_test(&url, "uss_notification_subscribers 0")
            .await;
    assert!(
        dropped,
        "a silent peer is dropped after its pings go unanswered"
    );
}

#[actix_rt::test]
async fn subscribers_beyond_the_limit_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    let mut config = test_config_for_test(temp.path());
    config.notifications.max_subscribers = 1;
    let server = TestServer::start_with(config);
    let _first = Socket::connect_for_test(&server.ws_url("/api/v1/notifications/ws")).await;
    let url = server.url("/metrics");
    let counted =
        crate::common::client::wait_for_metric_for_test(&url, "uss_notification_subscribers 1")
            .await;
    assert!(counted);
    let second = awc::Client::new()
        .ws(server.ws_url("/api/v1/notifications/ws"))
        .connect()
        .await;
    assert!(second.is_err(), "the second subscriber is refused");
    let refused = call("GET", &server.url("/api/v1/notifications/ws"), None).await;
    assert_eq!(
        (refused.status, refused.body["error"]["code"].as_str()),
        (503, Some("overloaded"))
    );
}

#[actix_rt::test]
async fn an_events_socket_over_its_message_rate_is_told_so() {
    let temp = tempfile::tempdir().unwrap();
    let mut config = test_config_for_test(temp.path());
    config.ingest.ws_max_messages_per_s = 2;
    let server = TestServer::start_with(config);
    let mut socket = Socket::connect_for_test(&server.ws_url("/api/v1/events/ws")).await;
    let mut codes = Vec::new();
    for i in 0..6 {
        socket
            .send_for_test(&event(&format!("r{i}")).to_string())
            .await;
        let answer = socket
            .next_json_for_test(WAIT)
            .await
            .expect("an answer per message");
        codes.push(answer["error"]["code"].as_str().unwrap_or("ack").to_owned());
    }
    assert!(codes.iter().any(|c| c == "rate_limited"), "{codes:?}");
    assert!(codes.iter().any(|c| c == "ack"), "{codes:?}");
}
