//! Frames: what the gateway writes to sockets, shared between every socket it goes to,
//! and how a frame travels between nodes over the `pubsub` port.

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;

/// One JSON text frame. Cloning it shares the text, so a frame for 256 members is
/// serialised once.
#[derive(Debug, Clone)]
pub struct Frame {
    text: Utf8Bytes,
    /// Frames with the same key reach a socket once (chat messages by message id: the
    /// bus delivers at least once, and a resume can overlap what is arriving live).
    key: Option<u128>,
    /// The frame only records its key: it is always sent, and keyed frames after it
    /// are not (the sender's `sent` answer, before the fan-out's copy of the message).
    marks: bool,
    /// The one socket it does not go to (`<node>#<socket>`): the one its news came from.
    except: Option<std::sync::Arc<str>>,
}

impl Frame {
    /// A frame of any serialisable value; it should have a `type` field.
    pub fn json(value: &impl Serialize) -> anyhow::Result<Self> {
        Ok(Self {
            text: Utf8Bytes::from(serde_json::to_string(value)?),
            key: None,
            marks: false,
            except: None,
        })
    }

    /// The same frame, delivered once per socket for `key`.
    pub fn once_per(mut self, key: u128) -> Self {
        self.key = Some(key);
        self.marks = false;
        self
    }

    /// The same frame, always sent, after which a socket takes no frame keyed `key`.
    pub fn marks(mut self, key: u128) -> Self {
        self.key = Some(key);
        self.marks = true;
        self
    }

    pub(crate) fn only_marks(&self) -> bool {
        self.marks
    }

    /// The same frame for every socket but `origin` (a [`crate::FrameHandler`]'s
    /// `origin`), wherever that one is.
    pub fn except(mut self, origin: Option<&str>) -> Self {
        self.except = origin.map(std::sync::Arc::from);
        self
    }

    /// The socket of `node` it skips, if it skips one there.
    pub(crate) fn skips_on(&self, node: &str) -> Option<u64> {
        let (on, socket) = self.except.as_deref()?.split_once('#')?;
        (on == node).then(|| socket.parse().ok()).flatten()
    }

    pub fn text(&self) -> &Utf8Bytes {
        &self.text
    }

    pub fn key(&self) -> Option<u128> {
        self.key
    }

    /// `{"type":"error","code","detail"}`, with what it answers when known.
    pub fn error(code: &str, detail: &str, in_reply_to: Option<&str>) -> Self {
        let value = serde_json::json!({
            "type": "error",
            "code": code,
            "detail": detail,
            "in_reply_to": in_reply_to,
        });
        Self {
            text: Utf8Bytes::from(value.to_string()),
            key: None,
            marks: false,
            except: None,
        }
    }

    /// The frame as it crosses to other nodes: the sending node's id, the key, the
    /// socket it skips, the text.
    pub(crate) fn encode(&self, origin: &str) -> Vec<u8> {
        let key = self.key.map(|k| format!("{k:x}")).unwrap_or_default();
        let except = self.except.as_deref().unwrap_or_default();
        let mut out =
            Vec::with_capacity(origin.len() + key.len() + except.len() + self.text.len() + 3);
        out.extend_from_slice(origin.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(key.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(except.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.text.as_bytes());
        out
    }

    /// A frame from another node, with that node's id; `None` when it is not one.
    pub(crate) fn decode(bytes: &[u8]) -> Option<(String, Frame)> {
        let mut parts = bytes.splitn(4, |b| *b == b'\n');
        let origin = std::str::from_utf8(parts.next()?).ok()?.to_owned();
        let key = std::str::from_utf8(parts.next()?).ok()?;
        let key = if key.is_empty() {
            None
        } else {
            Some(u128::from_str_radix(key, 16).ok()?)
        };
        let except = std::str::from_utf8(parts.next()?).ok()?;
        let except = (!except.is_empty()).then(|| std::sync::Arc::from(except));
        let text = std::str::from_utf8(parts.next()?).ok()?;
        Some((
            origin,
            Frame {
                text: Utf8Bytes::from(text),
                key,
                marks: false,
                except,
            },
        ))
    }
}

/// A refused client frame: the error frame's `code` and `detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub code: &'static str,
    pub detail: String,
}

impl FrameError {
    pub fn new(code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }

    /// `invalid_frame`: malformed, unknown or breaking a rule.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new("invalid_frame", detail)
    }
}

/// Whether `topic` is one a socket may subscribe to: `live:<id>` or `event:<id>`, the id
/// up to 64 letters, digits, `-` or `_`.
pub fn valid_topic(topic: &str) -> bool {
    let Some((kind, id)) = topic.split_once(':') else {
        return false;
    };
    matches!(kind, "live" | "event")
        && !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_nodes_intact() {
        let frame = Frame::json(&serde_json::json!({"type": "message", "text": "a\nb"}))
            .unwrap_or_else(|_| Frame::error("x", "y", None))
            .once_per(0x0192_0000_abcd)
            .except(Some("node-2#7"));
        let (origin, back) =
            Frame::decode(&frame.encode("node-1")).unwrap_or_else(|| ("".into(), frame.clone()));
        assert_eq!(origin, "node-1");
        assert_eq!(back.key(), Some(0x0192_0000_abcd));
        assert_eq!(back.skips_on("node-2"), Some(7));
        assert_eq!(back.skips_on("node-1"), None);
        assert_eq!(back.text().as_str(), frame.text().as_str());
        let plain = Frame::error("invalid_frame", "no", Some("send"));
        let decoded = Frame::decode(&plain.encode("n")).map(|(_, f)| f.key());
        assert_eq!(decoded, Some(None));
        assert!(Frame::decode(b"only-origin").is_none());
    }

    #[test]
    fn topics_are_live_rooms_or_events() {
        assert!(valid_topic("live:room-1"));
        assert!(valid_topic("event:0192f0e4-aaaa-7bbb-8ccc-0123456789ab"));
        for bad in ["chat:1", "live:", "live", "event:a b", "live:x:y", ""] {
            assert!(!valid_topic(bad), "{bad}");
        }
        assert!(!valid_topic(&format!("live:{}", "a".repeat(65))));
    }
}
