//! Crash safety: the real binary is killed with SIGKILL at random moments under
//! concurrent ingestion; after each restart the unacknowledged batches are sent again
//! (same `event_id`s), and in the end every event is counted exactly once and every
//! segment lists exactly the users its rule holds for. The same
//! kills during a tree of identity merges leave each merge whole or undone. A node
//! killed before any snapshot comes back whole from its journal; one killed after its
//! users are saved keeps the membership their journaled events made.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::common::client::{call_for_test as call, wait_until_for_test};

const USERS: usize = 40;
const BATCH: usize = 10;
/// Page views a user of the kills test has about halfway through (300 in the end).
const HALFWAY: u64 = 150;

struct Node {
    child: Child,
    base: String,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("port");
    listener.local_addr().expect("addr").port()
}

async fn start(dir: &std::path::Path) -> Node {
    start_with(dir, &[]).await
}

async fn start_with(dir: &std::path::Path, flags: &[&str]) -> Node {
    start_logging(dir, flags, None).await
}

/// Starts a node whose log (at `info`) goes to `log` when given.
async fn start_logging(
    dir: &std::path::Path,
    flags: &[&str],
    log: Option<&std::path::Path>,
) -> Node {
    let (level, stderr) = match log {
        Some(path) => (
            "info",
            Stdio::from(std::fs::File::create(path).expect("log")),
        ),
        None => ("warn", Stdio::null()),
    };
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_uss"))
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir)
        .args(flags)
        .env("RUST_LOG", level)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start uss");
    let base = format!("http://127.0.0.1:{port}");
    let url = format!("{base}/readyz");
    let ready = wait_until_for_test(Duration::from_secs(20), || async {
        awc::Client::new()
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(ready, "node came up");
    Node { child, base }
}

/// One batch: `BATCH` page views with unique event ids, for users chosen by `seed`.
fn batch(seed: usize) -> (String, Vec<usize>) {
    let users: Vec<usize> = (0..BATCH).map(|i| (seed * 7 + i * 3) % USERS).collect();
    let events: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            json!({"id": format!("crash-{user}"), "id_type": "cookie", "event_id": format!("b{seed}-{i}"),
                   "payload": {"activity_type": "page_viewed"}})
        })
        .collect();
    (serde_json::Value::Array(events).to_string(), users)
}

/// Creates segment `name`: users whose page view count passes `test`; returns its id.
async fn create_segment(base: &str, name: &str, test: &str) -> u64 {
    let body = json!({"name": name, "rule": format!("count(page_viewed) {test}")});
    let created = call(
        "POST",
        &format!("{base}/api/v1/segments"),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["id"].as_u64().expect("segment id")
}

async fn send_all(base: &str, seeds: Vec<usize>) -> Vec<usize> {
    let mut failed = Vec::new();
    for seed in seeds {
        let (body, _) = batch(seed);
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(5))
            .finish();
        let acked = match client
            .post(format!("{base}/api/v1/events"))
            .send_body(body)
            .await
        {
            Ok(response) => response.status().as_u16() == 202,
            Err(_) => false,
        };
        if !acked {
            failed.push(seed);
        }
    }
    failed
}

