//! The wire format of the stream: a message carries a run of consecutive events of one
//! topic as a JSON array (header `Matsuri-Events`: how many); messages with one event in
//! headers, as published before runs, are still read.

use anyhow::Context;
use async_nats::jetstream;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{
    CREATED_HEADER, EVENTS_HEADER, EVENTS_PER_MESSAGE, KEY_HEADER, MESSAGE_BYTES, SEQ_HEADER,
};
use crate::Event;
use crate::subscription::Logged;

/// An event on its way from the log into the stream.
pub(crate) struct Outbound {
    pub seq: i64,
    pub id: String,
    pub topic: String,
    pub key: Option<String>,
    pub payload: String,
    pub created_at: i64,
}

/// An event in a message's JSON array.
#[derive(Serialize)]
struct WireOut<'a> {
    seq: i64,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    created_at: i64,
    payload: &'a RawValue,
}

#[derive(Deserialize)]
struct WireIn {
    seq: i64,
    id: String,
    #[serde(default)]
    key: Option<String>,
    created_at: i64,
    payload: serde_json::Value,
}

/// The run of events a message is gathering before it is sent.
pub(super) struct Run {
    pub(super) topic: String,
    count: usize,
    first_id: String,
    pub(super) last: (i64, String),
    body: Vec<u8>,
}

impl Run {
    pub(super) fn new(event: &Outbound) -> Self {
        Self {
            topic: event.topic.clone(),
            count: 0,
            first_id: event.id.clone(),
            last: (event.seq, String::new()),
            body: Vec::with_capacity(4_096),
        }
    }

    /// Whether the next event of the log may join this run.
    pub(super) fn takes(&self, event: &Outbound) -> bool {
        // Its other fields and the JSON around them take well under 256 bytes.
        let size =
            event.id.len() + event.key.as_ref().map_or(0, String::len) + event.payload.len() + 256;
        self.topic == event.topic
            && self.last.0 / EVENTS_PER_MESSAGE == event.seq / EVENTS_PER_MESSAGE
            && self.body.len() + size <= MESSAGE_BYTES
    }

    pub(super) fn push(&mut self, event: Outbound) -> anyhow::Result<()> {
        // A payload the outbox holds is JSON; one that is not reaches consumers as null,
        // as on the SQL transport.
        let payload = serde_json::from_str::<&RawValue>(&event.payload).unwrap_or(RawValue::NULL);
        let wire = WireOut {
            seq: event.seq,
            id: &event.id,
            key: event.key.as_deref(),
            created_at: event.created_at,
            payload,
        };
        self.body.push(if self.count == 0 { b'[' } else { b',' });
        serde_json::to_writer(&mut self.body, &wire).context("encoding an event")?;
        self.count += 1;
        self.last = (event.seq, event.id);
        Ok(())
    }

    /// The message's headers and payload.
    pub(super) fn seal(mut self) -> (async_nats::HeaderMap, Vec<u8>) {
        self.body.push(b']');
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{}/{}", self.first_id, self.last.1).as_str(),
        );
        headers.insert(EVENTS_HEADER, self.count.to_string().as_str());
        (headers, self.body)
    }
}

/// How many events a message carries.
pub(crate) fn events_in(message: &jetstream::Message) -> usize {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(EVENTS_HEADER))
        .and_then(|n| n.as_str().parse().ok())
        .unwrap_or(1)
}

