//! Passivation: with a tiny `max_resident_users`, users leave memory and come back on
//! their next event, timer or read — and every answer is the same as with all users
//! resident, a backfill's included.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::client::{
    call_for_test as call, sample_for_test, text_for_test, wait_until_for_test,
};
use crate::common::segments_for_test;
use crate::common::server::{test_config_for_test, TestServer};

async fn post_chunks(server: &TestServer, lines: &[&str]) {
    for chunk in lines.chunks(100) {
        let body = format!("[{}]", chunk.join(","));
        let answer = call("POST", &server.url("/api/v1/events"), Some(&body)).await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
    }
}

async fn scenario(server: &TestServer, lines: &[&str]) -> Vec<Value> {
    let clock = |now: &str| json!({"now": now}).to_string();
    call(
        "POST",
        &server.url("/api/v1/admin/clock"),
        Some(&clock("2026-11-01T00:00:00Z")),
    )
    .await;
    for segment in segments_for_test() {
        let body = json!({"name": segment.name, "rule": segment.rule}).to_string();
        assert_eq!(
            call("POST", &server.url("/api/v1/segments"), Some(&body))
                .await
                .status,
            201
        );
    }
    let (first, second) = lines.split_at(lines.len() / 2);
    post_chunks(server, first).await;
    // Time alone flips users, most of them out of memory by now.
    call(
        "POST",
        &server.url("/api/v1/admin/clock"),
        Some(&clock("2026-11-05T00:00:00Z")),
    )
    .await;
    // Histories arrive late: these events are older than the clock, which is fine.
    post_chunks(server, second).await;
    call(
        "POST",
        &server.url("/api/v1/admin/clock"),
        Some(&clock("2026-11-20T00:00:00Z")),
    )
    .await;
    // A backfill over users mostly out of memory, of a rule that gives its members a
    // timer.
    let body = json!({"name": "viewed_30d", "rule": "count(page_viewed, 30d) >= 1"}).to_string();
    let created = call("POST", &server.url("/api/v1/segments"), Some(&body)).await;
    assert_eq!(created.status, 201);
    let url = server.url(&format!("/api/v1/segments/{}", created.body["id"]));
    let ready = wait_until_for_test(Duration::from_secs(10), || async {
        call("GET", &url, None).await.body["status"] == "ready"
    })
    .await;
    assert!(ready, "the backfill finishes");
    let mut observed = Vec::new();
    for id in 1..=6 {
        observed.push(
            call(
                "GET",
                &server.url(&format!("/api/v1/segments/{id}/members?limit=10000")),
                None,
            )
            .await
            .body,
        );
    }
    let mut user = 1;
    loop {
        let answer = call("GET", &server.url(&format!("/api/v1/users/{user}")), None).await;
        if answer.status == 404 {
            break;
        }
        observed.push(answer.body);
        user += 1;
    }
    observed
}

fn resident(metrics: &str) -> u64 {
    sample_for_test(metrics, "uss_resident_users").map_or(u64::MAX, |n| n as u64)
}

#[actix_rt::test]
async fn passivated_users_give_the_same_answers_as_resident_ones() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sample_events.jsonl"
    ))
    .unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();

    let resident_server = TestServer::start();
    let expected = scenario(&resident_server, &lines).await;
    drop(resident_server);
    let backfilled = expected[5]["members"].as_array().map_or(0, Vec::len);
    assert!(backfilled > 10, "the backfill found members ({backfilled})");

    let temp = tempfile::tempdir().unwrap();
    let mut config = test_config_for_test(temp.path());
    config.actors.max_resident_users = 3;
    config.actors.passivation_interval_ms = 5;
    let server = TestServer::start_with(config);
    let observed = scenario(&server, &lines).await;
    assert!(expected.len() > 100, "the workload has many users");
    assert_eq!(observed.len(), expected.len());
    for (seen, want) in observed.iter().zip(&expected) {
        assert_eq!(seen, want);
    }
    let url = server.url("/metrics");
    let shrunk = wait_until_for_test(Duration::from_secs(5), || async {
        resident(&text_for_test(&url).await) <= 3
    })
    .await;
    assert!(shrunk, "at most max_resident_users stay in memory");
    let metrics = text_for_test(&url).await;
    let passivations: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("uss_passivations_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        passivations > 100,
        "users really left memory ({passivations})"
    );
}