#[actix_rt::test]
async fn killed_nodes_lose_no_acknowledged_event() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut unacked: Vec<usize> = Vec::new();
    let mut next_seed = 0;
    let mut interrupted = 0;
    // Segments on either side of HALFWAY page views.
    let segments = [("reached", ">="), ("below", "<")];
    let mut segment_ids = Vec::new();
    for round in 0..4u64 {
        let mut node = start(temp.path()).await;
        if round == 0 {
            for (name, comparison) in segments {
                let test = format!("{comparison} {HALFWAY}");
                segment_ids.push(create_segment(&node.base, name, &test).await);
            }
        }
        let mut seeds: Vec<usize> = std::mem::take(&mut unacked);
        seeds.extend(next_seed..next_seed + 300);
        next_seed += 300;
        let lanes: Vec<Vec<usize>> = (0..4)
            .map(|lane| seeds.iter().copied().skip(lane).step_by(4).collect())
            .collect();
        let senders = futures_util::future::join_all(lanes.into_iter().map(|lane| {
            let base = node.base.clone();
            async move { send_all(&base, lane).await }
        }));
        let killer = async {
            tokio::time::sleep(Duration::from_millis(150 + 97 * round)).await;
            node.child.kill().expect("kill -9");
        };
        let (failed, ()) = tokio::join!(senders, killer);
        let _ = node.child.wait();
        unacked = failed.into_iter().flatten().collect();
        interrupted += unacked.len();
    }
    assert!(interrupted > 0, "the kills landed during ingestion");
    let node = start(temp.path()).await;
    let still_failing = send_all(&node.base, unacked).await;
    assert!(
        still_failing.is_empty(),
        "a healthy node acknowledges every batch"
    );

    let mut expected: BTreeMap<usize, u64> = BTreeMap::new();
    for seed in 0..next_seed {
        for user in batch(seed).1 {
            *expected.entry(user).or_default() += 1;
        }
    }
    let mut expected_members = vec![Vec::new(), Vec::new()];
    for (user, count) in expected {
        let answer = call(
            "GET",
            &format!("{}/api/v1/users?clientRefId=crash-{user}", node.base),
            None,
        )
        .await;
        assert_eq!(
            answer.body["activities"]["page_viewed"]["count"].as_u64(),
            Some(count),
            "user crash-{user}"
        );
        let id = answer.body["user_id"].as_u64().expect("user_id");
        expected_members[usize::from(count < HALFWAY)].push(id);
    }
    // Every user ends with 300 views (75 a round): each entered `reached` and left
    // `below` in the middle of the kills.
    assert_eq!(
        expected_members[0].len(),
        USERS,
        "everyone reached {HALFWAY}"
    );
    for (segment, mut expected) in segment_ids.into_iter().zip(expected_members) {
        expected.sort_unstable();
        assert_eq!(
            members(&node.base, segment).await,
            json!(expected),
            "members of segment {segment}"
        );
    }
    let mut child = node.child;
    child.kill().expect("stop");
    let _ = child.wait();
}

/// Sends identify calls in order until one is not acknowledged; returns the rest.
async fn identify_all(base: &str, pairs: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(5))
        .finish();
    for (done, (a, b)) in pairs.iter().enumerate() {
        let body = json!({"identities": [
            {"id_type": "cookie", "id": format!("merge-{a}")},
            {"id_type": "cookie", "id": format!("merge-{b}")}
        ]})
        .to_string();
        let acked = client
            .post(format!("{base}/api/v1/identify"))
            .send_body(body)
            .await
            .is_ok_and(|r| r.status().as_u16() == 200);
        if !acked {
            return pairs[done..].to_vec();
        }
    }
    Vec::new()
}

#[actix_rt::test]
async fn killed_nodes_leave_each_merge_whole_or_undone() {
    const USERS: usize = 64;
    let temp = tempfile::tempdir().expect("temp dir");
    let node = start(temp.path()).await;
    let events: Vec<_> = (0..USERS)
        .map(|user| json!({"id": format!("merge-{user}"), "id_type": "cookie", "payload": {"activity_type": "page_viewed"}}))
        .collect();
    let body = serde_json::Value::Array(events).to_string();
    let created = call("POST", &format!("{}/api/v1/events", node.base), Some(&body)).await;
    assert_eq!(created.status, 202);
    let mut child = node.child;
    child.kill().expect("kill -9");
    let _ = child.wait();

    // A binary tree of merges: pairs, then pairs of pairs, so absorbed users carry
    // earlier merges (chains).
    let mut pending: Vec<(usize, usize)> = Vec::new();
    let mut step = 1;
    while step < USERS {
        pending.extend((0..USERS).step_by(2 * step).map(|a| (a + step, a)));
        step *= 2;
    }
    let mut interrupted = 0;
    for round in 0..4u64 {
        let mut node = start(temp.path()).await;
        let calls = identify_all(&node.base, std::mem::take(&mut pending));
        let killer = async {
            tokio::time::sleep(Duration::from_millis(40 + 53 * round)).await;
            node.child.kill().expect("kill -9");
        };
        let (left, ()) = tokio::join!(calls, killer);
        let _ = node.child.wait();
        interrupted += usize::from(!left.is_empty());
        pending = left;
    }
    assert!(interrupted > 0, "the kills landed during merges");
    let node = start(temp.path()).await;
    assert!(identify_all(&node.base, pending).await.is_empty());

    let mut users = std::collections::BTreeSet::new();
    for user in 0..USERS {
        let answer = call(
            "GET",
            &format!("{}/api/v1/users?clientRefId=merge-{user}", node.base),
            None,
        )
        .await;
        assert_eq!(answer.status, 200);
        users.insert(answer.body["user_id"].as_u64().expect("user_id"));
        if user == 0 {
            assert_eq!(
                answer.body["activities"]["page_viewed"]["count"].as_u64(),
                Some(USERS as u64),
                "every user's event, once"
            );
            assert_eq!(
                answer.body["identities"].as_array().map(Vec::len),
                Some(USERS)
            );
        }
    }
    assert_eq!(users.len(), 1, "all merged into one user");
    let mut child = node.child;
    child.kill().expect("stop");
    let _ = child.wait();
}

