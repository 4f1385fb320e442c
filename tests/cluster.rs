//! The cluster (issue #7) held to API.md's "Cluster": three real `uss serve` processes
//! answer as one server. Any node serves any user; the segment catalog and the dev
//! clock are one; a notification subscriber on any node gets every node's changes; a
//! node down costs only its own users (`503 owner_unavailable`) and they come back
//! whole; identities seen through different nodes merge as on one node; the sample
//! workload has the same members on one node and on three.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::api::{
    create_segment_for_test, identify_for_test, post_events_for_test, set_clock_for_test,
    user_for_test, user_id_for_test,
};
use crate::common::client::{wait_until_for_test, Answer, Socket};
use crate::common::cluster::{TestCluster, DOWN_AFTER_MS};
use crate::common::{event_lines_for_test, oracle_for_test, segments_for_test};

const NOW: &str = "2026-11-01T00:00:00Z";
const NOW_MS: &str = "2026-11-01T00:00:00.000Z";
const WAIT: Duration = Duration::from_secs(5);

/// A cookie user's event at `at` (zone-less, read as UTC).
fn event(cookie: &str, activity: &str, at: &str) -> Value {
    json!({"id": cookie, "id_type": "cookie", "created_at": at,
           "payload": {"activity_type": activity}})
}

/// Sets the dev clock through every node: tests of other things do not depend on the
/// clock reaching every node (`catalog_and_clock_are_shared_by_every_node` checks that).
async fn set_clock_everywhere(cluster: &TestCluster, now: &str) {
    for i in cluster.running() {
        set_clock_for_test(cluster.node(i), now).await;
    }
}

/// Returns each user's owner, asserting every node names the same one.
async fn owners(cluster: &TestCluster, users: &[u64]) -> BTreeMap<u64, String> {
    let mut owners = BTreeMap::new();
    for &user in users {
        owners.insert(user, cluster.owner(user).await);
    }
    owners
}

/// Returns `next_cursor` as a query value (percent-encoded if it is a string).
fn cursor_param(cursor: &Value) -> String {
    match cursor {
        Value::String(text) => text
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect(),
        other => other.to_string(),
    }
}

/// Walks the members of `segment` with pages of `limit`, page `p` through node
/// `nodes[p % nodes.len()]`; asserts each page is ascending and at most `limit` long.
async fn members(cluster: &TestCluster, nodes: &[usize], segment: u64, limit: usize) -> Vec<u64> {
    let mut all: Vec<u64> = Vec::new();
    let mut cursor = Value::Null;
    for page in 0.. {
        let node = nodes[page % nodes.len()];
        let mut path = format!("/api/v1/segments/{segment}/members?limit={limit}");
        if !cursor.is_null() {
            path.push_str(&format!("&cursor={}", cursor_param(&cursor)));
        }
        let answer = cluster.call(node, "GET", &path, None).await;
        assert_eq!(
            answer.status,
            200,
            "{} GET {path}: {:?}",
            cluster.node(node).id,
            answer.body
        );
        let ids: Vec<u64> = serde_json::from_value(answer.body["members"].clone()).expect("ids");
        assert!(
            ids.len() <= limit,
            "a page holds at most limit ids: {ids:?}"
        );
        all.extend(ids);
        cursor = answer.body["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
        assert!(page < 10_000, "pagination ends");
    }
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "ascending ids: {all:?}"
    );
    all
}

/// Waits until `segment` is `ready` on every node, then asserts its count, its
/// `member_count` and its members (small pages, through each node alone and through
/// the nodes in turn) are `expected` everywhere.
async fn assert_members(cluster: &TestCluster, segment: u64, expected: &BTreeSet<u64>) {
    let path = format!("/api/v1/segments/{segment}");
    let ready = wait_until_for_test(WAIT, || async {
        for i in cluster.running() {
            if cluster.call(i, "GET", &path, None).await.body["status"] != "ready" {
                return false;
            }
        }
        true
    })
    .await;
    assert!(ready, "segment {segment} is ready on every node");
    let count = cluster.same_everywhere(&format!("{path}/count")).await;
    assert_eq!(
        count.body,
        json!({"count": expected.len()}),
        "count of {segment}"
    );
    let one = cluster.same_everywhere(&path).await;
    assert_eq!(one.body["member_count"], json!(expected.len()));
    let expected: Vec<u64> = expected.iter().copied().collect();
    let running = cluster.running();
    for &i in &running {
        assert_eq!(
            members(cluster, &[i], segment, 4).await,
            expected,
            "members of {segment} through {}",
            cluster.node(i).id
        );
    }
    assert_eq!(
        members(cluster, &running, segment, 3).await,
        expected,
        "members of {segment}, each page through the next node"
    );
}

