//! Identity stitching over HTTP: merges through an event's `identities` and through
//! `/identify`, the absorbed user's notification and `301`, chains, guardrails, the merge
//! log, restarts, and merges racing with ingestion and with each other.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::api::{
    create_segment_for_test, identify_for_test as identify, post_events_for_test,
    set_clock_for_test, user_for_test as owner, user_id_for_test as user_id,
};
use crate::common::client::{call_for_test as call, sample_for_test, text_for_test, Socket};
use crate::common::server::{test_config_for_test, TestServer};

const WAIT: Duration = Duration::from_secs(5);

async fn set_clock(server: &TestServer) {
    set_clock_for_test(server, "2026-11-01T00:00:00Z").await;
}

fn event(id_type: &str, id: &str, activity: &str, identities: Value) -> Value {
    json!({"id": id, "id_type": id_type, "created_at": "2026-10-31T00:00:00Z",
           "payload": {"activity_type": activity}, "identities": identities})
}

/// Reads notifications until one about `user` arrives.
async fn next_about(socket: &mut Socket, user: u64) -> Value {
    socket.next_about_for_test(user, WAIT).await
}

#[actix_rt::test]
async fn an_event_listing_another_users_identity_merges_it_into_the_smaller_id() {
    let server = TestServer::start();
    set_clock(&server).await;
    let twice = create_segment_for_test(&server, "twice", "count(page_viewed) >= 2").await;
    let carts = create_segment_for_test(&server, "carts", "count(added_to_cart) >= 1").await;
    post_events_for_test(&server, event("cookie", "c1", "page_viewed", Value::Null)).await;
    post_events_for_test(
        &server,
        json!([
            event("email", "a@b.com", "page_viewed", Value::Null),
            event("email", "a@b.com", "added_to_cart", Value::Null)
        ]),
    )
    .await;
    let (a, b) = (
        user_id(&server, "cookie", "c1").await,
        user_id(&server, "email", "a@b.com").await,
    );
    assert!(a < b);
    let mut socket = Socket::connect_for_test(&server.ws_url("/api/v1/notifications/ws")).await;
    post_events_for_test(
        &server,
        event("email", "a@b.com", "clicked", json!({"cookie": "c1"})),
    )
    .await;

    let gone = next_about(&mut socket, b).await;
    assert_eq!(
        (
            &gone["merged_into"],
            &gone["in_segments"],
            &gone["out_segments"]
        ),
        (&json!(a), &json!([]), &json!([carts]))
    );
    let survivor = next_about(&mut socket, a).await;
    assert_eq!(survivor["in_segments"], json!([twice, carts]));

    let absorbed = call("GET", &server.url(&format!("/api/v1/users/{b}")), None).await;
    assert_eq!(absorbed.status, 301);
    assert_eq!(
        absorbed.location.as_deref(),
        Some(format!("/api/v1/users/{a}").as_str())
    );
    assert_eq!(absorbed.body, json!({"user_id": b, "merged_into": a}));
    let merged = owner(&server, "email", "a@b.com").await;
    assert_eq!(merged["user_id"], a);
    assert_eq!(merged["activities"]["page_viewed"]["count"], 2);
    assert_eq!(merged["activities"]["added_to_cart"]["count"], 1);
    assert_eq!(
        merged["activities"]["clicked"]["count"], 1,
        "the event itself"
    );
    assert_eq!(merged["segments"], json!([twice, carts]));
    let identities = merged["identities"].as_array().expect("identities");
    assert_eq!(identities.len(), 2);
    let members = call(
        "GET",
        &server.url(&format!("/api/v1/segments/{carts}/members")),
        None,
    )
    .await;
    assert_eq!(members.body["members"], json!([a]));
    let activities = call("GET", &server.url("/api/v1/activities"), None).await;
    assert_eq!(
        activities.body["activities"][2],
        json!({"activity_type": "page_viewed", "count": 2, "last_at": "2026-10-31T00:00:00.000Z"}),
        "node totals are unchanged by a merge"
    );

    let server = server.restart();
    let absorbed = call("GET", &server.url(&format!("/api/v1/users/{b}")), None).await;
    assert_eq!(absorbed.status, 301, "the redirect survives a restart");
    assert_eq!(user_id(&server, "email", "a@b.com").await, a);
    assert_eq!(user_id(&server, "cookie", "c1").await, a);
}

