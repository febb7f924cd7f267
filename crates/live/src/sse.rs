//! The room as a server-sent event stream, for viewers without a socket: the same frames
//! the socket gets, one `data:` line each, comments with their id as the event id. A
//! client that reconnects with `Last-Event-ID` first gets the comments it missed, from
//! the archive, then the live frames.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::response::sse::Event;
use futures::Stream;

use matsuri_realtime::Listener;

use crate::archive::ArchiveQuery;
use crate::model::LiveError;
use crate::rooms::topic;
use crate::service::LiveService;
use crate::stage::comment_frame;

/// Missed comments sent again at most on a reconnect.
const BACKLOG: usize = 1_000;
const PAGE: u32 = 100;

struct Streaming {
    listener: Listener,
    backlog: VecDeque<Event>,
    /// The newest comment sent from the archive: live copies up to it are not sent again.
    caught_up_to: Option<u128>,
}

impl Drop for Streaming {
    fn drop(&mut self) {
        metrics::gauge!("matsuri_live_streams").decrement(1.0);
    }
}

fn uuid_key(id: &str) -> Option<u128> {
    uuid::Uuid::parse_str(id).ok().map(|u| u.as_u128())
}

/// The stream of room `live_id`, resuming after comment `last_event_id`.
pub(crate) async fn stream(
    live: Arc<LiveService>,
    live_id: &str,
    last_event_id: Option<String>,
) -> Result<impl Stream<Item = Result<Event, Infallible>> + use<>, LiveError> {
    live.room_row(live_id).await?;
    // Listening starts before the archive is read, so nothing falls between the two.
    let listener = live.realtime.listen(&topic(live_id)).await?;
    let mut backlog = VecDeque::new();
    let mut caught_up_to = None;
    let mut after = last_event_id.filter(|id| uuid_key(id).is_some());
    while after.is_some() && backlog.len() < BACKLOG {
        let page = live
            .archive(
                live_id,
                &ArchiveQuery {
                    after: after.clone(),
                    limit: PAGE,
                    ..ArchiveQuery::default()
                },
            )
            .await?;
        for comment in &page.items {
            let frame = comment_frame(comment)?;
            backlog.push_back(
                Event::default()
                    .id(comment.id.clone())
                    .data(frame.text().as_str()),
            );
            caught_up_to = uuid_key(&comment.id);
        }
        after = page.next_cursor;
    }
    metrics::gauge!("matsuri_live_streams").increment(1.0);
    let state = Streaming {
        listener,
        backlog,
        caught_up_to,
    };
    Ok(futures::stream::unfold(state, |mut state| async move {
        if let Some(event) = state.backlog.pop_front() {
            return Some((Ok(event), state));
        }
        loop {
            let frame = state.listener.next().await?;
            let key = frame.key();
            if key.is_some_and(|k| state.caught_up_to.is_some_and(|upto| k <= upto)) {
                continue;
            }
            let mut event = Event::default().data(frame.text().as_str());
            if let Some(key) = key {
                event = event.id(uuid::Uuid::from_u128(key).to_string());
            }
            return Some((Ok(event), state));
        }
    }))
}
