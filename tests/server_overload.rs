//! Overload: a burst far beyond what one user's mailbox holds is shed with `503
//! overloaded` and `Retry-After`, every acknowledged event counts exactly once, and the
//! node answers normally as soon as the burst is over. A flood past the node-wide
//! in-flight limit is shed the same way, at once.

use serde_json::json;

use crate::common::client::call_for_test as call;
use crate::common::server::{test_config_for_test, TestServer};

#[actix_rt::test]
async fn a_burst_is_shed_and_the_node_recovers() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut config = test_config_for_test(temp.path());
    config.actors.mailbox_capacity = 1;
    let server = TestServer::start_with(config);
    let url = server.url("/api/v1/events");
    let event =
        json!({"id": "hot", "id_type": "cookie", "payload": {"activity_type": "page_viewed"}})
            .to_string();
    let burst = (0..300).map(|_| async { call("POST", &url, Some(&event)).await });
    let answers = futures_util::future::join_all(burst).await;
    let accepted = answers.iter().filter(|a| a.status == 202).count();
    let shed: Vec<_> = answers.iter().filter(|a| a.status == 503).collect();
    assert_eq!(accepted + shed.len(), 300, "every answer is 202 or 503");
    assert!(!shed.is_empty(), "a burst beyond the mailbox is shed");
    assert!(shed.iter().all(|a| a.body["error"]["code"] == "overloaded"));
    assert_eq!(
        call("POST", &url, Some(&event)).await.status,
        202,
        "recovers at once"
    );
    let user = call("GET", &server.url("/api/v1/users?clientRefId=hot"), None).await;
    let counted = user.body["activities"]["page_viewed"]["count"].as_u64();
    assert_eq!(
        counted,
        Some(accepted as u64 + 1),
        "exactly the acknowledged events count"
    );
}

#[actix_rt::test]
async fn a_flood_past_the_in_flight_limit_is_shed_at_once() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut config = test_config_for_test(temp.path());
    config.ingest.max_batch_events = 4;
    config.ingest.max_in_flight_events = 4;
    let server = TestServer::start_with(config);
    let url = server.url("/api/v1/events");
    let flood = (0..200).map(|i| {
        let url = url.clone();
        async move {
            let event = json!({"id": format!("flood-{}", i % 20), "id_type": "cookie",
                               "payload": {"activity_type": "page_viewed"}})
            .to_string();
            call("POST", &url, Some(&event)).await
        }
    });
    let answers = futures_util::future::join_all(flood).await;
    let accepted = answers.iter().filter(|a| a.status == 202).count();
    let shed: Vec<_> = answers.iter().filter(|a| a.status == 503).collect();
    assert_eq!(accepted + shed.len(), 200, "every answer is 202 or 503");
    assert!(!shed.is_empty(), "a flood past the limit is shed");
    assert!(shed.iter().all(|a| a.body["error"]["code"] == "overloaded"));
    let metrics = crate::common::client::text_for_test(&server.url("/metrics")).await;
    assert!(
        metrics.contains(&format!("uss_events_shed_total {}\n", shed.len())),
        "shed events are counted"
    );
    let mut counted = 0;
    for user in 0..20 {
        let answer = call(
            "GET",
            &server.url(&format!("/api/v1/users?clientRefId=flood-{user}")),
            None,
        )
        .await;
        counted += answer.body["activities"]["page_viewed"]["count"]
            .as_u64()
            .unwrap_or(0);
    }
    assert_eq!(
        counted, accepted as u64,
        "exactly the acknowledged events count"
    );
    let event =
        json!({"id": "after", "id_type": "cookie", "payload": {"activity_type": "page_viewed"}});
    assert_eq!(
        call("POST", &url, Some(&event.to_string())).await.status,
        202,
        "recovers at once"
    );
}