async fn post(base: &str, path: &str, body: serde_json::Value) -> crate::common::client::Answer {
    call("POST", &format!("{base}{path}"), Some(&body.to_string())).await
}

async fn user(base: &str, cookie: &str) -> serde_json::Value {
    let url = format!("{base}/api/v1/users?clientRefId={cookie}");
    call("GET", &url, None).await.body
}

/// A data dir whose node, on the dev clock, saves no snapshot (and flushes sled at no
/// checkpoint) in a test's lifetime.
struct Unsnapshotted {
    data: std::path::PathBuf,
    flags: Vec<String>,
}

impl Unsnapshotted {
    fn new(temp: &std::path::Path) -> Unsnapshotted {
        let config = temp.join("uss.toml");
        std::fs::write(&config, "[storage]\nsnapshot_interval_ms = 3600000\n").expect("config");
        let config = config.to_str().expect("utf-8 path").to_owned();
        Unsnapshotted {
            data: temp.join("data"),
            flags: vec!["--dev-clock".into(), "--config".into(), config],
        }
    }

    async fn start(&self) -> Node {
        self.start_logging(None).await
    }

    async fn start_logging(&self, log: Option<&std::path::Path>) -> Node {
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        start_logging(&self.data, &flags, log).await
    }
}

#[actix_rt::test]
async fn a_node_killed_before_any_snapshot_replays_its_journal() {
    let temp = tempfile::tempdir().expect("temp dir");
    // No background snapshot in this test's lifetime: the events live only in the journal.
    let dir = Unsnapshotted::new(temp.path());
    let node = dir.start().await;
    let base = node.base.clone();
    assert_eq!(
        post(
            &base,
            "/api/v1/admin/clock",
            json!({"now": "2026-11-01T00:00:00Z"})
        )
        .await
        .status,
        200
    );
    let week = json!({"name": "weekly", "rule": "count(page_viewed, 7d) >= 2"});
    let week = post(&base, "/api/v1/segments", week).await.body["id"]
        .as_u64()
        .expect("id");
    let day = json!({"name": "daily", "rule": "count(clicked, 1d) >= 1"});
    let day = post(&base, "/api/v1/segments", day).await.body["id"]
        .as_u64()
        .expect("id");
    let view = |cookie: &str, id: &str| {
        json!({"id": cookie, "id_type": "cookie", "event_id": id,
        "payload": {"activity_type": "page_viewed"}})
    };
    let click = json!({"id": "j2", "id_type": "cookie", "payload": {"activity_type": "clicked"}});
    // A new user's first step is saved whole; later ones are only journaled.
    let first = json!([view("j1", "a"), view("j2", "c")]);
    assert_eq!(post(&base, "/api/v1/events", first).await.status, 202);
    let later = json!([view("j1", "b"), view("j1", "b"), click]);
    assert_eq!(post(&base, "/api/v1/events", later).await.status, 202);
    assert_eq!(user(&base, "j2").await["segments"], json!([day]));

    // A day later the click is out of its window: the flip comes from a timer that no
    // snapshot has written yet.
    assert_eq!(
        post(
            &base,
            "/api/v1/admin/clock",
            json!({"now": "2026-11-02T01:00:00Z"})
        )
        .await
        .status,
        200
    );
    assert_eq!(user(&base, "j2").await["segments"], json!([]));

    let mut killed = node.child;
    killed.kill().expect("kill -9");
    let _ = killed.wait();
    let node = dir.start().await;
    let base = node.base.clone();
    let j1 = user(&base, "j1").await;
    assert_eq!(j1["activities"]["page_viewed"]["count"], 2, "{j1}");
    assert_eq!(j1["segments"], json!([week]));
    assert_eq!(members(&base, week).await, json!([j1["user_id"]]));
    assert_eq!(
        user(&base, "j2").await["activities"]["page_viewed"]["count"],
        1
    );
    // The replay kept the event id window: a repeat is not counted again.
    assert_eq!(
        post(&base, "/api/v1/events", json!([view("j1", "a")]))
            .await
            .status,
        202
    );
    assert_eq!(
        user(&base, "j1").await["activities"]["page_viewed"]["count"],
        2
    );
    // And the replayed user's timer fires: a week on, j1 leaves the weekly segment.
    assert_eq!(
        post(
            &base,
            "/api/v1/admin/clock",
            json!({"now": "2026-11-09T00:00:00Z"})
        )
        .await
        .status,
        200
    );
    assert_eq!(user(&base, "j1").await["segments"], json!([]));
    let mut child = node.child;
    child.kill().expect("stop");
    let _ = child.wait();
}