#[actix_rt::test]
async fn a_cluster_of_one_keeps_its_data_across_kill_and_stop() {
    let mut cluster = TestCluster::start(1).await;
    set_clock_for_test(cluster.node(0), NOW).await;
    post_events_for_test(
        cluster.node(0),
        event("one", "page_viewed", "2026-10-31T00:00:00"),
    )
    .await;
    cluster.kill(0);
    cluster.restart(0).await;
    post_events_for_test(
        cluster.node(0),
        event("one", "page_viewed", "2026-10-31T01:00:00"),
    )
    .await;
    cluster.stop(0).await;
    cluster.restart(0).await;
    let user = user_for_test(cluster.node(0), "cookie", "one").await;
    assert_eq!(user["activities"]["page_viewed"]["count"], json!(2));
    let clock = cluster.call(0, "GET", "/api/v1/admin/clock", None).await;
    assert_eq!(
        clock.body,
        json!({ "now": NOW_MS }),
        "the dev clock resumes"
    );
    let view = cluster.view(0, user["user_id"].as_u64()).await;
    let addr = cluster.node(0).addr.to_string();
    assert_eq!(
        view,
        json!({"node_id": "n1", "nodes": [{"id": "n1", "addr": addr, "state": "up"}], "owner": "n1"})
    );
}

