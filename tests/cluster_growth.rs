//! Growing the cluster (issue #7, API.md "Cluster"): a fourth node is added to the list
//! of three real `uss serve` processes, started first, then the three restart one at a
//! time with the new list while a client keeps ingesting (with `event_id`s, retrying a
//! `503` or a node that is down). The users the new node owns move to it with their
//! state; in the end every user's count is exactly its acknowledged events, through any
//! node, each user is served by its owner alone, and segments are exact.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;
use uss::cluster::handoff::wire::{Blob, Message};
use uss::cluster::ring::{user_shard, Ring};

use crate::common::api::{create_segment_for_test, set_clock_for_test};
use crate::common::client::{
    call_for_test, sample_for_test, text_for_test, try_call_for_test, Endpoint,
};
use crate::common::cluster::{ClusterNode, TestCluster};

const USERS: usize = 300;
const NOW: &str = "2026-11-01T00:00:00Z";

/// Page views of `cookies` with the given event ids.
fn views(events: &[(String, String)]) -> String {
    let items: Vec<Value> = events
        .iter()
        .map(|(cookie, event_id)| {
            json!({"id": cookie, "id_type": "cookie", "event_id": event_id,
                   "created_at": "2026-10-30T00:00:00", "payload": {"activity_type": "page_viewed"}})
        })
        .collect();
    Value::Array(items).to_string()
}

/// What the client had acknowledged, per cookie, and how many tries were refused.
#[derive(Default)]
struct Acks {
    views: BTreeMap<String, u64>,
    refused: u64,
}

/// Posts one batch until some node acknowledges it, trying the nodes in turn from
/// `first`; a batch is resent whole (same `event_id`s), so nothing counts twice.
async fn post_until_acked(
    addrs: &[SocketAddr],
    first: usize,
    events: &[(String, String)],
    acks: &RefCell<Acks>,
) {
    let body = views(events);
    let started = Instant::now();
    for attempt in 0.. {
        let addr = addrs[(first + attempt) % addrs.len()];
        let url = format!("http://{addr}/api/v1/events");
        match try_call_for_test("POST", &url, Some(&body)).await {
            Ok(answer) if answer.status == 202 => break,
            Ok(answer) => assert!(
                answer.status == 503,
                "only 503 is retried: {} {:?}",
                answer.status,
                answer.body
            ),
            Err(_) => {}
        }
        acks.borrow_mut().refused += 1;
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a batch is acknowledged within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut acks = acks.borrow_mut();
    for (cookie, _) in events {
        *acks.views.entry(cookie.clone()).or_default() += 1;
    }
}

/// Keeps posting batches of four views of pseudo-random cookies until `stop` is set.
async fn keep_ingesting(addrs: Vec<SocketAddr>, acks: Rc<RefCell<Acks>>, stop: Rc<RefCell<bool>>) {
    let mut seed: u64 = 7;
    for batch in 0.. {
        if *stop.borrow() {
            break;
        }
        let events: Vec<(String, String)> = (0..4)
            .map(|i| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let cookie = format!("g-{}", (seed >> 33) as usize % USERS);
                (cookie, format!("live-{batch}-{i}"))
            })
            .collect();
        post_until_acked(&addrs, batch, &events, &acks).await;
    }
}

/// Returns the user `cookie` resolves to, through node `node`.
async fn user_of(node: &ClusterNode, cookie: &str) -> Value {
    let answer = call_for_test(
        "GET",
        &node.url(&format!("/api/v1/users?clientRefId={cookie}")),
        None,
    )
    .await;
    assert_eq!(
        answer.status, 200,
        "{} {cookie}: {:?}",
        node.id, answer.body
    );
    answer.body
}