#[actix_rt::test]
async fn a_node_killed_before_sled_is_flushed_gives_new_users_back_their_identities() {
    let temp = tempfile::tempdir().expect("temp dir");
    // No checkpoint in this test's lifetime: after the segment is created, sled is never
    // flushed, and the new users' identities are in sled's memory only.
    let dir = Unsnapshotted::new(temp.path());
    let node = dir.start().await;
    let base = node.base.clone();
    let viewers = json!({"name": "viewers", "rule": "count(page_viewed, 7d) >= 2"});
    let viewers = post(&base, "/api/v1/segments", viewers).await.body["id"]
        .as_u64()
        .expect("id");
    // Its backfill ends with a flush: wait for it, so that none comes after the events.
    wait_ready(&base, viewers).await;
    let view = |cookie: &str| json!({"id": cookie, "id_type": "cookie", "payload": {"activity_type": "page_viewed"}});
    let events = json!([view("n1"), view("n2"), view("n2")]);
    assert_eq!(post(&base, "/api/v1/events", events).await.status, 202);
    let before = user(&base, "n2").await;
    assert_eq!(before["segments"], json!([viewers]), "{before}");

    let mut killed = node.child;
    killed.kill().expect("kill -9");
    let _ = killed.wait();
    let node = dir.start().await;
    let base = node.base.clone();
    let after = user(&base, "n2").await;
    assert_eq!(after["user_id"], before["user_id"], "{after}");
    assert_eq!(after["activities"]["page_viewed"]["count"], 2, "{after}");
    assert_eq!(after["segments"], json!([viewers]));
    // The identity leads to the same user again: its next event is counted there.
    assert_eq!(
        post(&base, "/api/v1/events", json!([view("n1")]))
            .await
            .status,
        202
    );
    let n1 = user(&base, "n1").await;
    assert_eq!(n1["activities"]["page_viewed"]["count"], 2, "{n1}");
    let mut expected = vec![n1["user_id"].clone(), after["user_id"].clone()];
    expected.sort_by_key(|id| id.as_u64());
    assert_eq!(members(&base, viewers).await, json!(expected));
    let mut child = node.child;
    child.kill().expect("stop");
    let _ = child.wait();
}

/// Returns the members `segment` lists, ascending.
async fn members(base: &str, segment: u64) -> serde_json::Value {
    let url = format!("{base}/api/v1/segments/{segment}/members");
    call("GET", &url, None).await.body["members"].clone()
}

/// Waits until `segment`'s backfill is done.
async fn wait_ready(base: &str, segment: u64) {
    let url = format!("{base}/api/v1/segments/{segment}");
    let ready = wait_until_for_test(Duration::from_secs(10), || async {
        call("GET", &url, None).await.body["status"] == "ready"
    })
    .await;
    assert!(ready, "backfill of {segment} done");
}

