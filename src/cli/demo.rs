//! `uss demo`: creates the original proof of concept's two segments and sends a short
//! story of events, so a newcomer watching `uss watch` sees users enter and leave.
//! With a node started with `--dev-clock` it also moves time forward, to show a flip
//! caused by time alone.

use anyhow::{anyhow, bail};
use serde_json::{json, Value};

const SEGMENTS: [(&str, &str); 2] = [
    (
        "area_x_no_purchase_30d",
        r#"region == "Area X" and count(product_purchased, 30d) == 0"#,
    ),
    (
        "mobile_10_views_inactive_7d",
        r#"device_type == "mobile" and count(page_viewed) >= 10 and last_seen() < now - 7d"#,
    ),
];

async fn call(
    client: &awc::Client,
    method: &str,
    url: String,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let request = match method {
        "POST" => client.post(&url),
        _ => client.get(&url),
    };
    let mut response = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    }
    .map_err(|e| anyhow!("{method} {url} failed: {e}"))?;
    let bytes = response.body().limit(1 << 20).await?;
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((response.status().as_u16(), value))
}

fn event(id: &str, activity: &str, region: &str, device: &str, at: &str) -> Value {
    json!({"id": id, "id_type": "cookie", "region": region, "device_type": device, "country": "US",
           "created_at": at, "payload": {"activity_type": activity}})
}

/// Runs the demo against the node at `base`.
pub async fn demo(base: &str) -> anyhow::Result<()> {
    let base = base.trim_end_matches('/');
    let client = awc::Client::new();
    let mut ids = Vec::new();
    for (name, rule) in SEGMENTS {
        let (status, body) = call(
            &client,
            "POST",
            format!("{base}/api/v1/segments"),
            Some(json!({"name": name, "rule": rule})),
        )
        .await?;
        match status {
            201 => ids.push(body["id"].clone()),
            409 => println!("segment {name} exists already"),
            _ => bail!("creating {name} failed: {status} {body}"),
        }
        println!("segment {name}: {rule}");
    }
    let (status, clock) = call(&client, "GET", format!("{base}/api/v1/admin/clock"), None).await?;
    let dev_clock = status == 200;
    let now = if dev_clock {
        clock["now"]
            .as_str()
            .unwrap_or("2026-11-01T00:00:00Z")
            .to_owned()
    } else {
        uss::clock::Clock::now(&uss::clock::SystemClock).to_rfc3339()
    };
    let now_ts = uss::domain::Timestamp::parse(&now).map_err(|e| anyhow!("{e}"))?;
    let at = |minutes_ago: i64| now_ts.add_millis(-minutes_ago * 60_000).to_rfc3339();

    println!("alice (Area X) browses: she enters area_x_no_purchase_30d");
    let mut story = vec![event(
        "demo-alice",
        "page_viewed",
        "Area X",
        "desktop",
        &at(30),
    )];
    println!("bob (mobile) views 10 pages: not yet inactive");
    story.extend((0..10).map(|i| event("demo-bob", "page_viewed", "Texas", "mobile", &at(20 - i))));
    let (status, body) = call(
        &client,
        "POST",
        format!("{base}/api/v1/events"),
        Some(Value::Array(story)),
    )
    .await?;
    println!("  POST /api/v1/events -> {status} {body}");

    if dev_clock {
        let later = now_ts.add_millis(8 * 24 * 3_600_000).to_rfc3339();
        println!("time passes 8 days (dev clock): bob enters mobile_10_views_inactive_7d with no new event");
        let (status, body) = call(
            &client,
            "POST",
            format!("{base}/api/v1/admin/clock"),
            Some(json!({"now": later})),
        )
        .await?;
        println!("  POST /api/v1/admin/clock -> {status} {body}");
    } else {
        println!("(start the node with --dev-clock to see bob enter a segment when 7 days pass)");
    }
    println!("alice buys: she leaves area_x_no_purchase_30d");
    let purchase = event("demo-alice", "product_purchased", "Area X", "desktop", &now);
    let (status, body) = call(
        &client,
        "POST",
        format!("{base}/api/v1/events"),
        Some(purchase),
    )
    .await?;
    println!("  POST /api/v1/events -> {status} {body}");
    for id in ids {
        let (_, count) = call(
            &client,
            "GET",
            format!("{base}/api/v1/segments/{id}/count"),
            None,
        )
        .await?;
        println!("segment {id} now has {} member(s)", count["count"]);
    }
    Ok(())
}
