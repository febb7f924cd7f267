//! The `live-broadcast` consumer: stored comments, from the bus to the stage of this node,
//! which sends each room's share at its next tick. The bus hands a room's events to one
//! worker at a time, in order, so one stage paces a room. A redelivered event is
//! harmless: a socket takes each comment once.

use std::sync::Arc;

use matsuri_bus::{Consumer, Event};

use crate::service::LiveService;
use crate::writer::CommentsEvent;

pub(crate) struct Broadcast(pub(crate) Arc<LiveService>);

#[async_trait::async_trait]
impl Consumer for Broadcast {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        let comments: CommentsEvent = event.decode()?;
        self.0.stage.comments(
            &comments.live_id,
            comments.display_per_second,
            comments.comments,
        );
        Ok(())
    }

    async fn handle_all(&self, events: &[&Event]) -> Option<anyhow::Result<()>> {
        let mut decoded = Vec::with_capacity(events.len());
        for event in events {
            match event.decode::<CommentsEvent>() {
                Ok(comments) => decoded.push(comments),
                Err(e) => return Some(Err(e)),
            }
        }
        for comments in decoded {
            self.0.stage.comments(
                &comments.live_id,
                comments.display_per_second,
                comments.comments,
            );
        }
        Some(Ok(()))
    }
}