#[actix_rt::test]
async fn identify_merges_chains_to_the_final_survivor_and_logs_them() {
    let server = TestServer::start();
    set_clock(&server).await;
    for cookie in ["x", "y", "z"] {
        post_events_for_test(&server, event("cookie", cookie, "page_viewed", Value::Null)).await;
    }
    let (x, y, z) = (
        user_id(&server, "cookie", "x").await,
        user_id(&server, "cookie", "y").await,
        user_id(&server, "cookie", "z").await,
    );
    let first = identify(&server, &[("cookie", "z"), ("cookie", "y")]).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(
        (&first.body["user_id"], &first.body["merged"]),
        (&json!(y), &json!([z]))
    );
    let second = identify(&server, &[("cookie", "y"), ("cookie", "x")]).await;
    assert_eq!(
        (&second.body["user_id"], &second.body["merged"]),
        (&json!(x), &json!([y]))
    );
    let again = identify(&server, &[("cookie", "z"), ("cookie", "x")]).await;
    assert_eq!(
        (&again.body["user_id"], &again.body["merged"]),
        (&json!(x), &json!([])),
        "already one person"
    );
    for gone in [y, z] {
        let answer = call("GET", &server.url(&format!("/api/v1/users/{gone}")), None).await;
        assert_eq!(answer.status, 301);
        assert_eq!(answer.body["merged_into"], x, "always the final survivor");
    }
    let merged = owner(&server, "cookie", "z").await;
    assert_eq!(merged["activities"]["page_viewed"]["count"], 3);

    let log = call(
        "GET",
        &server.url(&format!("/api/v1/users/{x}/merges")),
        None,
    )
    .await;
    assert_eq!(log.status, 200);
    let merges = log.body["merges"].as_array().expect("merges");
    let pairs: Vec<(u64, u64)> = merges
        .iter()
        .map(|m| {
            (
                m["survivor"].as_u64().unwrap(),
                m["absorbed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(pairs, vec![(y, z), (x, y)]);
    assert_eq!(
        merges[1]["identity"],
        json!({"id_type": "cookie", "id": "y"})
    );
    assert_eq!(merges[1]["at"], "2026-11-01T00:00:00.000Z");
    let moved = call(
        "GET",
        &server.url(&format!("/api/v1/users/{z}/merges")),
        None,
    )
    .await;
    assert_eq!(moved.status, 301);
    assert_eq!(
        moved.location.as_deref(),
        Some(format!("/api/v1/users/{x}/merges").as_str())
    );

    let fresh = identify(&server, &[("email", "new@x.com"), ("facebook", "fb1")]).await;
    assert_eq!(fresh.status, 200);
    let created = fresh.body["user_id"].as_u64().expect("a new user");
    assert_eq!(user_id(&server, "facebook", "fb1").await, created);
    let linked = identify(&server, &[("cookie", "x"), ("email", "late@x.com")]).await;
    assert_eq!(
        linked.body["user_id"], x,
        "an unowned identity joins without a merge"
    );
    assert_eq!(user_id(&server, "email", "late@x.com").await, x);
}

#[actix_rt::test]
async fn guardrails_refuse_junk_values_limits_and_oversized_merges() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut config = test_config_for_test(temp.path());
    config.identity.max_users_per_merge = 3;
    let server = TestServer::start_with(config);
    set_clock(&server).await;

    post_events_for_test(
        &server,
        event("cookie", "k1", "page_viewed", json!({"email": "null"})),
    )
    .await;
    post_events_for_test(
        &server,
        event("cookie", "k2", "page_viewed", json!({"email": "NULL"})),
    )
    .await;
    let (k1, k2) = (
        user_id(&server, "cookie", "k1").await,
        user_id(&server, "cookie", "k2").await,
    );
    assert_ne!(k1, k2, "a junk value glues nobody together");
    let missing = call(
        "GET",
        &server.url("/api/v1/users?clientRefId=null&idType=email"),
        None,
    )
    .await;
    assert_eq!(missing.status, 404);
    let log = call(
        "GET",
        &server.url(&format!("/api/v1/users/{k1}/merges")),
        None,
    )
    .await;
    assert_eq!(log.body["refused"][0]["reason"], "blocklisted");
    assert_eq!(log.body["refused"][0]["id"], "null");

    post_events_for_test(
        &server,
        event("cookie", "k3", "page_viewed", json!({"user_id": "u-3"})),
    )
    .await;
    post_events_for_test(
        &server,
        event("cookie", "k4", "page_viewed", json!({"user_id": "u-4"})),
    )
    .await;
    let refused = identify(&server, &[("cookie", "k3"), ("cookie", "k4")]).await;
    assert_eq!(refused.status, 200);
    assert_eq!(
        refused.body["merged"],
        json!([]),
        "two user_ids are two people"
    );
    assert_eq!(refused.body["refused"][0]["reason"], "limit_reached");
    post_events_for_test(
        &server,
        event("cookie", "k3", "clicked", json!({"user_id": "u-99"})),
    )
    .await;
    let k3 = owner(&server, "cookie", "k3").await;
    assert_eq!(
        k3["activities"]["clicked"]["count"], 1,
        "the event is applied though its link is refused"
    );
    let held: Vec<&Value> = k3["identities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["id_type"] == "user_id")
        .collect();
    assert_eq!(held, vec![&json!({"id_type": "user_id", "id": "u-3"})]);

    let emails: Vec<String> = (0..6).map(|i| format!("e{i}@x.com")).collect();
    let mut listed = vec![("cookie", "k5")];
    listed.extend(emails.iter().map(|e| ("email", e.as_str())));
    let capped = identify(&server, &listed).await;
    assert_eq!(capped.body["refused"].as_array().unwrap().len(), 1);
    assert_eq!(capped.body["refused"][0]["id"], "e5@x.com");

    for cookie in ["m1", "m2", "m3", "m4"] {
        post_events_for_test(&server, event("cookie", cookie, "page_viewed", Value::Null)).await;
    }
    let many = identify(
        &server,
        &[
            ("cookie", "m1"),
            ("cookie", "m2"),
            ("cookie", "m3"),
            ("cookie", "m4"),
        ],
    )
    .await;
    assert_eq!(many.body["merged"].as_array().unwrap().len(), 2);
    assert_eq!(many.body["refused"][0]["reason"], "too_many_users");

    let junk = identify(&server, &[("cookie", "undefined"), ("email", "anonymous")]).await;
    assert_eq!(junk.status, 422);
    assert_eq!(junk.body["error"]["code"], "identity_refused");
    let bad = call(
        "POST",
        &server.url("/api/v1/identify"),
        Some(r#"{"identities": [{"id_type": "passport", "id": "p"}]}"#),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["field"], "identities.0.id_type");

    let metrics = text_for_test(&server.url("/metrics")).await;
    for reason in ["blocklisted", "limit_reached", "too_many_users"] {
        let line = format!("uss_identity_links_refused_total{{reason=\"{reason}\"}}");
        assert!(metrics.contains(&line), "{line}");
    }
}

#[actix_rt::test]
async fn merges_racing_with_ingestion_and_each_other_lose_and_double_nothing() {
    let server = TestServer::start();
    set_clock(&server).await;
    const USERS: usize = 8;
    const ROUNDS: usize = 6;
    for user in 0..USERS {
        post_events_for_test(
            &server,
            event("cookie", &format!("r{user}"), "page_viewed", Value::Null),
        )
        .await;
    }
    let base = server.url("");
    let ingest = {
        let base = base.clone();
        async move {
            for round in 0..ROUNDS {
                let events: Vec<Value> = (0..USERS)
                    .map(|user| event("cookie", &format!("r{user}"), "page_viewed", Value::Null))
                    .collect();
                let body = Value::Array(events).to_string();
                let answer = call("POST", &format!("{base}/api/v1/events"), Some(&body)).await;
                assert_eq!(answer.status, 202, "round {round}: {:?}", answer.body);
            }
        }
    };
    let pairs = [
        (7, 0),
        (1, 6),
        (5, 2),
        (3, 4),
        (0, 1),
        (6, 5),
        (2, 3),
        (4, 7),
    ];
    let merges = pairs.into_iter().map(|(a, b)| {
        let base = base.clone();
        async move {
            let body = json!({"identities": [
                {"id_type": "cookie", "id": format!("r{a}")},
                {"id_type": "cookie", "id": format!("r{b}")}
            ]})
            .to_string();
            let answer = call("POST", &format!("{base}/api/v1/identify"), Some(&body)).await;
            assert_eq!(answer.status, 200, "{:?}", answer.body);
        }
    });
    futures_util::future::join(ingest, futures_util::future::join_all(merges)).await;

    let first = user_id(&server, "cookie", "r0").await;
    for user in 1..USERS {
        assert_eq!(user_id(&server, "cookie", &format!("r{user}")).await, first);
    }
    let merged = owner(&server, "cookie", "r0").await;
    assert_eq!(
        merged["activities"]["page_viewed"]["count"],
        (USERS * (ROUNDS + 1)) as u64,
        "every acknowledged event counted exactly once"
    );
    assert_eq!(merged["identities"].as_array().unwrap().len(), USERS);
}

/// Merges that share nothing run side by side, and links that share a user still end up
/// on one user: sixteen identifies of new pairs at once, and eight that each link a new
/// device to the same cookie at once.
#[actix_rt::test]
async fn concurrent_identifies_of_separate_and_shared_users_all_land() {
    let server = TestServer::start();
    set_clock(&server).await;
    let separate = (0..16).map(|k| {
        let server = &server;
        async move {
            let (cookie, email) = (format!("s{k}"), format!("s{k}@example.com"));
            let answer = identify(server, &[("cookie", &cookie), ("email", &email)]).await;
            assert_eq!(answer.status, 200, "{:?}", answer.body);
            answer.body["user_id"].as_u64().expect("user_id")
        }
    });
    let users = futures_util::future::join_all(separate).await;
    let distinct: std::collections::BTreeSet<u64> = users.iter().copied().collect();
    assert_eq!(distinct.len(), 16, "each pair is one new user: {users:?}");
    for (k, user) in users.iter().enumerate() {
        assert_eq!(user_id(&server, "cookie", &format!("s{k}")).await, *user);
        assert_eq!(
            user_id(&server, "email", &format!("s{k}@example.com")).await,
            *user
        );
    }

    post_events_for_test(
        &server,
        event("cookie", "shared", "page_viewed", Value::Null),
    )
    .await;
    let shared = user_id(&server, "cookie", "shared").await;
    let links = (0..8).map(|k| {
        let server = &server;
        async move {
            let device = format!("d{k}");
            let answer = identify(server, &[("cookie", "shared"), ("device_id", &device)]).await;
            assert_eq!(answer.status, 200, "{:?}", answer.body);
            assert_eq!(answer.body["user_id"].as_u64(), Some(shared));
        }
    });
    futures_util::future::join_all(links).await;
    let merged = owner(&server, "cookie", "shared").await;
    assert_eq!(merged["user_id"].as_u64(), Some(shared));
    assert_eq!(merged["identities"].as_array().unwrap().len(), 9);
    for k in 0..8 {
        assert_eq!(
            user_id(&server, "device_id", &format!("d{k}")).await,
            shared
        );
    }
    let metrics = text_for_test(&server.url("/metrics")).await;
    let waits = sample_for_test(&metrics, "uss_identity_merge_lock_wait_seconds_count");
    assert_eq!(waits, Some(24.0), "one wait measured per merge");
}