#[actix_rt::test]
async fn any_node_answers_for_any_user_as_one_server() {
    const USERS: usize = 30;
    let cluster = TestCluster::start(3).await;
    set_clock_everywhere(&cluster, NOW).await;
    let cookies: Vec<String> = (0..USERS).map(|k| format!("any-{k}")).collect();
    let mut counts: BTreeMap<(usize, &str), u64> = BTreeMap::new();
    let mut last: BTreeMap<&str, String> = BTreeMap::new();
    let mut note = |k: usize, activity: &'static str, at: &str| {
        *counts.entry((k, activity)).or_default() += 1;
        let latest = last.entry(activity).or_default();
        if at > latest.as_str() {
            *latest = at.to_owned();
        }
    };

    // One event per user, each through the next node.
    for (k, cookie) in cookies.iter().enumerate() {
        let at = format!("2026-10-30T10:{k:02}:00");
        let mut single = event(cookie, "page_viewed", &at);
        single["country"] = json!(if k % 2 == 0 { "US" } else { "FR" });
        single["traits"] = json!({"plan": if k % 3 == 0 { "pro" } else { "free" }});
        post_events_for_test(cluster.node(k % 3), single).await;
        note(k, "page_viewed", &at);
    }
    // Batches that mix users of every owner, each through the next node.
    for b in 0..6 {
        let batch: Vec<Value> = (0..10)
            .map(|j| {
                let k = (b * 7 + j * 3) % USERS;
                let activity = if j % 2 == 1 {
                    "added_to_cart"
                } else {
                    "page_viewed"
                };
                let at = format!("2026-10-31T{b:02}:{j:02}:00");
                note(k, activity, &at);
                let mut one = event(&cookies[k], activity, &at);
                one["device_type"] = json!("mobile");
                one
            })
            .collect();
        post_events_for_test(cluster.node(b % 3), Value::Array(batch)).await;
    }

    let mut users = Vec::new();
    for (k, cookie) in cookies.iter().enumerate() {
        let by_cookie = cluster
            .same_everywhere(&format!("/api/v1/users?clientRefId={cookie}"))
            .await;
        assert_eq!(by_cookie.status, 200, "{cookie}: {:?}", by_cookie.body);
        let user = by_cookie.body["user_id"].as_u64().expect("user_id");
        for activity in ["page_viewed", "added_to_cart"] {
            let expected = counts.get(&(k, activity)).copied();
            assert_eq!(
                by_cookie.body["activities"][activity]["count"].as_u64(),
                expected,
                "{cookie} {activity}"
            );
        }
        assert_eq!(
            by_cookie.body["attributes"]["country"],
            json!(if k % 2 == 0 { "US" } else { "FR" })
        );
        assert_eq!(
            by_cookie.body["traits"]["plan"],
            json!(if k % 3 == 0 { "pro" } else { "free" })
        );
        let by_id = cluster
            .same_everywhere(&format!("/api/v1/users/{user}"))
            .await;
        assert_eq!(
            (by_id.status, &by_id.body),
            (200, &by_cookie.body),
            "{cookie} by id"
        );
        users.push(user);
    }
    let distinct: BTreeSet<u64> = users.iter().copied().collect();
    assert_eq!(distinct.len(), USERS, "one user per cookie");

    let owners = owners(&cluster, &users).await;
    let owning: BTreeSet<&String> = owners.values().collect();
    assert!(
        owning
            .iter()
            .all(|o| ["n1", "n2", "n3"].contains(&o.as_str())),
        "{owning:?}"
    );
    assert!(
        owning.len() > 1,
        "users are spread over the nodes: {owners:?}"
    );
    let listed: Vec<Value> = (0..3)
        .map(|i| {
            let node = cluster.node(i);
            json!({"id": node.id, "addr": node.addr.to_string(), "state": "up"})
        })
        .collect();
    for i in 0..3 {
        let view = cluster.view(i, None).await;
        assert_eq!(view["node_id"], json!(cluster.node(i).id));
        assert!(
            view.get("owner").is_none(),
            "no owner without user_id: {view}"
        );
        let mut nodes = view["nodes"].as_array().expect("nodes").clone();
        nodes.sort_by_key(|n| n["id"].as_str().map(str::to_owned));
        assert_eq!(nodes, listed, "{} lists the cluster", cluster.node(i).id);
    }

    let activities = cluster.same_everywhere("/api/v1/activities").await;
    let expected: Vec<Value> = ["added_to_cart", "page_viewed"]
        .iter()
        .map(|activity| {
            let total: u64 = counts
                .iter()
                .filter(|((_, a), _)| a == activity)
                .map(|(_, n)| n)
                .sum();
            json!({"activity_type": activity, "count": total,
                   "last_at": format!("{}.000Z", last[activity])})
        })
        .collect();
    assert_eq!(
        activities.body,
        json!({ "activities": expected }),
        "the whole cluster's totals"
    );
}

