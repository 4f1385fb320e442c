//! The original's two segments end to end: entries on events, an exit on a purchase,
//! a flip caused by time alone pushed when the dev clock moves, and a restart that
//! keeps everything, pending flips included.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::api::{create_segment_for_test, post_events_for_test, set_clock_for_test};
use crate::common::client::{call_for_test as call, Socket};
use crate::common::server::TestServer;

const AREA_X: &str = r#"region == "Area X" and count(product_purchased, 30d) == 0"#;
const INACTIVE: &str =
    r#"device_type == "mobile" and count(page_viewed) >= 10 and last_seen() < now - 7d"#;
const WAIT: Duration = Duration::from_secs(5);

fn event(id: &str, activity: &str, region: &str, device: &str, at: &str) -> Value {
    json!({"id": id, "id_type": "cookie", "region": region, "device_type": device, "country": "US",
           "created_at": at, "payload": {"activity_type": activity}})
}

async fn user_id(server: &TestServer, cookie: &str) -> u64 {
    let user = call(
        "GET",
        &server.url(&format!("/api/v1/users?clientRefId={cookie}")),
        None,
    )
    .await;
    user.body["user_id"].as_u64().expect("user id")
}

async fn members(server: &TestServer, segment: u64) -> Vec<u64> {
    let page = call(
        "GET",
        &server.url(&format!("/api/v1/segments/{segment}/members")),
        None,
    )
    .await;
    serde_json::from_value(page.body["members"].clone()).expect("member ids")
}

#[actix_rt::test]
async fn the_original_segments_flip_on_events_and_on_time_alone() {
    let server = TestServer::start();
    set_clock_for_test(&server, "2026-11-01T00:00:00Z").await;
    let area_x = create_segment_for_test(&server, "area_x_no_purchase_30d", AREA_X).await;
    let inactive = create_segment_for_test(&server, "mobile_10_views_inactive_7d", INACTIVE).await;
    let mut all = Socket::connect_for_test(&server.ws_url("/api/v1/notifications/ws")).await;
    let mut only_inactive = Socket::connect_for_test(
        &server.ws_url(&format!("/api/v1/notifications/ws?segments={inactive}")),
    )
    .await;

    post_events_for_test(
        &server,
        json!([event(
            "alice",
            "page_viewed",
            "Area X",
            "desktop",
            "2026-10-31T23:00:00Z"
        )]),
    )
    .await;
    let alice = user_id(&server, "alice").await;
    let entered = all.next_json_for_test(WAIT).await.expect("alice enters");
    assert_eq!(
        entered,
        json!({"user_id": alice, "in_segments": [area_x], "out_segments": [], "at": "2026-11-01T00:00:00.000Z"})
    );

    let views: Vec<Value> = (0..10)
        .map(|i| {
            event(
                "bob",
                "page_viewed",
                "Texas",
                "mobile",
                &format!("2026-10-31T12:{i:02}:00Z"),
            )
        })
        .collect();
    post_events_for_test(&server, Value::Array(views)).await;
    let bob = user_id(&server, "bob").await;
    assert!(members(&server, inactive).await.is_empty(), "bob is active");

    set_clock_for_test(&server, "2026-11-10T00:00:00Z").await;
    let flip = all
        .next_json_for_test(WAIT)
        .await
        .expect("bob enters with no new event");
    let expected = json!({"user_id": bob, "in_segments": [inactive], "out_segments": [], "at": "2026-11-07T12:09:00.001Z"});
    assert_eq!(
        flip, expected,
        "pushed before the clock call answered, at the instant it took effect"
    );
    assert_eq!(only_inactive.next_json_for_test(WAIT).await, Some(expected));
    assert_eq!(members(&server, inactive).await, vec![bob]);

    post_events_for_test(
        &server,
        json!(event(
            "alice",
            "product_purchased",
            "Area X",
            "desktop",
            "2026-11-09T00:00:00Z"
        )),
    )
    .await;
    let left = all.next_json_for_test(WAIT).await.expect("alice leaves");
    assert_eq!(left["out_segments"], json!([area_x]));
    assert_eq!(
        only_inactive
            .next_json_for_test(Duration::from_millis(200))
            .await,
        None,
        "filtered out"
    );

    set_clock_for_test(&server, "2026-12-10T00:00:00Z").await;
    let back = all
        .next_json_for_test(WAIT)
        .await
        .expect("alice's purchase leaves the 30-day window");
    assert_eq!(
        back,
        json!({"user_id": alice, "in_segments": [area_x], "out_segments": [], "at": "2026-12-09T00:00:00.000Z"})
    );

    let deleted = call(
        "DELETE",
        &server.url(&format!("/api/v1/segments/{area_x}")),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204);
    let gone = all
        .next_json_for_test(WAIT)
        .await
        .expect("members leave a deleted segment");
    assert_eq!(
        (gone["user_id"].as_u64(), gone["out_segments"].clone()),
        (Some(alice), json!([area_x]))
    );
}

#[actix_rt::test]
async fn a_restart_keeps_segments_users_membership_and_pending_flips() {
    let server = TestServer::start();
    set_clock_for_test(&server, "2026-11-01T00:00:00Z").await;
    let inactive = create_segment_for_test(&server, "inactive", INACTIVE).await;
    let area_x = create_segment_for_test(&server, "area_x", AREA_X).await;
    let views: Vec<Value> = (0..10)
        .map(|i| {
            event(
                "bob",
                "page_viewed",
                "Area X",
                "mobile",
                &format!("2026-10-31T12:{i:02}:00Z"),
            )
        })
        .collect();
    post_events_for_test(&server, Value::Array(views)).await;
    let bob = user_id(&server, "bob").await;
    assert_eq!(members(&server, area_x).await, vec![bob]);

    let server = server.restart();
    let clock = call("GET", &server.url("/api/v1/admin/clock"), None).await;
    assert_eq!(
        clock.body["now"], "2026-11-01T00:00:00.000Z",
        "the dev clock resumes"
    );
    let segments = call("GET", &server.url("/api/v1/segments"), None).await;
    assert_eq!(segments.body["segments"].as_array().unwrap().len(), 2);
    assert_eq!(members(&server, area_x).await, vec![bob]);
    assert_eq!(user_id(&server, "bob").await, bob);
    let user = call("GET", &server.url(&format!("/api/v1/users/{bob}")), None).await;
    assert_eq!(user.body["activities"]["page_viewed"]["count"], 10);

    let mut socket = Socket::connect_for_test(&server.ws_url("/api/v1/notifications/ws")).await;
    set_clock_for_test(&server, "2026-11-08T00:00:00Z").await;
    let flip = socket
        .next_json_for_test(WAIT)
        .await
        .expect("the pending flip survives a restart");
    assert_eq!(flip["in_segments"], json!([inactive]));
    assert_eq!(members(&server, inactive).await, vec![bob]);
}