/// Returns the `x-uss-forwarded-by` answer of `node` for `GET path`: what it serves itself.
async fn served_by(node: &ClusterNode, path: &str) -> (u16, Value) {
    let mut response = awc::Client::new()
        .get(node.url(path))
        .insert_header(("x-uss-forwarded-by", "test"))
        .send()
        .await
        .expect("answer");
    let body = response.body().await.expect("body");
    (
        response.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

/// Returns the value of the counter `name` (labels included) in a node's metrics.
async fn metric(node: &ClusterNode, name: &str) -> u64 {
    let text = text_for_test(&node.url("/metrics")).await;
    sample_for_test(&text, name).map_or(0, |value| value as u64)
}

#[actix_rt::test]
async fn a_fourth_node_takes_its_users_with_their_state_while_traffic_continues() {
    let began = Instant::now();
    let mut cluster = TestCluster::start(3).await;
    for i in 0..3 {
        set_clock_for_test(cluster.node(i), NOW).await;
    }
    let segment =
        create_segment_for_test(cluster.node(1), "views3", "count(page_viewed) >= 3").await;

    // Every cookie views k % 5 + 1 times, through the three nodes in turn.
    let acks = Rc::new(RefCell::new(Acks::default()));
    let addrs: Vec<SocketAddr> = (0..3).map(|i| cluster.node(i).addr).collect();
    let first: Vec<(String, String)> = (0..USERS)
        .flat_map(|k| (0..=k % 5).map(move |v| (format!("g-{k}"), format!("first-{k}-{v}"))))
        .collect();
    for (n, batch) in first.chunks(50).enumerate() {
        post_until_acked(&addrs, n, batch, &acks).await;
    }
    let mut users: BTreeMap<String, u64> = BTreeMap::new();
    for k in 0..USERS {
        let cookie = format!("g-{k}");
        let user = user_of(cluster.node(k % 3), &cookie).await["user_id"]
            .as_u64()
            .expect("id");
        users.insert(cookie, user);
    }
    eprintln!("three nodes with {USERS} users after {:?}", began.elapsed());

    // The new node first, then the others with the new list, one at a time, while a
    // client keeps ingesting through every node.
    let n4 = cluster.grow().await;
    let stop = Rc::new(RefCell::new(false));
    let all: Vec<SocketAddr> = (0..4).map(|i| cluster.node(i).addr).collect();
    let client = actix_rt::spawn(keep_ingesting(all, Rc::clone(&acks), Rc::clone(&stop)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..3 {
        let restart = Instant::now();
        cluster.stop(i).await;
        cluster.restart(i).await;
        eprintln!(
            "{} restarted with four nodes in {:?}",
            cluster.node(i).id,
            restart.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    *stop.borrow_mut() = true;
    client.await.expect("client");
    let acks = Rc::try_unwrap(acks).ok().expect("client done").into_inner();
    eprintln!(
        "grown to four nodes after {:?}; {} refused tries retried",
        began.elapsed(),
        acks.refused
    );
    for i in 0..3 {
        let log = cluster.node(i).stderr_text();
        for line in log.lines().filter(|l| l.contains("shards handed over")) {
            let fields = line.split_once("INFO").map_or(line, |(_, rest)| rest);
            eprintln!("{}: {fields}", cluster.node(i).id);
        }
    }

    // Every user: its acknowledged views exactly, through any node; served by its
    // owner alone; some of them by the new node.
    let mut on_n4 = 0;
    let mut expected_members = BTreeSet::new();
    for (k, (cookie, user)) in users.iter().enumerate() {
        let views = acks.views[cookie];
        if views >= 3 {
            expected_members.insert(*user);
        }
        let found = user_of(cluster.node(k % 4), cookie).await;
        assert_eq!(found["user_id"], json!(user), "{cookie} keeps its user");
        assert_eq!(
            found["activities"]["page_viewed"]["count"],
            json!(views),
            "{cookie} (user {user}) through {}",
            cluster.node(k % 4).id
        );
        let owner = cluster.owner(*user).await;
        on_n4 += usize::from(owner == "n4");
        for i in 0..4 {
            let node = cluster.node(i);
            let (status, body) = served_by(node, &format!("/api/v1/users/{user}")).await;
            if node.id == owner {
                assert_eq!(status, 200, "{owner} serves user {user}: {body:?}");
                assert_eq!(body["activities"]["page_viewed"]["count"], json!(views));
            } else {
                assert_eq!(
                    status, 503,
                    "{} does not serve user {user} of {owner}: {body:?}",
                    node.id
                );
            }
        }
    }
    assert!(
        on_n4 > USERS / 10,
        "the new node owns some users: {on_n4} of {USERS}"
    );

    let total: u64 = acks.views.values().sum();
    let totals = cluster.same_everywhere("/api/v1/activities").await;
    assert_eq!(totals.body["activities"][0]["count"], json!(total));
    let count = cluster
        .same_everywhere(&format!("/api/v1/segments/{segment}/count"))
        .await;
    assert_eq!(count.body["count"], json!(expected_members.len()));
    let page = cluster
        .same_everywhere(&format!("/api/v1/segments/{segment}/members?limit=10000"))
        .await;
    let members: BTreeSet<u64> =
        serde_json::from_value(page.body["members"].clone()).expect("members");
    assert_eq!(members, expected_members);
    let mut handed = 0;
    for i in 0..3 {
        handed += metric(
            cluster.node(i),
            "uss_handoff_shards_total{direction=\"out\"}",
        )
        .await;
    }
    let taken = metric(
        cluster.node(n4),
        "uss_handoff_shards_total{direction=\"in\"}",
    )
    .await;
    assert!(taken > 100, "n4 took shards: {taken}");
    assert_eq!(handed, taken, "every shard handed over was taken");

    // A repeat from an old owner is skipped once a shard has come whole (a sender that
    // stopped before deleting sends it again); a shard the new node does not expect is
    // refused. The new node keeps what it took across a restart.
    let three = Ring::new(&["n1", "n2", "n3"]);
    let four = Ring::new(&["n1", "n2", "n3", "n4"]);
    let (moved_user, from) = users
        .values()
        .find_map(|user| {
            let shard = user_shard(*user);
            (four.owner(shard) == 3).then(|| (*user, three.owner(shard)))
        })
        .expect("a user moved to n4");
    let mut record_key = vec![b'u'];
    record_key.extend_from_slice(&moved_user.to_be_bytes());
    let stale = Message::Chunk(vec![(Blob(record_key), Blob(vec![1, 2, 3]))]);
    let sender = format!("n{}", from + 1);
    assert_eq!(send_shards(cluster.node(n4), &sender, &stale).await, 204);
    let elsewhere = four.shards_of(0).next().expect("a shard of n1");
    let not_expected = Message::Done(vec![(elsewhere, 0)]);
    assert_eq!(
        send_shards(cluster.node(n4), &sender, &not_expected).await,
        400
    );
    cluster.stop(n4).await;
    cluster.restart(n4).await;
    for (cookie, user) in &users {
        let (status, body) = served_by(cluster.node(n4), &format!("/api/v1/users/{user}")).await;
        if status == 200 {
            assert_eq!(
                body["activities"]["page_viewed"]["count"],
                json!(acks.views[cookie])
            );
        }
    }
    let (status, _) = served_by(cluster.node(n4), &format!("/api/v1/users/{moved_user}")).await;
    assert_eq!(
        status, 200,
        "n4 still serves user {moved_user} after a restart"
    );
    eprintln!("checked after {:?}", began.elapsed());
}

/// Posts a handoff message to `node` as node `sender` would; returns the status.
async fn send_shards(node: &ClusterNode, sender: &str, message: &Message) -> u16 {
    awc::Client::new()
        .post(node.url("/internal/v1/shards"))
        .insert_header(("x-uss-forwarded-by", sender))
        .send_body(message.encode().expect("encoded"))
        .await
        .expect("answer")
        .status()
        .as_u16()
}
