//! Overload: a burst far beyond what one user's mailbox holds is shed with `503
//! overloaded` and `Retry-After`, every acknowledged event counts exactly once, and the
//! node answers normally as soon as the burst is over.

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
