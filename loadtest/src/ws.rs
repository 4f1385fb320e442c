//! WebSocket ingestion: `GET /api/v1/events/ws`, each message a body of events answered
//! with `{"ack": N}`. One message is in flight per connection (the node answers a
//! socket's messages in order, one at a time, so a deeper pipeline would only queue).

use actix_codec::Framed;
use awc::ws::{Codec, Frame, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt as _, StreamExt as _};

use crate::api::{check_count, CountField};
use crate::load::{Transport, CONNECT};
use crate::target::Target;

/// Largest frame either way: a batch of 10,000 events fits in 10 MiB.
const MAX_FRAME_BYTES: usize = 16 << 20;

/// A WebSocket to `path` on the node.
pub type Socket = Framed<BoxedSocket, Codec>;

/// Opens a WebSocket to `path`, with the key as `?key=` (and `query`, if any).
pub async fn connect(target: &Target, path: &str, key: Option<&str>) -> anyhow::Result<Socket> {
    let url = target.ws_url(path, key);
    let (_, socket) = awc::Client::new()
        .ws(url.as_str())
        .max_frame_size(MAX_FRAME_BYTES)
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("failed to open {}: {e}", target.ws_url(path, None)))?;
    Ok(socket)
}

/// One events WebSocket; reopened after the node closes it.
pub struct WsTransport {
    target: Target,
    key: Option<String>,
    socket: Option<Socket>,
}

impl WsTransport {
    /// Opens the events WebSocket.
    pub async fn open(target: &Target, key: Option<&str>) -> anyhow::Result<WsTransport> {
        let socket = connect(target, "/api/v1/events/ws", key).await?;
        Ok(WsTransport {
            target: target.clone(),
            key: key.map(str::to_owned),
            socket: Some(socket),
        })
    }

    /// Sends one message and waits for its answer.
    async fn exchange(socket: &mut Socket, body: String, events: usize) -> Result<(), Failure> {
        socket
            .send(Message::Text(body.into()))
            .await
            .map_err(|_| Failure::Fatal("ws send"))?;
        loop {
            match socket.next().await {
                Some(Ok(Frame::Text(answer))) => {
                    return check_count(&answer, CountField::Ack, events).map_err(Failure::Answer)
                }
                Some(Ok(Frame::Ping(bytes))) => socket
                    .send(Message::Pong(bytes))
                    .await
                    .map_err(|_| Failure::Fatal("ws send"))?,
                Some(Ok(Frame::Close(_))) | None => return Err(Failure::Fatal("ws closed")),
                Some(Err(_)) => return Err(Failure::Fatal("ws protocol")),
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Why a message was not acknowledged.
enum Failure {
    /// The node answered with an error (its code); the socket stays open.
    Answer(String),
    /// The socket is unusable and is reopened for the next message.
    Fatal(&'static str),
}

impl Transport for WsTransport {
    async fn send(&mut self, body: String, events: usize) -> Result<(), String> {
        let socket = match self.socket.as_mut() {
            Some(socket) => socket,
            None => {
                let socket = connect(&self.target, "/api/v1/events/ws", self.key.as_deref())
                    .await
                    .map_err(|_| CONNECT.to_owned())?;
                self.socket.insert(socket)
            }
        };
        match WsTransport::exchange(socket, body, events).await {
            Ok(()) => Ok(()),
            Err(Failure::Answer(code)) => Err(code),
            Err(Failure::Fatal(label)) => {
                self.socket = None;
                Err(label.to_owned())
            }
        }
    }
}