/// The events a message on `topic` carries, in log order; `None` when it is not one of
/// matsuri's.
pub(crate) fn decode(
    topic: &str,
    headers: Option<&async_nats::HeaderMap>,
    payload: &[u8],
) -> Option<Vec<Logged>> {
    let headers = headers?;
    if headers.get(EVENTS_HEADER).is_some() {
        let events: Vec<WireIn> = serde_json::from_slice(payload).ok()?;
        return Some(
            events
                .into_iter()
                .map(|e| Logged {
                    seq: e.seq,
                    event: Event {
                        id: e.id,
                        topic: topic.to_owned(),
                        key: e.key,
                        payload: e.payload,
                        created_at: e.created_at,
                    },
                })
                .collect(),
        );
    }
    // One event with its place in headers: one walk over them, since looking each up by
    // name would build and hash a name.
    let (mut seq, mut id, mut key, mut created_at) = (None, None, None, None);
    for (name, values) in headers.iter() {
        let value = values.first().map(|v| v.as_str());
        match name.as_ref() {
            SEQ_HEADER => seq = value.and_then(|v| v.parse().ok()),
            "Nats-Msg-Id" => id = value,
            KEY_HEADER => key = value,
            CREATED_HEADER => created_at = value.and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    Some(vec![Logged {
        seq: seq?,
        event: Event {
            id: id?.to_owned(),
            topic: topic.to_owned(),
            key: key.map(str::to_owned),
            payload: serde_json::from_slice(payload).unwrap_or(serde_json::Value::Null),
            created_at: created_at.unwrap_or(0),
        },
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(seq: i64, topic: &str, key: Option<&str>, payload: &str) -> Outbound {
        Outbound {
            seq,
            id: format!("id-{seq}"),
            topic: topic.to_owned(),
            key: key.map(str::to_owned),
            payload: payload.to_owned(),
            created_at: 1_000 + seq,
        }
    }

    #[test]
    fn a_run_carries_its_events_in_order_and_decodes_to_them() {
        let first = outbound(254, "order.paid", Some("A-1"), r#"{"n":1}"#);
        let mut run = Run::new(&first);
        run.push(first).unwrap();
        let second = outbound(255, "order.paid", None, "not json");
        assert!(run.takes(&second));
        run.push(second).unwrap();
        // The next block, another topic, and a payload that would make the message too
        // long start runs of their own.
        assert!(!run.takes(&outbound(256, "order.paid", None, "{}")));
        assert!(!run.takes(&outbound(255, "order.placed", None, "{}")));
        let long = format!("[{}0]", "0,".repeat(MESSAGE_BYTES / 2));
        assert!(!run.takes(&outbound(255, "order.paid", None, &long)));

        let (headers, body) = run.seal();
        assert_eq!(
            headers.get("Nats-Msg-Id").unwrap().as_str(),
            "id-254/id-255"
        );
        let events = decode("order.paid", Some(&headers), &body).unwrap();
        let seen: Vec<_> = events
            .iter()
            .map(|l| {
                let e = &l.event;
                (
                    l.seq,
                    e.id.as_str(),
                    e.key.as_deref(),
                    e.payload.clone(),
                    e.created_at,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    254,
                    "id-254",
                    Some("A-1"),
                    serde_json::json!({"n": 1}),
                    1_254
                ),
                (255, "id-255", None, serde_json::Value::Null, 1_255),
            ]
        );
        assert!(events.iter().all(|l| l.event.topic == "order.paid"));
    }

    #[test]
    fn a_message_with_one_event_in_headers_still_decodes() {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", "id-7");
        headers.insert(SEQ_HEADER, "7");
        headers.insert(KEY_HEADER, "A-1");
        headers.insert(CREATED_HEADER, "1007");
        let events = decode("order.paid", Some(&headers), br#"{"n":7}"#).unwrap();
        assert_eq!(events.len(), 1);
        let event = &events[0].event;
        assert_eq!(
            (
                events[0].seq,
                event.id.as_str(),
                event.key.as_deref(),
                event.created_at
            ),
            (7, "id-7", Some("A-1"), 1_007)
        );
        assert_eq!(event.payload, serde_json::json!({"n": 7}));
    }

    #[test]
    fn a_message_that_is_not_matsuris_decodes_to_nothing() {
        assert!(decode("t", None, b"[]").is_none());
        assert!(decode("t", Some(&async_nats::HeaderMap::new()), b"{}").is_none());
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(EVENTS_HEADER, "1");
        assert!(decode("t", Some(&headers), b"not json").is_none());
    }
}
