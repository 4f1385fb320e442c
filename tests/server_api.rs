//! Every route and error case of API.md against the real server.

use serde_json::json;

use crate::common::client::call_for_test as call;
use crate::common::server::TestServer;

const NOW: &str = r#"{"now": "2026-11-01T00:00:00Z"}"#;

fn event(id: &str, activity: &str, at: &str) -> String {
    json!({"id": id, "id_type": "cookie", "region": "Area X", "device_type": "mobile", "country": "US",
           "created_at": at, "payload": {"activity_type": activity, "url": "http://x", "order_total": ""}})
    .to_string()
}

#[actix_rt::test]
async fn operations_routes_answer() {
    let server = TestServer::start();
    assert_eq!(call("GET", &server.url("/healthz"), None).await.status, 200);
    assert_eq!(call("GET", &server.url("/readyz"), None).await.status, 200);
    let text = crate::common::client::text_for_test(&server.url("/metrics")).await;
    for name in [
        "uss_events_ingested_total",
        "uss_events_rejected_total",
        "uss_membership_changes_total",
        "uss_resident_users",
        "uss_timers_pending",
        "uss_notification_subscribers",
        "uss_http_request_duration_seconds",
        "uss_journal_flush_duration_seconds",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    let served =
        r#"uss_http_request_duration_seconds_count{method="GET",route="/healthz",status="2xx"}"#;
    assert_eq!(sample(&text, served), 1.0, "one /healthz request, labelled");
}

/// Reads the sample `name` from the metrics text.
fn sample(text: &str, name: &str) -> f64 {
    crate::common::client::sample_for_test(text, name)
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

#[actix_rt::test]
async fn the_commit_wait_counts_each_acknowledged_write() {
    let server = TestServer::start();
    call("POST", &server.url("/api/v1/admin/clock"), Some(NOW)).await;
    let metrics = server.url("/metrics");
    let before = crate::common::client::text_for_test(&metrics).await;
    let before = sample(&before, "uss_commit_wait_seconds_count");
    for (n, at) in ["2026-10-30T00:00:00Z", "2026-10-31T00:00:00Z"]
        .iter()
        .enumerate()
    {
        let cookie = format!("w{n}");
        let accepted = call(
            "POST",
            &server.url("/api/v1/events"),
            Some(&event(&cookie, "page_viewed", at)),
        )
        .await;
        assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    }
    let after = crate::common::client::text_for_test(&metrics).await;
    assert!(
        sample(&after, "uss_commit_wait_seconds_count") >= before + 2.0,
        "each acknowledged event step waited for the committer and was timed"
    );
    assert!(sample(&after, "uss_commit_wait_seconds_sum") > 0.0);
}

#[actix_rt::test]
async fn unknown_routes_and_wrong_methods_get_json_errors() {
    let server = TestServer::start();
    let missing = call("GET", &server.url("/api/v1/nope"), None).await;
    assert_eq!(
        (missing.status, missing.body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let wrong = call("DELETE", &server.url("/api/v1/events"), None).await;
    assert_eq!(
        (wrong.status, wrong.body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    assert_eq!(wrong.allow.as_deref(), Some("POST"));
    let segments = call("PATCH", &server.url("/api/v1/segments/1"), None).await;
    assert_eq!(segments.allow.as_deref(), Some("GET, PUT, DELETE"));
    let bad_id = call("GET", &server.url("/api/v1/users/abc"), None).await;
    assert_eq!(
        (bad_id.status, bad_id.body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let no_user = call("GET", &server.url("/api/v1/users/99"), None).await;
    assert_eq!(no_user.status, 404);
    let no_identity = call("GET", &server.url("/api/v1/users?clientRefId=zz"), None).await;
    assert_eq!(no_identity.status, 404);
}

#[actix_rt::test]
async fn bad_events_are_refused_and_change_nothing() {
    let server = TestServer::start();
    call("POST", &server.url("/api/v1/admin/clock"), Some(NOW)).await;
    let url = server.url("/api/v1/events");

    let malformed = call("POST", &url, Some("{\n  \"id\": }")).await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.body["error"]["code"], "invalid_json");
    assert_eq!(
        (
            malformed.body["error"]["line"].as_u64(),
            malformed.body["error"]["column"].as_u64()
        ),
        (Some(2), Some(9))
    );

    let good = event("c1", "page_viewed", "2026-10-31T00:00:00");
    let bad = json!({"id": "c2", "id_type": "cookie", "payload": {}}).to_string();
    let batch = format!("[{good}, {bad}]");
    let refused = call("POST", &url, Some(&batch)).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["error"]["code"], "invalid_event");
    assert_eq!(refused.body["error"]["field"], "payload.activity_type");
    assert_eq!(refused.body["error"]["index"], 1);
    assert_eq!(
        call("GET", &server.url("/api/v1/users?clientRefId=c1"), None)
            .await
            .status,
        404,
        "nothing applied"
    );

    let single = call("POST", &url, Some(&bad)).await;
    assert!(single.body["error"].get("index").is_none());

    let future = call(
        "POST",
        &url,
        Some(&event("c3", "page_viewed", "2026-11-01T00:06:00Z")),
    )
    .await;
    assert_eq!(future.body["error"]["field"], "created_at");

    let many = format!("[{}]", vec![good.as_str(); 10_001].join(","));
    let too_many = call("POST", &url, Some(&many)).await;
    assert_eq!(
        (too_many.status, too_many.body["error"]["code"].as_str()),
        (400, Some("too_many_events"))
    );

    let huge = format!("[\"{}\"]", "x".repeat(10 * 1024 * 1024 + 1));
    let too_large = call("POST", &url, Some(&huge)).await;
    assert_eq!(
        (too_large.status, too_large.body["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
}

#[actix_rt::test]
async fn events_build_the_user_record() {
    let server = TestServer::start();
    call("POST", &server.url("/api/v1/admin/clock"), Some(NOW)).await;
    let batch = format!(
        "[{}, {}]",
        event("c1", "page_viewed", "2026-10-30T00:00:00"),
        event("c1", "added_to_cart", "2026-10-31T00:00:00Z")
    );
    let accepted = call("POST", &server.url("/api/v1/events"), Some(&batch)).await;
    assert_eq!(
        (accepted.status, accepted.body["accepted"].as_u64()),
        (202, Some(2))
    );
    let user = call(
        "GET",
        &server.url("/api/v1/users?clientRefId=c1&idType=cookie"),
        None,
    )
    .await;
    assert_eq!(user.status, 200);
    let body = &user.body;
    assert_eq!(
        body["identities"],
        json!([{"id_type": "cookie", "id": "c1"}])
    );
    assert_eq!(
        body["attributes"],
        json!({"country": "US", "region": "Area X", "device_type": "mobile"})
    );
    assert_eq!(body["first_seen"], "2026-10-30T00:00:00.000Z");
    assert_eq!(body["last_seen"], "2026-10-31T00:00:00.000Z");
    assert_eq!(body["activities"]["page_viewed"]["count"], 1);
    let id = body["user_id"].as_u64().unwrap();
    let direct = call("GET", &server.url(&format!("/api/v1/users/{id}")), None).await;
    assert_eq!(direct.body, user.body);
    let activities = call("GET", &server.url("/api/v1/activities"), None).await;
    assert_eq!(
        activities.body["activities"],
        json!([{"activity_type": "added_to_cart", "count": 1, "last_at": "2026-10-31T00:00:00.000Z"},
               {"activity_type": "page_viewed", "count": 1, "last_at": "2026-10-30T00:00:00.000Z"}])
    );
}

#[actix_rt::test]
async fn a_repeated_event_id_counts_once() {
    let server = TestServer::start();
    call("POST", &server.url("/api/v1/admin/clock"), Some(NOW)).await;
    let mut e: serde_json::Value =
        serde_json::from_str(&event("c1", "page_viewed", "2026-10-30T00:00:00")).unwrap();
    e["event_id"] = json!("evt-1");
    let body = format!("[{e}, {e}]");
    let first = call("POST", &server.url("/api/v1/events"), Some(&body)).await;
    assert_eq!(first.body["accepted"], 2);
    call("POST", &server.url("/api/v1/events"), Some(&e.to_string())).await;
    let user = call("GET", &server.url("/api/v1/users?clientRefId=c1"), None).await;
    assert_eq!(user.body["activities"]["page_viewed"]["count"], 1);
}

#[actix_rt::test]
async fn segments_have_the_full_lifecycle() {
    let server = TestServer::start();
    call("POST", &server.url("/api/v1/admin/clock"), Some(NOW)).await;
    let url = server.url("/api/v1/segments");
    let created = call(
        "POST",
        &url,
        Some(r#"{"name": "views", "rule": "count(page_viewed) >= 1"}"#),
    )
    .await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_u64().unwrap();
    for key in [
        "id",
        "name",
        "rule",
        "description",
        "created_at",
        "updated_at",
        "member_count",
        "status",
    ] {
        assert!(created.body.get(key).is_some(), "{key}");
    }
    assert_eq!(created.body["description"], serde_json::Value::Null);
    assert_eq!(created.body["created_at"], "2026-11-01T00:00:00.000Z");

    let taken = call(
        "POST",
        &url,
        Some(r#"{"name": "views", "rule": "count(x) >= 1"}"#),
    )
    .await;
    assert_eq!(taken.status, 409);
    let invalid = call(
        "POST",
        &url,
        Some(r#"{"name": "bad", "rule": "cnt(page_viewed) > 1"}"#),
    )
    .await;
    assert_eq!(invalid.status, 422);
    assert_eq!(invalid.body["error"]["code"], "invalid_rule");
    assert_eq!(
        invalid.body["error"]["message"],
        "unknown function \"cnt\" — did you mean \"count\"?"
    );
    assert_eq!(
        (
            invalid.body["error"]["line"].as_u64(),
            invalid.body["error"]["column"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let validate = call(
        "POST",
        &server.url("/api/v1/segments/validate"),
        Some(r#"{"rule": "count(a) >= 1"}"#),
    )
    .await;
    assert_eq!(
        (validate.status, validate.body.clone()),
        (200, json!({"valid": true}))
    );
    let invalid = call(
        "POST",
        &server.url("/api/v1/segments/validate"),
        Some(r#"{"rule": "count(a, 30) >= 1"}"#),
    )
    .await;
    assert_eq!(invalid.status, 422);

    for i in 0..5 {
        call(
            "POST",
            &server.url("/api/v1/events"),
            Some(&event(
                &format!("u{i}"),
                "page_viewed",
                "2026-10-30T00:00:00",
            )),
        )
        .await;
    }
    let seg_url = server.url(&format!("/api/v1/segments/{id}"));
    let one = call("GET", &seg_url, None).await;
    assert_eq!(
        (
            one.body["member_count"].as_u64(),
            one.body["status"].as_str()
        ),
        (Some(5), Some("ready"))
    );
    let page = call("GET", &format!("{seg_url}/members?limit=2"), None).await;
    assert_eq!(page.body["members"].as_array().unwrap().len(), 2);
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = call(
        "GET",
        &format!("{seg_url}/members?limit=10&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(rest.body["members"].as_array().unwrap().len(), 3);
    assert_eq!(rest.body["next_cursor"], serde_json::Value::Null);
    assert_eq!(
        call("GET", &format!("{seg_url}/members?limit=0"), None)
            .await
            .status,
        400
    );
    assert_eq!(
        call("GET", &format!("{seg_url}/count"), None).await.body,
        json!({"count": 5})
    );

    let renamed = call(
        "PUT",
        &seg_url,
        Some(r#"{"name": "viewers", "description": "d"}"#),
    )
    .await;
    assert_eq!(
        (renamed.body["name"].as_str(), renamed.body["rule"].as_str()),
        (Some("viewers"), Some("count(page_viewed) >= 1"))
    );
    let cleared = call("PUT", &seg_url, Some(r#"{"description": null}"#)).await;
    assert_eq!(cleared.body["description"], serde_json::Value::Null);
    let changed = call(
        "PUT",
        &seg_url,
        Some(r#"{"rule": "count(page_viewed) >= 2"}"#),
    )
    .await;
    assert_eq!(changed.status, 200);
    let emptied =
        crate::common::client::wait_until_for_test(std::time::Duration::from_secs(10), || async {
            call("GET", &format!("{seg_url}/count"), None).await.body["count"] == 0
        })
        .await;
    assert!(emptied, "a changed rule is backfilled");
    let list = call("GET", &url, None).await;
    assert_eq!(list.body["segments"].as_array().unwrap().len(), 1);
    assert_eq!(call("DELETE", &seg_url, None).await.status, 204);
    assert_eq!(call("GET", &seg_url, None).await.status, 404);
    assert_eq!(call("DELETE", &seg_url, None).await.status, 404);
}

#[actix_rt::test]
async fn the_dev_clock_is_read_set_and_guarded() {
    let server = TestServer::start();
    let url = server.url("/api/v1/admin/clock");
    let set = call("POST", &url, Some(NOW)).await;
    assert_eq!(
        (set.status, set.body.clone()),
        (200, json!({"now": "2026-11-01T00:00:00.000Z"}))
    );
    assert_eq!(call("GET", &url, None).await.body, set.body);
    assert_eq!(
        call("POST", &url, Some(r#"{"now": "2026-10-01T00:00:00Z"}"#))
            .await
            .status,
        200,
        "no users yet"
    );
    call(
        "POST",
        &server.url("/api/v1/events"),
        Some(&event("c1", "page_viewed", "2026-09-30T00:00:00")),
    )
    .await;
    let back = call("POST", &url, Some(r#"{"now": "2026-09-01T00:00:00Z"}"#)).await;
    assert_eq!(
        (back.status, back.body["error"]["code"].as_str()),
        (409, Some("clock_backwards"))
    );
    assert_eq!(
        call("POST", &url, Some(r#"{"now": "soon"}"#)).await.status,
        400
    );
}

#[actix_rt::test]
async fn a_node_without_a_cluster_section_is_a_cluster_of_one() {
    let server = TestServer::start();
    let cluster = call("GET", &server.url("/api/v1/cluster?user_id=7"), None).await;
    assert_eq!(cluster.status, 200);
    assert_eq!(cluster.body["node_id"], "n1");
    assert_eq!(cluster.body["nodes"][0]["id"], "n1");
    assert_eq!(cluster.body["nodes"][0]["state"], "up");
    assert_eq!(cluster.body["owner"], "n1");
    let openapi = call("GET", &server.url("/api/v1/openapi.json"), None).await;
    assert_eq!(openapi.body["openapi"], "3.0.3");
    assert!(openapi.body["paths"]["/api/v1/cluster"]["get"].is_object());
}

#[actix_rt::test]
async fn a_future_event_counts_once_it_is_due() {
    let server = TestServer::start();
    call("POST", &server.url("/api/v1/admin/clock"), Some(NOW)).await;
    let soon = event("f1", "signed_up", "2026-11-01T00:02:00Z");
    assert_eq!(
        call("POST", &server.url("/api/v1/events"), Some(&soon))
            .await
            .status,
        202
    );
    let before = call("GET", &server.url("/api/v1/activities"), None).await;
    assert_eq!(before.body["activities"], json!([]));
    let later = r#"{"now": "2026-11-01T00:03:00Z"}"#;
    call("POST", &server.url("/api/v1/admin/clock"), Some(later)).await;
    let after = call("GET", &server.url("/api/v1/activities"), None).await;
    assert_eq!(
        after.body["activities"],
        json!([{"activity_type": "signed_up", "count": 1, "last_at": "2026-11-01T00:02:00.000Z"}])
    );
}
