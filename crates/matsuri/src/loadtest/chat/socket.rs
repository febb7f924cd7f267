//! Opening many WebSockets from one process, and reading the server's frames cheaply.
//!
//! One loopback address has about 28,000 ephemeral ports, so sockets to a loopback server
//! are spread over several source addresses (127.0.0.1, 127.0.0.2, …), each bound before
//! connecting. Buffers start small, as the gateway's do: tens of thousands of sockets
//! mostly carry nothing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context;
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// One open socket.
pub type Ws = WebSocketStream<TcpStream>;

/// Frames the gateway sends are at most this big.
const MAX_FRAME: usize = 64 * 1024;

/// A server node to open sockets to.
pub struct Node {
    addr: SocketAddr,
    /// `ws://host:port/api/v1/ws?token=`, the token to follow.
    ws_url: String,
}

impl Node {
    /// The node serving `url` (`http://host:port`).
    pub async fn resolve(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .trim_end_matches('/')
            .strip_prefix("http://")
            .context("the URL must be http://host:port (the load test speaks plain WebSocket)")?;
        let authority = rest.split('/').next().unwrap_or_default();
        let with_port = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = tokio::net::lookup_host(&with_port)
            .await
            .with_context(|| format!("resolving {authority}"))?
            .find(SocketAddr::is_ipv4)
            .with_context(|| format!("{authority} has no IPv4 address"))?;
        Ok(Self {
            addr,
            ws_url: format!("ws://{rest}/api/v1/ws?token="),
        })
    }
}

/// Opens sockets, each from the next source address.
pub struct Dialer {
    sources: Vec<IpAddr>,
    config: WebSocketConfig,
}

impl Dialer {
    /// `sources` loopback source addresses when `node` is on loopback (otherwise the
    /// system picks); fails early when the open-files limit cannot hold `sockets`.
    pub fn new(node: &Node, sources: u8, sockets: usize) -> anyhow::Result<Self> {
        if let Some(limit) = open_files_limit() {
            // Registrations, the HTTP pool and the runtime need a few of their own.
            anyhow::ensure!(
                limit >= sockets as u64 + 200,
                "{sockets} sockets need more open files than this process may have ({limit}); \
                 raise the limit with `ulimit -n` (the server needs it raised too)"
            );
        }
        let sources = if node.addr.ip().is_loopback() {
            (1..=sources.max(1))
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
                .collect()
        } else {
            Vec::new()
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(1024)
            .write_buffer_size(0)
            .max_write_buffer_size(4 * MAX_FRAME)
            .max_message_size(Some(MAX_FRAME))
            .max_frame_size(Some(MAX_FRAME));
        Ok(Self { sources, config })
    }

    /// Opens socket number `i` to `node` as the holder of `token`; the error says why not
    /// in a few words (so failures can be counted by kind).
    pub async fn open(&self, node: &Node, token: &str, i: usize) -> Result<Ws, String> {
        let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        if !self.sources.is_empty() {
            let source = self.sources[i % self.sources.len()];
            socket
                .bind(SocketAddr::new(source, 0))
                .map_err(|e| format!("binding {source}: {e}"))?;
        }
        let stream = socket.connect(node.addr).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let url = format!("{}{token}", node.ws_url);
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(self.config))
            .await
            .map_err(|e| e.to_string())?;
        Ok(ws)
    }
}

/// This process's soft limit on open files (Linux `/proc`), when it can be read.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// A process's resident memory in KiB (`VmRSS` in `/proc/<pid>/status`); `pid` may be
/// `self`.
pub fn rss_kib(pid: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .with_context(|| format!("{path} shows no VmRSS"))
}

/// The fields of a server frame the scenarios look at, borrowed from its text (ids never
/// carry escapes; a frame that does is counted as unreadable).
#[derive(Debug, Deserialize)]
pub struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: &'a str,
    #[serde(default, borrow)]
    pub msg_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub client_msg_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub sender_id: Option<&'a str>,
}

impl<'a> Incoming<'a> {
    pub fn parse(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// A message id (a UUID in text) as its 128 bits, to count without keeping strings.
pub fn uuid_bits(id: &str) -> Option<u128> {
    let mut bits = 0_u128;
    let mut digits = 0;
    for b in id.bytes().filter(|b| *b != b'-') {
        let digit = char::from(b).to_digit(16)?;
        digits += 1;
        if digits > 32 {
            return None;
        }
        bits = bits << 4 | u128::from(digit);
    }
    (digits == 32).then_some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_read_as_their_bits() {
        assert_eq!(
            uuid_bits("0192f0e4-aaaa-7bbb-8ccc-0123456789ab"),
            Some(0x0192f0e4_aaaa_7bbb_8ccc_0123456789ab)
        );
        assert_eq!(
            uuid_bits("0192f0e4aaaa7bbb8ccc0123456789AB"),
            Some(0x0192f0e4_aaaa_7bbb_8ccc_0123456789ab)
        );
        for bad in [
            "",
            "0192f0e4",
            "0192f0e4-aaaa-7bbb-8ccc-0123456789abc",
            "x192f0e4-aaaa-7bbb-8ccc-0123456789ab",
        ] {
            assert_eq!(uuid_bits(bad), None, "{bad}");
        }
    }

    #[test]
    fn frames_are_read_by_their_fields() {
        let text = r#"{"type":"message","chat_id":"c","msg_id":"m","sender_id":"s","text":"hi","created_at":"t","client_msg_id":"t12-3"}"#;
        let frame = Incoming::parse(text).unwrap();
        assert_eq!(frame.kind, "message");
        assert_eq!(frame.msg_id, Some("m"));
        assert_eq!(frame.client_msg_id, Some("t12-3"));
        assert_eq!(frame.sender_id, Some("s"));
        let pong = Incoming::parse(r#"{"type":"pong"}"#).unwrap();
        assert_eq!((pong.kind, pong.msg_id), ("pong", None));
        assert!(Incoming::parse("not json").is_none());
    }

    #[test]
    fn the_limits_file_is_read() {
        assert!(open_files_limit().is_some_and(|n| n > 0));
        assert!(rss_kib("self").is_ok_and(|kib| kib > 0));
    }
}
