//! The node under test: its base URL split into host and port, and the loopback rule.

use std::net::IpAddr;

use anyhow::{bail, Context as _};

/// A node's base URL, `http://HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The base URL without a trailing slash.
    pub base: String,
    /// The host, without brackets for IPv6.
    pub host: String,
    /// The port (80 when the URL names none).
    pub port: u16,
}

impl Target {
    /// Parses `url`; only plain `http://` is supported.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let base = url.trim_end_matches('/');
        let Some(rest) = base.strip_prefix("http://") else {
            bail!("--url must start with http:// (got {url:?})");
        };
        if rest.contains('/') || rest.contains('@') || rest.is_empty() {
            bail!("--url must be http://HOST[:PORT] with no path (got {url:?})");
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .with_context(|| format!("unclosed [ in --url {url:?}"))?;
            (host, after.strip_prefix(':'))
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let port = match port {
            Some(port) => port
                .parse()
                .with_context(|| format!("bad port in --url {url:?}"))?,
            None => 80,
        };
        Ok(Target {
            base: base.to_owned(),
            host: host.to_owned(),
            port,
        })
    }

    /// Returns whether the host is this machine's loopback.
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// Returns the HTTP URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Returns the WebSocket URL of `path` (which may carry a query), with the key
    /// as the `key` query parameter when one is given.
    pub fn ws_url(&self, path: &str, key: Option<&str>) -> String {
        let base = self.base.replacen("http://", "ws://", 1);
        match key {
            Some(key) => {
                let separator = if path.contains('?') { '&' } else { '?' };
                format!("{base}{path}{separator}key={}", percent_encode(key))
            }
            None => format!("{base}{path}"),
        }
    }
}

/// Percent-encodes every byte of `text` but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_and_ports() {
        let t = Target::parse("http://127.0.0.1:8080/").expect("valid");
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 8080));
        assert_eq!(t.url("/readyz"), "http://127.0.0.1:8080/readyz");
        let t = Target::parse("http://[::1]:9000").expect("valid");
        assert_eq!((t.host.as_str(), t.port), ("::1", 9000));
        assert_eq!(Target::parse("http://localhost").expect("valid").port, 80);
    }

    #[test]
    fn knows_loopback_hosts() {
        for url in [
            "http://127.0.0.1:1",
            "http://127.8.9.1",
            "http://localhost:2",
            "http://[::1]:3",
        ] {
            assert!(Target::parse(url).expect("valid").is_loopback(), "{url}");
        }
        for url in [
            "http://10.0.0.1:1",
            "http://example.com",
            "http://0.0.0.0:8080",
        ] {
            assert!(!Target::parse(url).expect("valid").is_loopback(), "{url}");
        }
    }

    #[test]
    fn refuses_other_schemes_paths_and_bad_ports() {
        for url in [
            "https://127.0.0.1",
            "127.0.0.1:8080",
            "http://127.0.0.1/api",
            "http://127.0.0.1:x",
            "http://",
        ] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn websocket_urls_carry_the_key() {
        let t = Target::parse("http://127.0.0.1:8080").expect("valid");
        assert_eq!(
            t.ws_url("/api/v1/events/ws", None),
            "ws://127.0.0.1:8080/api/v1/events/ws"
        );
        assert_eq!(t.ws_url("/x", Some("k_1")), "ws://127.0.0.1:8080/x?key=k_1");
        assert_eq!(
            t.ws_url("/x?segments=1,2", Some("a b&c")),
            "ws://127.0.0.1:8080/x?segments=1,2&key=a%20b%26c"
        );
    }
}
