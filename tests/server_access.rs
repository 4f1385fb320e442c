//! Access control against the real server: keys and roles, 401 vs 403 vs 404/405,
//! the WebSocket `?key=`, per-key rate limits, and CORS.

use std::time::Duration;

use uss::config::{ApiKey, Role};

use crate::common::client::Socket;
use crate::common::server::{test_config_for_test, TestServer};

const INGEST: &str = "k_ingest_0123456789";
const READ: &str = "k_read_0123456789";
const ADMIN: &str = "k_admin_0123456789";
const LIMITED: &str = "k_limited_0123456789";

fn server_with_keys() -> (tempfile::TempDir, TestServer) {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut config = test_config_for_test(temp.path());
    let key = |name: &str, key: &str, role, rate_per_s| ApiKey {
        name: name.into(),
        key: key.into(),
        role,
        rate_per_s,
    };
    config.auth.keys = vec![
        key("site", INGEST, Role::Ingest, None),
        key("crm", READ, Role::Read, None),
        key("ops", ADMIN, Role::Admin, None),
        key("slow", LIMITED, Role::Read, Some(1.0)),
    ];
    config.auth.cors_origins = vec!["https://shop.example.com".into()];
    let server = TestServer::start_with(config);
    (temp, server)
}

async fn status(
    method: &str,
    url: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let client = awc::Client::new();
    let mut request = client
        .request(method.parse().expect("method"), url)
        .insert_header(("content-type", "application/json"));
    if let Some(key) = key {
        request = request.insert_header(("authorization", format!("Bearer {key}")));
    }
    let mut response = match body {
        Some(body) => request.send_body(body.to_owned()).await,
        None => request.send().await,
    }
    .expect("answer");
    let bytes = response.body().await.expect("body");
    (
        response.status().as_u16(),
        serde_json::from_slice(&bytes).unwrap_or_default(),
    )
}

/// `(method, path, key, body, expected status)`.
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    u16,
);

#[actix_rt::test]
async fn roles_open_exactly_their_routes() {
    let (_temp, server) = server_with_keys();
    let event = r#"{"id": "c1", "id_type": "cookie", "payload": {"activity_type": "page_viewed"}}"#;
    let segment = r#"{"name": "s", "rule": "count(page_viewed) >= 1"}"#;
    let cases: Vec<Case> = vec![
        ("POST", "/api/v1/events", None, Some(event), 401),
        (
            "POST",
            "/api/v1/events",
            Some("k_wrong_0123456789"),
            Some(event),
            401,
        ),
        ("GET", "/api/v1/nope", None, None, 401),
        ("POST", "/api/v1/events", Some(READ), Some(event), 403),
        ("POST", "/api/v1/events", Some(INGEST), Some(event), 202),
        ("GET", "/api/v1/segments", Some(INGEST), None, 403),
        ("GET", "/api/v1/segments", Some(READ), None, 200),
        ("POST", "/api/v1/segments", Some(READ), Some(segment), 403),
        ("POST", "/api/v1/segments", Some(ADMIN), Some(segment), 201),
        (
            "POST",
            "/api/v1/segments/validate",
            Some(READ),
            Some(r#"{"rule": "count(a) >= 1"}"#),
            200,
        ),
        (
            "POST",
            "/api/v1/segments/validate",
            Some(INGEST),
            Some(r#"{"rule": "count(a) >= 1"}"#),
            403,
        ),
        ("DELETE", "/api/v1/segments/1", Some(READ), None, 403),
        ("GET", "/api/v1/nope", Some(INGEST), None, 404),
        ("PATCH", "/api/v1/segments", Some(INGEST), None, 405),
        ("GET", "/healthz", None, None, 200),
        ("GET", "/readyz", None, None, 200),
        ("GET", "/metrics", None, None, 200),
    ];
    for (method, path, key, body, want) in cases {
        let (got, answer) = status(method, &server.url(path), key, body).await;
        assert_eq!(got, want, "{method} {path} with {key:?}: {answer}");
        if want == 401 || want == 403 {
            let code = if want == 401 {
                "unauthorized"
            } else {
                "forbidden"
            };
            assert_eq!(answer["error"]["code"], code);
        }
    }
}

#[actix_rt::test]
async fn websockets_take_the_key_as_a_query_parameter() {
    let (_temp, server) = server_with_keys();
    let refused = awc::Client::new()
        .ws(server.ws_url("/api/v1/notifications/ws"))
        .connect()
        .await;
    assert!(refused.is_err(), "no key, no socket");
    let mut events =
        Socket::connect_for_test(&server.ws_url(&format!("/api/v1/events/ws?key={INGEST}"))).await;
    events
        .send_for_test(
            r#"{"id": "w1", "id_type": "cookie", "payload": {"activity_type": "page_viewed"}}"#,
        )
        .await;
    assert_eq!(
        events.next_json_for_test(Duration::from_secs(5)).await,
        Some(serde_json::json!({"ack": 1}))
    );
    let _reader =
        Socket::connect_for_test(&server.ws_url(&format!("/api/v1/notifications/ws?key={READ}")))
            .await;
}

#[actix_rt::test]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let (_temp, server) = server_with_keys();
    let client = awc::Client::new();
    let mut limited = None;
    for _ in 0..5 {
        let response = client
            .get(server.url("/api/v1/segments"))
            .insert_header(("authorization", format!("Bearer {LIMITED}")))
            .send()
            .await
            .unwrap();
        if response.status().as_u16() == 429 {
            limited = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            break;
        }
    }
    assert_eq!(limited.as_deref(), Some("1"));
}

#[actix_rt::test]
async fn cors_answers_preflights_for_allowed_origins_only() {
    let (_temp, server) = server_with_keys();
    let client = awc::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(awc::http::Method::OPTIONS, server.url("/api/v1/events"))
            .insert_header(("origin", origin))
            .insert_header(("access-control-request-method", "POST"))
            .insert_header((
                "access-control-request-headers",
                "authorization, content-type",
            ))
            .send()
    };
    let allowed = preflight("https://shop.example.com").await.unwrap();
    assert_eq!(allowed.status().as_u16(), 204);
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .unwrap(),
        "https://shop.example.com"
    );
    assert!(allowed
        .headers()
        .get("access-control-allow-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("Authorization"));
    let other = preflight("https://evil.example.com").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let read = client
        .get(server.url("/api/v1/segments"))
        .insert_header(("origin", "https://shop.example.com"))
        .insert_header(("authorization", format!("Bearer {READ}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        read.headers().get("access-control-allow-origin").unwrap(),
        "https://shop.example.com"
    );
}
