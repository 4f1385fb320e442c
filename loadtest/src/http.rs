//! HTTP ingestion: `POST /api/v1/events`, one request in flight per connection.

use crate::api::Api;
use crate::load::Transport;

/// One keep-alive HTTP connection.
pub struct HttpTransport {
    api: Api,
}

impl HttpTransport {
    /// Returns a connection of its own to the node `api` talks to.
    pub fn new(api: Api) -> HttpTransport {
        HttpTransport { api }
    }
}

impl Transport for HttpTransport {
    async fn send(&mut self, body: String, events: usize) -> Result<(), String> {
        self.api.post_events(body, events).await
    }
}
