//! Merges across nodes (issue #7): users that live on different nodes become one
//! through an event's `identities` as through identify; a merge the survivor refuses
//! (identity limits) gives the other node's user back whole; a transfer cut short after
//! a node gave a user up is finished by that node; and a chain of merges over three
//! nodes redirects every absorbed user to the final survivor.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::api::{
    identify_for_test, post_events_for_test, set_clock_for_test, user_for_test,
};
use crate::common::client::{wait_until_for_test, Endpoint};
use crate::common::cluster::TestCluster;

const NOW: &str = "2026-11-01T00:00:00Z";

/// A cookie user's page view, with other identities of the same person.
fn view(cookie: &str, identities: Value) -> Value {
    json!({"id": cookie, "id_type": "cookie", "created_at": "2026-10-31T00:00:00",
           "identities": identities, "payload": {"activity_type": "page_viewed"}})
}

/// Returns the page views counted by the whole cluster, the same through every node.
async fn views_counted(cluster: &TestCluster) -> u64 {
    let activities = cluster.same_everywhere("/api/v1/activities").await;
    activities.body["activities"][0]["count"]
        .as_u64()
        .expect("page views counted")
}

/// Asserts that every node answers `301` for `absorbed`, naming `survivor`.
async fn redirected(cluster: &TestCluster, absorbed: u64, survivor: u64) {
    let gone = cluster
        .same_everywhere(&format!("/api/v1/users/{absorbed}"))
        .await;
    assert_eq!(gone.status, 301);
    assert_eq!(
        gone.body,
        json!({"user_id": absorbed, "merged_into": survivor})
    );
}

/// Sets the clock through every node.
async fn clock(cluster: &TestCluster) {
    for i in 0..cluster.len() {
        set_clock_for_test(cluster.node(i), NOW).await;
    }
}

/// Creates users `{prefix}-k` (one page view each, with `identities(k)`) until `count`
/// of them live on different nodes; returns their cookies and ids, smallest id first.
async fn users_on_distinct_nodes(
    cluster: &TestCluster,
    prefix: &str,
    count: usize,
    identities: impl Fn(usize) -> Value,
) -> Vec<(String, u64)> {
    let mut found: Vec<(String, u64, String)> = Vec::new();
    for k in 0..60 {
        let cookie = format!("{prefix}-{k}");
        post_events_for_test(cluster.node(k % 3), view(&cookie, identities(k))).await;
        let user = user_for_test(cluster.node(0), "cookie", &cookie).await["user_id"]
            .as_u64()
            .expect("user id");
        let owner = cluster.owner(user).await;
        if !found.iter().any(|(_, _, o)| *o == owner) {
            found.push((cookie, user, owner));
        }
        if found.len() == count {
            let mut users: Vec<(String, u64)> = found.into_iter().map(|(c, u, _)| (c, u)).collect();
            users.sort_by_key(|(_, user)| *user);
            return users;
        }
    }
    panic!("60 users on fewer than {count} nodes");
}

/// Two users on two nodes, smallest id first.
async fn two_users_on_two_nodes(
    cluster: &TestCluster,
    prefix: &str,
    identities: impl Fn(usize) -> Value,
) -> [(String, u64); 2] {
    let users = users_on_distinct_nodes(cluster, prefix, 2, identities).await;
    [users[0].clone(), users[1].clone()]
}

#[actix_rt::test]
async fn an_event_listing_an_identity_of_a_user_on_another_node_merges_them() {
    let cluster = TestCluster::start(3).await;
    clock(&cluster).await;
    let [(small, survivor), (large, absorbed)] =
        two_users_on_two_nodes(&cluster, "ev", |_| json!({})).await;
    let counted = views_counted(&cluster).await;
    // The smaller user takes an email (its node claims it where the email resolves),
    // then an event of the larger user lists that email: one person.
    post_events_for_test(cluster.node(1), view(&small, json!({"email": "one@x.org"}))).await;
    post_events_for_test(cluster.node(2), view(&large, json!({"email": "one@x.org"}))).await;
    for cookie in [&small, &large] {
        let user = cluster
            .same_everywhere(&format!("/api/v1/users?clientRefId={cookie}"))
            .await;
        assert_eq!(user.body["user_id"], json!(survivor), "{cookie}");
        assert_eq!(user.body["activities"]["page_viewed"]["count"], json!(4));
    }
    let by_email = cluster
        .same_everywhere("/api/v1/users?clientRefId=one@x.org&idType=email")
        .await;
    assert_eq!(by_email.body["user_id"], json!(survivor));
    redirected(&cluster, absorbed, survivor).await;
    let merges = cluster
        .same_everywhere(&format!("/api/v1/users/{survivor}/merges"))
        .await;
    assert!(
        merges.body.to_string().contains(&absorbed.to_string()),
        "{}",
        merges.body
    );
    // Later events of the absorbed cookie land on the survivor, on its node.
    post_events_for_test(cluster.node(0), view(&large, json!({}))).await;
    let user = cluster
        .same_everywhere(&format!("/api/v1/users/{survivor}"))
        .await;
    assert_eq!(user.body["activities"]["page_viewed"]["count"], json!(5));
    assert_eq!(
        views_counted(&cluster).await,
        counted + 3,
        "a merge moves totals"
    );
}

