//! Identity merges against a union-find model: random events (some listing a second
//! identity) and identify calls go to a real server whose users are passivated all the
//! time; then every identity must resolve to the model's survivor and every user's count
//! must equal the model's sum.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::common::client::call_for_test as call;
use crate::common::server::{test_config_for_test, TestServer};

/// Identities in one case: every third an email (never past the email limit), the rest
/// cookies.
const POOL: usize = 12;

#[derive(Clone, Debug)]
enum Op {
    /// A page view under identity `.0`, listing identity `.1` too when given.
    Event(usize, Option<usize>),
    /// `/identify` with these identities.
    Identify(Vec<usize>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..POOL, proptest::option::weighted(0.3, 0..POOL)).prop_map(|(p, l)| Op::Event(p, l)),
        1 => proptest::collection::vec(0..POOL, 2..4).prop_map(Op::Identify),
    ]
}

/// The model: users by creation order, a union-find over them, owners and counts.
#[derive(Default)]
struct Model {
    parent: Vec<usize>,
    count: Vec<u64>,
    owner: HashMap<usize, usize>,
}

impl Model {
    fn root(&self, mut user: usize) -> usize {
        while self.parent[user] != user {
            user = self.parent[user];
        }
        user
    }

    fn create(&mut self, identity: usize) -> usize {
        let user = self.parent.len();
        self.parent.push(user);
        self.count.push(0);
        self.owner.insert(identity, user);
        user
    }

    /// Links `identities` (the first created when `create_first`, or when nobody owns any).
    fn link(&mut self, identities: &[usize], create_first: bool) {
        let owned: Vec<usize> = identities
            .iter()
            .filter_map(|i| self.owner.get(i).map(|u| self.root(*u)))
            .collect();
        let first_unowned = !self.owner.contains_key(&identities[0]);
        if first_unowned && (create_first || owned.is_empty()) {
            self.create(identities[0]);
        }
        let mut roots: Vec<usize> = identities
            .iter()
            .filter_map(|i| self.owner.get(i).map(|u| self.root(*u)))
            .collect();
        roots.sort_unstable();
        roots.dedup();
        let survivor = *roots.first().expect("an owner");
        for root in roots {
            if root != survivor {
                self.parent[root] = survivor;
                self.count[survivor] += self.count[root];
            }
        }
        for identity in identities {
            self.owner.entry(*identity).or_insert(survivor);
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Event(primary, link) => {
                match link {
                    Some(other) => self.link(&[*primary, *other], true),
                    None if !self.owner.contains_key(primary) => {
                        self.create(*primary);
                    }
                    None => {}
                }
                let user = self.root(self.owner[primary]);
                self.count[user] += 1;
            }
            Op::Identify(identities) => self.link(identities, false),
        }
    }
}

fn identity(case: u64, i: usize) -> (&'static str, String) {
    let id_type = if i % 3 == 0 { "email" } else { "cookie" };
    (id_type, format!("case{case}-{i}"))
}

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let temp = Box::leak(Box::new(tempfile::tempdir().expect("temp dir")));
        let mut config = test_config_for_test(temp.path());
        config.actors.idle_timeout_secs = 0;
        config.actors.passivation_interval_ms = 5;
        TestServer::start_with(config)
    })
}

async fn run_case(case: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let server = server();
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        model.apply(op);
        let (path, body) = match op {
            Op::Event(primary, link) => {
                let (id_type, id) = identity(case, *primary);
                // An event_id, as a client that may resend it gives (each is sent once here).
                let mut event = json!({"id": id, "id_type": id_type, "event_id": format!("{case}-{step}"),
                    "created_at": "2026-10-31T00:00:00Z", "payload": {"activity_type": "page_viewed"}});
                if let Some(other) = link {
                    let (other_type, other_id) = identity(case, *other);
                    event["identities"] = json!({ other_type: other_id });
                }
                ("/api/v1/events", event.to_string())
            }
            Op::Identify(listed) => {
                let listed: Vec<Value> = listed
                    .iter()
                    .map(|i| {
                        let (id_type, id) = identity(case, *i);
                        json!({"id_type": id_type, "id": id})
                    })
                    .collect();
                (
                    "/api/v1/identify",
                    json!({ "identities": listed }).to_string(),
                )
            }
        };
        let answer = call("POST", &server.url(path), Some(&body)).await;
        prop_assert!(answer.status < 300, "{op:?}: {:?}", answer.body);
    }
    let mut server_of_root: BTreeMap<usize, u64> = BTreeMap::new();
    for (identity_index, user) in &model.owner {
        let (id_type, id) = identity(case, *identity_index);
        let url = server.url(&format!("/api/v1/users?clientRefId={id}&idType={id_type}"));
        let answer = call("GET", &url, None).await;
        prop_assert_eq!(answer.status, 200);
        let root = model.root(*user);
        let found = answer.body["user_id"].as_u64().expect("user_id");
        let expected = *server_of_root.entry(root).or_insert(found);
        prop_assert_eq!(
            found,
            expected,
            "{}:{} resolves to its group's user",
            id_type,
            id
        );
        let count = answer.body["activities"]["page_viewed"]["count"]
            .as_u64()
            .unwrap_or(0);
        prop_assert_eq!(count, model.count[root], "{}:{} counts", id_type, id);
    }
    let ids: Vec<u64> = server_of_root.values().copied().collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    prop_assert_eq!(
        &ids,
        &sorted,
        "distinct groups are distinct users, and each survivor is the group's smallest id"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn merges_match_a_union_find_model(ops in proptest::collection::vec(op(), 1..30)) {
        static CASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let case = CASE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        actix_rt::System::new().block_on(run_case(case, &ops))?;
    }
}