#[actix_rt::test]
async fn catalog_and_clock_are_shared_by_every_node() {
    const USERS: usize = 24;
    let cluster = TestCluster::start(3).await;
    set_clock_for_test(cluster.node(2), NOW).await;
    for i in 0..3 {
        let clock = cluster.call(i, "GET", "/api/v1/admin/clock", None).await;
        assert_eq!(
            clock.body,
            json!({ "now": NOW_MS }),
            "clock of {}",
            cluster.node(i).id
        );
    }

    let body =
        json!({"name": "viewers", "rule": "count(page_viewed) >= 2", "description": "two views"});
    let created = cluster
        .call(1, "POST", "/api/v1/segments", Some(&body.to_string()))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let viewers = created.body["id"].as_u64().expect("id");
    let listing = cluster.same_everywhere("/api/v1/segments").await;
    let listed = &listing.body["segments"][0];
    for field in [
        "id",
        "name",
        "rule",
        "description",
        "created_at",
        "updated_at",
    ] {
        assert_eq!(
            listed[field], created.body[field],
            "{field} as created on n2"
        );
    }
    assert_eq!(listing.body["segments"].as_array().map(Vec::len), Some(1));
    let taken = cluster
        .call(2, "POST", "/api/v1/segments", Some(&body.to_string()))
        .await;
    assert_eq!(
        taken.status, 409,
        "the name is taken cluster-wide: {:?}",
        taken.body
    );

    // User k: k % 3 == 0 signed up long ago; 1 viewed once; 2 viewed twice, later.
    let cookies: Vec<String> = (0..USERS).map(|k| format!("cat-{k}")).collect();
    for (k, cookie) in cookies.iter().enumerate() {
        let events = match k % 3 {
            0 => json!([event(cookie, "signup", "2026-10-25T10:00:00")]),
            1 => json!([event(cookie, "page_viewed", "2026-10-31T12:00:00")]),
            _ => json!([
                event(cookie, "page_viewed", "2026-10-31T12:00:00"),
                event(cookie, "page_viewed", "2026-10-31T18:00:00")
            ]),
        };
        post_events_for_test(cluster.node(k % 3), events).await;
    }
    let active =
        create_segment_for_test(cluster.node(0), "active", "last_seen() >= now - 1d").await;
    let mut users = Vec::new();
    for cookie in &cookies {
        users.push(user_id_for_test(cluster.node(2), "cookie", cookie).await);
    }
    let having = |kinds: &[usize]| -> BTreeSet<u64> {
        (0..USERS)
            .filter(|k| kinds.contains(&(k % 3)))
            .map(|k| users[k])
            .collect()
    };
    assert_members(&cluster, viewers, &having(&[2])).await;
    assert_members(&cluster, active, &having(&[1, 2])).await;

    let change = json!({"rule": "count(page_viewed) >= 1", "description": "one view"});
    let put = cluster
        .call(
            2,
            "PUT",
            &format!("/api/v1/segments/{viewers}"),
            Some(&change.to_string()),
        )
        .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    assert_members(&cluster, viewers, &having(&[1, 2])).await;
    let changed = cluster
        .same_everywhere(&format!("/api/v1/segments/{viewers}"))
        .await;
    assert_eq!(
        (
            &changed.body["name"],
            &changed.body["rule"],
            &changed.body["description"]
        ),
        (
            &json!("viewers"),
            &json!("count(page_viewed) >= 1"),
            &json!("one view")
        ),
        "the PUT on n3, seen everywhere"
    );
    assert_eq!(changed.body["created_at"], created.body["created_at"]);

    // Moved on n3: users last seen at 12:00 lapse at 12:00:00.001, those at 18:00 stay.
    set_clock_for_test(cluster.node(2), "2026-11-01T15:00:00Z").await;
    for i in 0..3 {
        let clock = cluster.call(i, "GET", "/api/v1/admin/clock", None).await;
        assert_eq!(
            clock.body,
            json!({"now": "2026-11-01T15:00:00.000Z"}),
            "clock of {}",
            cluster.node(i).id
        );
    }
    assert_members(&cluster, active, &having(&[2])).await;
    for i in 0..3 {
        let back = cluster
            .call(
                i,
                "POST",
                "/api/v1/admin/clock",
                Some(&json!({ "now": NOW }).to_string()),
            )
            .await;
        assert_eq!(
            (back.status, back.body["error"]["code"].as_str()),
            (409, Some("clock_backwards")),
            "the cluster holds users, whatever node is asked ({})",
            cluster.node(i).id
        );
    }

    let deleted = cluster
        .call(0, "DELETE", &format!("/api/v1/segments/{viewers}"), None)
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    let listing = cluster.same_everywhere("/api/v1/segments").await;
    let ids: Vec<&Value> = listing.body["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert_eq!(
        ids,
        vec![&json!(active)],
        "the DELETE on n1, seen everywhere"
    );
    for path in [
        format!("/api/v1/segments/{viewers}"),
        format!("/api/v1/segments/{viewers}/members"),
    ] {
        let gone = cluster.same_everywhere(&path).await;
        assert_eq!(
            (gone.status, gone.body["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
}

/// Reads `socket` until `n` messages came, filing them by user; panics after `WAIT`
/// of silence.
async fn read_into(socket: &mut Socket, n: usize, by_user: &mut BTreeMap<u64, Vec<Value>>) {
    for got in 0..n {
        let message = socket
            .next_json_for_test(WAIT)
            .await
            .unwrap_or_else(|| panic!("{n} notifications, got {got}"));
        let user = message["user_id"].as_u64().expect("user_id");
        by_user.entry(user).or_default().push(message);
    }
}

/// Posts `activity` at `at` for each cookie, round-robin through the nodes, and returns
/// the users' ids in cookie order.
async fn create_users(
    cluster: &TestCluster,
    cookies: &[String],
    activity: &str,
    at: &str,
) -> Vec<u64> {
    let mut users = Vec::new();
    for (k, cookie) in cookies.iter().enumerate() {
        post_events_for_test(cluster.node(k % cluster.len()), event(cookie, activity, at)).await;
    }
    for (k, cookie) in cookies.iter().enumerate() {
        users.push(user_id_for_test(cluster.node(k % cluster.len()), "cookie", cookie).await);
    }
    let distinct: BTreeSet<u64> = users.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        cookies.len(),
        "one user per cookie: {users:?}"
    );
    users
}

#[actix_rt::test]
async fn a_subscriber_on_any_node_gets_every_nodes_changes_in_order() {
    const USERS: usize = 30;
    let cluster = TestCluster::start(3).await;
    set_clock_everywhere(&cluster, NOW).await;
    let recent =
        create_segment_for_test(cluster.node(1), "recent", "last_seen() >= now - 1d").await;
    let cookies: Vec<String> = (0..USERS).map(|k| format!("fan-{k}")).collect();
    let users = create_users(&cluster, &cookies, "signup", "2026-10-20T00:00:00").await;
    let owners = owners(&cluster, &users).await;
    for id in ["n2", "n3"] {
        assert!(
            owners.values().any(|o| o == id),
            "{id} owns some of the users: {owners:?}"
        );
    }

    let mut on_n1 = cluster.subscribe(0, "").await;
    let mut on_n3 = cluster.subscribe(2, &format!("?segments={recent}")).await;
    for (k, cookie) in cookies.iter().enumerate() {
        post_events_for_test(
            cluster.node((k + 1) % 3),
            event(cookie, "page_viewed", "2026-10-31T12:00:00"),
        )
        .await;
    }
    // Time alone takes every user out, at the first millisecond past a day.
    set_clock_for_test(cluster.node(1), "2026-11-02T00:00:00Z").await;

    for (name, socket) in [("n1", &mut on_n1), ("n3", &mut on_n3)] {
        let mut by_user = BTreeMap::new();
        read_into(socket, 2 * USERS, &mut by_user).await;
        assert_eq!(
            socket.next_json_for_test(Duration::from_millis(300)).await,
            None,
            "nothing more on {name}"
        );
        for &user in &users {
            let expected = vec![
                json!({"user_id": user, "in_segments": [recent], "out_segments": [], "at": NOW_MS}),
                json!({"user_id": user, "in_segments": [], "out_segments": [recent],
                       "at": "2026-11-01T12:00:00.001Z"}),
            ];
            assert_eq!(
                by_user.get(&user),
                Some(&expected),
                "on {name}, user {user} owned by {}",
                owners[&user]
            );
        }
    }
}

/// Asserts `answer` is `503 owner_unavailable` with a `Retry-After` of whole seconds.
fn assert_owner_unavailable(answer: &Answer, what: &str) {
    assert_eq!(
        (answer.status, answer.body["error"]["code"].as_str()),
        (503, Some("owner_unavailable")),
        "{what}: {:?}",
        answer.body
    );
    let retry = answer
        .retry_after
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: Retry-After"));
    assert!(
        retry.parse::<u64>().is_ok(),
        "{what}: Retry-After {retry:?} is seconds"
    );
}

#[actix_rt::test]
async fn a_node_down_costs_only_its_own_users_and_they_come_back_whole() {
    const USERS: usize = 30;
    let mut cluster = TestCluster::start(3).await;
    set_clock_everywhere(&cluster, NOW).await;
    let cookies: Vec<String> = (0..USERS).map(|k| format!("down-{k}")).collect();
    let mut expected = vec![0u64; USERS];
    let mut sent = 0;
    let mut page_view = |k: usize, cookie: &str| {
        sent += 1;
        let mut one = event(cookie, "page_viewed", "2026-10-31T12:00:00");
        one["event_id"] = json!(format!("down-{k}-{sent}"));
        one
    };
    for round in 0..2 {
        let batch: Vec<Value> = cookies
            .iter()
            .enumerate()
            .map(|(k, c)| page_view(k, c))
            .collect();
        post_events_for_test(cluster.node(round), Value::Array(batch)).await;
        expected.iter_mut().for_each(|n| *n += 1);
    }
    let mut users = Vec::new();
    for cookie in &cookies {
        users.push(user_id_for_test(cluster.node(0), "cookie", cookie).await);
    }
    let owners = owners(&cluster, &users).await;
    // The victim: the last node that owns some of the users.
    let victim = (0..3)
        .rev()
        .find(|&i| owners.values().any(|o| *o == cluster.node(i).id))
        .expect("an owner");
    let victim_id = cluster.node(victim).id.clone();
    let (lost, kept): (Vec<usize>, Vec<usize>) =
        (0..USERS).partition(|&k| owners[&users[k]] == victim_id);
    assert!(
        !kept.is_empty(),
        "users are spread over the nodes: {owners:?}"
    );
    let survivors: Vec<usize> = (0..3).filter(|&i| i != victim).collect();

    cluster.kill(victim);
    let seen_down = cluster
        .wait_for_state(
            &survivors,
            victim,
            "down",
            Duration::from_millis(DOWN_AFTER_MS + 3500),
        )
        .await;
    assert!(seen_down, "{victim_id} is shown down within a few seconds");
    for &i in &survivors {
        for &j in &survivors {
            assert!(
                cluster.wait_for_state(&[i], j, "up", WAIT).await,
                "survivors stay up"
            );
        }
    }

    let mut retry_later = Vec::new();
    for &k in lost.iter().take(4) {
        for &i in &survivors {
            let what = format!(
                "{} for user {} of {victim_id}",
                cluster.node(i).id,
                users[k]
            );
            let one = page_view(k, &cookies[k]);
            let posted = cluster
                .call(i, "POST", "/api/v1/events", Some(&one.to_string()))
                .await;
            assert_owner_unavailable(&posted, &format!("POST event via {what}"));
            retry_later.push((i, k, one));
            let by_id = cluster
                .call(i, "GET", &format!("/api/v1/users/{}", users[k]), None)
                .await;
            assert_owner_unavailable(&by_id, &format!("GET user via {what}"));
            let path = format!("/api/v1/users?clientRefId={}", cookies[k]);
            let by_cookie = cluster.call(i, "GET", &path, None).await;
            assert_owner_unavailable(&by_cookie, &format!("GET by cookie via {what}"));
            let view = cluster.view(i, Some(users[k])).await;
            assert_eq!(
                view["owner"],
                json!(victim_id),
                "a down node keeps its users"
            );
        }
    }
    for &k in &kept {
        for &i in &survivors {
            post_events_for_test(cluster.node(i), page_view(k, &cookies[k])).await;
            expected[k] += 1;
            let user = user_for_test(cluster.node(i), "cookie", &cookies[k]).await;
            assert_eq!(
                user["activities"]["page_viewed"]["count"],
                json!(expected[k]),
                "{}",
                cookies[k]
            );
        }
    }

    cluster.restart(victim).await;
    for i in 0..3 {
        let view = cluster.view(i, None).await;
        let states: Vec<&Value> = view["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| &n["state"])
            .collect();
        assert!(
            states.iter().all(|s| *s == "up"),
            "{} after the restart: {view}",
            cluster.node(i).id
        );
    }
    let clock = cluster
        .call(victim, "GET", "/api/v1/admin/clock", None)
        .await;
    assert_eq!(
        clock.body,
        json!({ "now": NOW_MS }),
        "{victim_id} keeps the cluster's clock"
    );
    // A client retries what was refused, with the same event ids.
    for (i, k, one) in retry_later {
        post_events_for_test(cluster.node(i), one).await;
        expected[k] += 1;
    }
    for (k, cookie) in cookies.iter().enumerate() {
        let user = cluster
            .same_everywhere(&format!("/api/v1/users?clientRefId={cookie}"))
            .await;
        assert_eq!(user.status, 200, "{cookie}: {:?}", user.body);
        assert_eq!(
            user.body["activities"]["page_viewed"]["count"],
            json!(expected[k]),
            "{cookie} (owner {}) has every acknowledged event once",
            owners[&users[k]]
        );
    }
    let activities = cluster.same_everywhere("/api/v1/activities").await;
    assert_eq!(
        activities.body["activities"][0]["count"],
        json!(expected.iter().sum::<u64>())
    );
    cluster.stop(victim).await;
}

#[actix_rt::test]
async fn identify_through_one_node_merges_users_seen_through_others() {
    const CANDIDATES: usize = 12;
    let cluster = TestCluster::start(3).await;
    set_clock_everywhere(&cluster, NOW).await;
    let carts =
        create_segment_for_test(cluster.node(1), "carts", "count(added_to_cart) >= 1").await;
    let views = create_segment_for_test(cluster.node(2), "views3", "count(page_viewed) >= 3").await;
    // Candidates are seen through n2 and n3 only; the merge goes through n1.
    let cookies: Vec<String> = (0..CANDIDATES).map(|k| format!("who-{k}")).collect();
    for (k, cookie) in cookies.iter().enumerate() {
        post_events_for_test(
            cluster.node(1 + k % 2),
            event(cookie, "page_viewed", "2026-10-30T00:00:00"),
        )
        .await;
    }
    let mut picked: Vec<(String, u64, String)> = Vec::new();
    for cookie in &cookies {
        let user = user_id_for_test(cluster.node(2), "cookie", cookie).await;
        let owner = cluster.owner(user).await;
        if !picked.iter().any(|(_, _, o)| *o == owner) {
            picked.push((cookie.clone(), user, owner));
        }
    }
    assert!(
        picked.len() >= 2,
        "the candidates have several owners: {picked:?}"
    );
    // The first picked viewed twice, the second put something in its cart.
    post_events_for_test(
        cluster.node(2),
        event(&picked[0].0, "page_viewed", "2026-10-31T00:00:00"),
    )
    .await;
    post_events_for_test(
        cluster.node(1),
        event(&picked[1].0, "added_to_cart", "2026-10-31T00:00:00"),
    )
    .await;
    let before = |p: usize| if p == 1 { vec![carts] } else { vec![] };
    let survivor = picked.iter().map(|(_, u, _)| *u).min().expect("picked");
    let mut absorbed: Vec<u64> = picked
        .iter()
        .map(|(_, u, _)| *u)
        .filter(|u| *u != survivor)
        .collect();
    absorbed.sort_unstable();
    let views_total = picked.len() as u64 + 1;

    let mut socket = cluster.subscribe(2, "").await;
    let listed: Vec<(&str, &str)> = picked
        .iter()
        .map(|(c, _, _)| ("cookie", c.as_str()))
        .collect();
    let merged = identify_for_test(cluster.node(0), &listed).await;
    assert_eq!(merged.status, 200, "{:?}", merged.body);
    assert_eq!(merged.body["user_id"], json!(survivor));
    let mut said: Vec<u64> = serde_json::from_value(merged.body["merged"].clone()).expect("merged");
    said.sort_unstable();
    assert_eq!(said, absorbed);

    let mut by_user = BTreeMap::new();
    read_into(&mut socket, picked.len(), &mut by_user).await;
    for (p, (_, user, owner)) in picked.iter().enumerate() {
        let messages = by_user.get(user).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(messages.len(), 1, "one message about {user}: {by_user:?}");
        let message = &messages[0];
        if *user == survivor {
            let entered: Vec<u64> = [carts, views]
                .into_iter()
                .filter(|s| !before(p).contains(s))
                .collect();
            assert_eq!(
                (
                    &message["in_segments"],
                    &message["out_segments"],
                    message.get("merged_into")
                ),
                (&json!(entered), &json!([]), None),
                "the survivor (owner {owner})"
            );
        } else {
            assert_eq!(
                (
                    &message["merged_into"],
                    &message["in_segments"],
                    &message["out_segments"]
                ),
                (&json!(survivor), &json!([]), &json!(before(p))),
                "absorbed user {user} (owner {owner})"
            );
        }
        assert_eq!(message["at"], json!(NOW_MS));
    }

    for &user in &absorbed {
        for i in 0..3 {
            let gone = cluster
                .call(i, "GET", &format!("/api/v1/users/{user}"), None)
                .await;
            assert_eq!(gone.status, 301, "{} GET user {user}", cluster.node(i).id);
            assert_eq!(gone.location, Some(format!("/api/v1/users/{survivor}")));
            assert_eq!(gone.body, json!({"user_id": user, "merged_into": survivor}));
        }
    }
    for (cookie, _, _) in &picked {
        let user = cluster
            .same_everywhere(&format!("/api/v1/users?clientRefId={cookie}"))
            .await;
        assert_eq!(user.status, 200);
        assert_eq!(
            user.body["user_id"],
            json!(survivor),
            "{cookie} resolves to the survivor"
        );
        assert_eq!(
            user.body["activities"]["page_viewed"]["count"],
            json!(views_total)
        );
        assert_eq!(user.body["activities"]["added_to_cart"]["count"], json!(1));
        assert_eq!(user.body["segments"], json!([carts, views]));
        let mut identities: Vec<String> = user.body["identities"]
            .as_array()
            .expect("identities")
            .iter()
            .map(|i| {
                format!(
                    "{}:{}",
                    i["id_type"].as_str().unwrap_or("?"),
                    i["id"].as_str().unwrap_or("?")
                )
            })
            .collect();
        identities.sort();
        let mut all: Vec<String> = picked
            .iter()
            .map(|(c, _, _)| format!("cookie:{c}"))
            .collect();
        all.sort();
        assert_eq!(identities, all);
    }
    for segment in [carts, views] {
        let page = cluster
            .same_everywhere(&format!("/api/v1/segments/{segment}/members"))
            .await;
        assert_eq!(
            page.body["members"],
            json!([survivor]),
            "members of {segment}"
        );
    }
    let again = identify_for_test(cluster.node(1), &listed).await;
    assert_eq!(
        (again.status, &again.body["user_id"], &again.body["merged"]),
        (200, &json!(survivor), &json!([])),
        "already one person, whatever node is asked"
    );
}

/// Loads the sample workload into `cluster` (segments, clock and event chunks spread
/// over its nodes) and returns each fixture segment's members as identity keys.
async fn sample_members(cluster: &TestCluster, now: &str) -> BTreeMap<String, BTreeSet<String>> {
    let n = cluster.len();
    set_clock_for_test(cluster.node(n - 1), now).await;
    let mut ids = BTreeMap::new();
    for (j, segment) in segments_for_test().into_iter().enumerate() {
        let id = create_segment_for_test(cluster.node(j % n), &segment.name, &segment.rule).await;
        ids.insert(segment.name, id);
    }
    let lines = event_lines_for_test("sample_events.jsonl");
    for (c, chunk) in lines.chunks(100).enumerate() {
        let body = format!("[{}]", chunk.join(","));
        let answer = cluster
            .call(c % n, "POST", "/api/v1/events", Some(&body))
            .await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
    }
    let mut identities = BTreeSet::new();
    for line in &lines {
        let event: Value = serde_json::from_str(line).expect("event");
        identities.insert((
            event["id_type"].as_str().expect("id_type").to_owned(),
            event["id"].as_str().expect("id").to_owned(),
        ));
    }
    let mut keys = BTreeMap::new();
    for (k, (id_type, id)) in identities.iter().enumerate() {
        let user = user_id_for_test(cluster.node(k % n), id_type, id).await;
        keys.insert(user, format!("{id_type}:{id}"));
    }
    let mut members = BTreeMap::new();
    for (name, id) in ids {
        let page = cluster
            .same_everywhere(&format!("/api/v1/segments/{id}/members?limit=10000"))
            .await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        let listed: BTreeSet<String> = page.body["members"]
            .as_array()
            .expect("members")
            .iter()
            .map(|u| keys[&u.as_u64().expect("user id")].clone())
            .collect();
        members.insert(name, listed);
    }
    members
}

#[actix_rt::test]
async fn the_sample_workload_has_the_same_members_on_one_node_and_on_three() {
    let oracle = oracle_for_test("sample_oracle.json");
    let now = format!("{}Z", oracle.now);
    let expected: BTreeMap<String, BTreeSet<String>> = oracle
        .segments
        .iter()
        .map(|(name, keys)| (name.clone(), keys.iter().cloned().collect()))
        .collect();
    let single = TestCluster::start(1).await;
    assert_eq!(sample_members(&single, &now).await, expected, "one node");
    drop(single);
    let three = TestCluster::start(3).await;
    assert_eq!(sample_members(&three, &now).await, expected, "three nodes");
}
