//! Telling authors of likes, from the bus (group `social-notify`): the like becomes (or
//! gathers into) the author's notification, which goes to the author's sockets on any
//! node when they have one open, and as a Web Push when they have none. A deleted post
//! takes its notifications with it.

use std::sync::Arc;

use matsuri_bus::{Consumer, Event};
use matsuri_realtime::{Frame, Realtime};

use crate::service::{Liked, SocialService};

/// The consumer group.
pub const GROUP: &str = "social-notify";

/// Where notifications live (the push domain); the server provides it.
#[async_trait::async_trait]
pub trait LikeNotifier: Send + Sync {
    /// Records that `liker_name` liked the post, once per `source_id`, with a Web Push
    /// when `web_push`; the author's notification as it now stands (JSON), if one changed.
    async fn liked(
        &self,
        source_id: &str,
        like: &Liked,
        liker_name: &str,
        web_push: bool,
    ) -> anyhow::Result<Option<serde_json::Value>>;

    /// Forgets the notifications about a deleted post.
    async fn post_gone(&self, post_id: &str) -> anyhow::Result<()>;
}

pub(crate) struct Notify {
    pub(crate) social: Arc<SocialService>,
    pub(crate) realtime: Arc<Realtime>,
    pub(crate) notifier: Arc<dyn LikeNotifier>,
}

#[async_trait::async_trait]
impl Consumer for Notify {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        if event.topic == crate::service::DELETED_TOPIC {
            let post = event.payload["post_id"].as_str().unwrap_or_default();
            return self.notifier.post_gone(post).await;
        }
        let like: Liked = event.decode()?;
        let names = self
            .social
            .people()
            .names(std::slice::from_ref(&like.liker_id))
            .await?;
        let name = names.get(&like.liker_id).map_or("", String::as_str);
        let online = self.realtime.online(&[like.author_id.as_str()]).await?[0];
        let shown = self.notifier.liked(&event.id, &like, name, !online).await?;
        if let (true, Some(mut notification)) = (online, shown) {
            notification["type"] = "notification".into();
            let frame = Frame::json(&notification)?;
            self.realtime
                .to_users(&[like.author_id.as_str()], &frame)
                .await?;
        }
        Ok(())
    }
}
