//! `uss watch`: prints every notification as one JSON line on stdout.

use std::io::Write;

use anyhow::{anyhow, Context as _};
use awc::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};

/// Returns the WebSocket URL for `path` on the node at `base`.
pub fn ws_url(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = base
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .or_else(|| {
            base.strip_prefix("http://")
                .map(|rest| format!("ws://{rest}"))
        })
        .unwrap_or_else(|| base.to_owned());
    format!("{base}{path}")
}

/// Connects and prints notifications until the server closes the connection.
pub async fn watch(base: &str, segments: Option<&str>) -> anyhow::Result<()> {
    let mut url = ws_url(base, "/api/v1/notifications/ws");
    if let Some(segments) = segments {
        url = format!("{url}?segments={segments}");
    }
    let (_, mut socket) = awc::Client::new()
        .ws(url.as_str())
        .connect()
        .await
        .map_err(|e| anyhow!("failed to connect to {url}: {e}"))?;
    eprintln!("watching {url} (Ctrl-C to stop)");
    let mut out = std::io::stdout();
    while let Some(frame) = socket.next().await {
        match frame.context("connection failed")? {
            Frame::Text(text) => {
                out.write_all(&text)?;
                out.write_all(b"\n")?;
                out.flush()?;
            }
            Frame::Ping(bytes) => socket.send(Message::Pong(bytes)).await?,
            Frame::Close(reason) => {
                eprintln!("server closed the connection: {reason:?}");
                break;
            }
            _ => {}
        }
    }
    Ok(())
}