#[actix_rt::test]
async fn a_merge_the_survivor_refuses_gives_the_other_nodes_user_back_whole() {
    let cluster = TestCluster::start(3).await;
    clock(&cluster).await;
    // Each user holds a `user_id` identity, and a user may hold one: merging is refused.
    let [(small, survivor), (large, other)] = two_users_on_two_nodes(
        &cluster,
        "lim",
        |k| json!({"user_id": format!("account-{k}")}),
    )
    .await;
    let before = cluster
        .same_everywhere(&format!("/api/v1/users/{other}"))
        .await;
    assert_eq!(before.status, 200);
    let counted = views_counted(&cluster).await;
    let answer = identify_for_test(
        cluster.node(0),
        &[("cookie", small.as_str()), ("cookie", large.as_str())],
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["user_id"], json!(survivor));
    assert_eq!(answer.body["merged"], json!([]));
    assert_eq!(answer.body["refused"][0]["reason"], json!("limit_reached"));
    let after = cluster
        .same_everywhere(&format!("/api/v1/users/{other}"))
        .await;
    assert_eq!(
        (after.status, &after.body),
        (200, &before.body),
        "given back whole"
    );
    let by_cookie = cluster
        .same_everywhere(&format!("/api/v1/users?clientRefId={large}"))
        .await;
    assert_eq!(by_cookie.body["user_id"], json!(other));
    assert_eq!(views_counted(&cluster).await, counted);
    post_events_for_test(cluster.node(1), view(&large, json!({}))).await;
    let later = cluster
        .same_everywhere(&format!("/api/v1/users/{other}"))
        .await;
    assert_eq!(later.body["activities"]["page_viewed"]["count"], json!(2));
}

#[actix_rt::test]
async fn a_user_given_up_without_its_merge_is_finished_by_its_node() {
    let cluster = TestCluster::start(3).await;
    clock(&cluster).await;
    let [(_, survivor), (large, given)] =
        two_users_on_two_nodes(&cluster, "cut", |_| json!({})).await;
    let counted = views_counted(&cluster).await;
    // As if the survivor's node asked and then crashed before merging: the giving node
    // holds the user in its outbox and finishes the merge itself.
    let owner = cluster.owner(given).await;
    let giver = (0..3)
        .find(|i| cluster.node(*i).id == owner)
        .expect("the owner is a node");
    let url = cluster
        .node(giver)
        .url(&format!("/internal/v1/users/{given}/surrender"));
    let status = awc::Client::new()
        .post(url)
        .insert_header(("x-uss-forwarded-by", "test"))
        .send_json(&json!({"survivor": survivor}))
        .await
        .expect("surrender answered")
        .status();
    assert_eq!(status, 200);
    let finished = wait_until_for_test(Duration::from_secs(20), || async {
        cluster
            .call(0, "GET", &format!("/api/v1/users/{given}"), None)
            .await
            .status
            == 301
            && cluster
                .call(1, "GET", &format!("/api/v1/users/{survivor}/merges"), None)
                .await
                .body
                .to_string()
                .contains(&given.to_string())
    })
    .await;
    assert!(finished, "the giving node finished the merge");
    let user = cluster
        .same_everywhere(&format!("/api/v1/users?clientRefId={large}"))
        .await;
    assert_eq!(user.body["user_id"], json!(survivor));
    assert_eq!(user.body["activities"]["page_viewed"]["count"], json!(2));
    assert_eq!(
        views_counted(&cluster).await,
        counted,
        "totals moved, none lost"
    );
}

#[actix_rt::test]
async fn a_chain_of_merges_across_three_nodes_ends_at_the_final_survivor() {
    let cluster = TestCluster::start(3).await;
    clock(&cluster).await;
    let users = users_on_distinct_nodes(&cluster, "chain", 3, |_| json!({})).await;
    let [(first, survivor), (middle, between), (last, earliest)] =
        [users[0].clone(), users[1].clone(), users[2].clone()];
    let pair = |a: &str, b: &str| [("cookie", a.to_owned()), ("cookie", b.to_owned())];
    for (i, (a, b)) in [(&middle, &last), (&first, &middle)]
        .into_iter()
        .enumerate()
    {
        let listed = pair(a, b);
        let listed: Vec<(&str, &str)> = listed.iter().map(|(t, v)| (*t, v.as_str())).collect();
        let answer = identify_for_test(cluster.node(i), &listed).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    for absorbed in [between, earliest] {
        redirected(&cluster, absorbed, survivor).await;
    }
    let user = cluster
        .same_everywhere(&format!("/api/v1/users?clientRefId={last}"))
        .await;
    assert_eq!(user.body["user_id"], json!(survivor));
    assert_eq!(user.body["activities"]["page_viewed"]["count"], json!(3));
    post_events_for_test(cluster.node(2), view(&last, json!({}))).await;
    let user = cluster
        .same_everywhere(&format!("/api/v1/users/{survivor}"))
        .await;
    assert_eq!(user.body["activities"]["page_viewed"]["count"], json!(4));
}