#[actix_rt::test]
async fn a_node_killed_after_its_users_are_saved_keeps_the_membership_their_events_made() {
    const VIEWERS: usize = 20;
    let temp = tempfile::tempdir().expect("temp dir");
    // No background snapshot: only the backfill below saves the users.
    let dir = Unsnapshotted::new(temp.path());
    let node = dir.start().await;
    let base = node.base.clone();
    let reached = create_segment(&base, "reached", ">= 2").await;
    let below = create_segment(&base, "below", "< 2").await;
    for segment in [reached, below] {
        wait_ready(&base, segment).await;
    }
    // A new user's first step is saved whole; its second is only journaled. Neither is
    // flushed to sled's files.
    let views = json!((0..VIEWERS)
        .map(|n| json!({"id": format!("v{n}"), "id_type": "cookie",
                        "payload": {"activity_type": "page_viewed"}}))
        .collect::<Vec<_>>());
    for _ in 0..2 {
        assert_eq!(
            post(&base, "/api/v1/events", views.clone()).await.status,
            202
        );
    }
    let mut ids = Vec::new();
    for n in 0..VIEWERS {
        ids.push(user(&base, &format!("v{n}")).await["user_id"].clone());
    }
    ids.sort_by_key(|id| id.as_u64());
    assert_eq!(members(&base, reached).await, json!(ids));
    // Every user enters this one: its backfill saves each whole and marks their journal
    // entries as wholly in sled, so a start replays none of them. Sled alone must then
    // have the membership their events made.
    let everyone = create_segment(&base, "everyone", ">= 0").await;
    wait_ready(&base, everyone).await;

    let mut killed = node.child;
    killed.kill().expect("kill -9");
    let _ = killed.wait();
    assert_eq!(entries_to_replay(&dir.data), Vec::<u64>::new());
    let node = dir.start().await;
    assert_eq!(members(&node.base, reached).await, json!(ids));
    assert_eq!(members(&node.base, below).await, json!([]));
    assert_eq!(members(&node.base, everyone).await, json!(ids));
    let mut child = node.child;
    child.kill().expect("stop");
    let _ = child.wait();
}

/// Returns whether every journal file of `data` is zeros (readable while a node runs).
fn journal_is_blank(data: &std::path::Path) -> bool {
    let files = std::fs::read_dir(data.join("journal")).expect("journal dir");
    files
        .map(|file| file.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "journal"))
        .all(|path| std::fs::read(path).expect("read").iter().all(|&b| b == 0))
}

/// Returns the sequence numbers of the journal entries of the stopped node's `data` that
/// a start would replay: those at or after the mark of what sled wholly holds.
fn entries_to_replay(data: &std::path::Path) -> Vec<u64> {
    let store = uss::storage::Store::open(data, 1 << 20).expect("open the store");
    let applied = store.journal_applied().expect("journal mark");
    let entries = store
        .journal::<serde::de::IgnoredAny>()
        .expect("journal entries");
    entries
        .into_iter()
        .map(|(seq, _)| seq)
        .filter(|seq| *seq >= applied)
        .collect()
}

#[actix_rt::test]
async fn a_clean_stop_saves_the_users_its_http_workers_ran() {
    let temp = tempfile::tempdir().expect("temp dir");
    // No snapshot but the one at the stop: what the events changed is only journaled.
    let dir = Unsnapshotted::new(temp.path());
    let log = temp.path().join("node.log");
    let node = dir.start_logging(Some(&log)).await;
    let base = node.base.clone();
    let view = |cookie: &str| json!({"id": cookie, "id_type": "cookie", "payload": {"activity_type": "page_viewed"}});
    let cookies: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
    for _ in 0..3 {
        for cookie in &cookies {
            assert_eq!(
                post(&base, "/api/v1/events", view(cookie)).await.status,
                202
            );
        }
    }
    assert!(
        !journal_is_blank(&dir.data),
        "the later events are journaled"
    );

    let mut stopped = node.child;
    let terminated = Command::new("kill")
        .args(["-TERM", &stopped.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(terminated.success());
    let status = stopped.wait().expect("node exits");
    assert!(status.success(), "a clean stop: {status}");
    // The users ran on the HTTP workers' threads, which stop with the HTTP server: they
    // were saved before, while their actors were up (an actor started again after the
    // stop would have read its events back from the journal), and sled holds every entry.
    let log = std::fs::read_to_string(&log).expect("log");
    assert!(log.contains("listening on"), "the log was kept: {log}");
    assert!(!log.contains("user replayed from the journal"), "{log}");
    assert_eq!(entries_to_replay(&dir.data), Vec::<u64>::new());

    let node = dir.start().await;
    for cookie in &cookies {
        let seen = user(&node.base, cookie).await;
        assert_eq!(seen["activities"]["page_viewed"]["count"], 3, "{seen}");
    }
    let mut child = node.child;
    child.kill().expect("stop");
    let _ = child.wait();
}
