//! Notification fan-out: this node subscribes to every other node's notifications (its
//! own users' changes only, asked for with `x-uss-forwarded-by`) and publishes them to
//! its local subscribers, so a subscriber on any node sees every node's changes. One
//! connection per peer keeps each user's changes in order. A lost connection is made
//! again, with a growing pause, for as long as the node runs.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tracing::{info, warn};

use crate::actors::{Hub, Notification};
use crate::domain::Timestamp;

use super::forward::FORWARDED_BY;
use super::Cluster;

/// Largest notification frame accepted from a peer.
const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Starts one relay per other node on the current actix system.
pub fn start(cluster: Arc<Cluster>, hub: Hub) {
    for position in cluster.others() {
        let cluster = Arc::clone(&cluster);
        let hub = hub.clone();
        actix_rt::spawn(async move { relay(&cluster, position, &hub).await });
    }
}

async fn relay(cluster: &Cluster, position: usize, hub: &Hub) {
    let peer = cluster.node(position).clone();
    let me = cluster.node(cluster.me()).id.clone();
    let url = format!("ws://{}/api/v1/notifications/ws", peer.addr);
    let mut pause = Duration::from_millis(100);
    loop {
        let mut request = awc::Client::new()
            .ws(url.as_str())
            .max_frame_size(MAX_FRAME_BYTES)
            .set_header(FORWARDED_BY, me.as_str());
        if let Some(credentials) = cluster.credentials() {
            request =
                request.set_header(actix_web::http::header::AUTHORIZATION, credentials.clone());
        }
        match request.connect().await {
            Ok((_, mut socket)) => {
                info!(node = %peer.id, "receiving the node's notifications");
                pause = Duration::from_millis(100);
                while let Some(frame) = socket.next().await {
                    match frame {
                        Ok(awc::ws::Frame::Text(text)) => match parse(&text) {
                            Some(notification) => hub.publish(notification),
                            None => {
                                warn!(node = %peer.id, "ignored a notification that does not parse")
                            }
                        },
                        Ok(awc::ws::Frame::Ping(bytes)) => {
                            if socket.send(awc::ws::Message::Pong(bytes)).await.is_err() {
                                break;
                            }
                        }
                        Ok(awc::ws::Frame::Close(_)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                warn!(node = %peer.id, "lost the node's notifications; reconnecting");
            }
            Err(_) => pause = (pause * 2).min(Duration::from_secs(2)),
        }
        tokio::time::sleep(pause).await;
    }
}

/// Reads a notification as another node pushed it (API.md's message).
fn parse(text: &[u8]) -> Option<Notification> {
    let body: Value = serde_json::from_slice(text).ok()?;
    let ids = |field: &str| -> Option<Vec<u64>> {
        body.get(field)?
            .as_array()?
            .iter()
            .map(Value::as_u64)
            .collect()
    };
    Some(Notification {
        user_id: body.get("user_id")?.as_u64()?,
        in_segments: ids("in_segments")?,
        out_segments: ids("out_segments")?,
        at: Timestamp::parse(body.get("at")?.as_str()?).ok()?,
        merged_into: body.get("merged_into").and_then(Value::as_u64),
        relayed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pushed_notification_reads_back() {
        let text = br#"{"user_id": 7, "in_segments": [1], "out_segments": [], "at": "2026-11-01T10:00:00.000Z", "merged_into": 3}"#;
        let notification = parse(text).unwrap();
        assert_eq!(notification.user_id, 7);
        assert_eq!(notification.in_segments, [1]);
        assert_eq!(notification.merged_into, Some(3));
        assert!(notification.relayed);
        assert!(parse(b"{\"user_id\": \"x\"}").is_none());
    }
}
