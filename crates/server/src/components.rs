//! Every port's backend and every domain service, built once from the settings.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use std::time::Duration;

use matsuri_accounts::{AccountService, AccountsModule, PasswordPolicy};
use matsuri_bus::{Bus, BusAdmin, NatsLink, Subscription, Transport};
use matsuri_chat::{ChatModule, ChatService, OfflineMessage, OfflineNotifier};
use matsuri_coord::SharedCoord;
use matsuri_core::ids::UserId;
use matsuri_core::{Settings, SharedClock, TokenKeys};
use matsuri_db::Db;
use matsuri_inventory::{Channels, InventoryModule, Stock, TakeRefusal};
use matsuri_live::{LiveModule, LiveService};
use matsuri_mail::SharedMailer;
use matsuri_media::{MediaModule, MediaService};
use matsuri_module::{Catalog, CatalogEntry, Module, People, Pictures};
use matsuri_payments::{SharedGateway, SimulatedGateway};
use matsuri_push::{Actor, Notice, NotificationKind, PushModule, PushService, Urgency};
use matsuri_realtime::{Realtime, RealtimeModule};
use matsuri_recs::{ActivityLog, Recommender, RecsModule};
use matsuri_shop::{Allocator, Contact, Customers, MailPorts, Refusal, ShopModule, ShopService};
use matsuri_social::{LikeNotifier, Liked, SocialModule, SocialService};
use matsuri_tickets::{TicketService, TicketsModule};

/// The running system's parts; tests reach into them.
#[derive(Clone)]
pub struct Components {
    pub db: Db,
    pub clock: SharedClock,
    pub keys: Arc<TokenKeys>,
    pub accounts: Arc<AccountService>,
    pub shop: Arc<ShopService>,
    pub stock: Arc<Stock>,
    pub channels: Arc<Channels>,
    pub tickets: Arc<TicketService>,
    pub chat: Arc<ChatService>,
    pub social: Arc<SocialService>,
    pub live: Arc<LiveService>,
    pub media: Arc<MediaService>,
    pub push: Arc<PushService>,
    pub recs: Arc<Recommender>,
    pub realtime: Arc<Realtime>,
    pub mailer: SharedMailer,
    pub gateway: SharedGateway,
    pub bus: Bus,
    pub bus_admin: BusAdmin,
    pub coord: SharedCoord,
    /// Every domain's face (routes, subscriptions, jobs, draining).
    pub modules: Vec<Arc<dyn Module>>,
    /// How long handled events are kept.
    pub retention: Duration,
}

impl Components {
    pub async fn build(settings: &Settings, clock: SharedClock) -> anyhow::Result<Self> {
        check_settings(settings)?;
        let db = Db::connect(&settings.database_url(), &settings.database).await?;
        Self::migrate(&db).await?;

        let coord =
            matsuri_coord::from_url(&settings.coord_url, &settings.coord_prefix, clock.clone())
                .await?;
        let secret = crate::bootstrap::token_secret(settings)?;
        let keys = Arc::new(TokenKeys::new(
            secret.as_bytes(),
            settings.auth.token_ttl_seconds,
        ));
        let policy = PasswordPolicy {
            memory_kib: settings.auth.argon2_memory_kib,
            iterations: settings.auth.argon2_iterations,
        };
        let accounts =
            Arc::new(AccountService::new(db.clone(), clock.clone(), keys.clone(), policy).await?);
        let gateway: SharedGateway = Arc::new(SimulatedGateway::new(
            db.clone(),
            clock.clone(),
            &settings.payments,
        ));
        let stock = Arc::new(Stock::new(
            db.clone(),
            coord.clone(),
            clock.clone(),
            settings.inventory.clone(),
        ));
        let channels = Arc::new(Channels::new(stock.clone()));
        let activity = Arc::new(ActivityLog::new(
            db.clone(),
            clock.clone(),
            settings.recs.queue_capacity,
            settings.recs.flush_batch,
        ));
        let shop = ShopService::new(
            db.clone(),
            clock.clone(),
            gateway.clone(),
            Arc::new(StockAllocator(stock.clone())),
            activity.clone(),
            settings.shop.clone(),
        );
        let recs = Recommender::new(
            db.clone(),
            clock.clone(),
            settings.recs.clone(),
            activity,
            Arc::new(ShopCatalog(shop.clone())),
        )?;
        let tickets = TicketService::new(
            db.clone(),
            coord.clone(),
            clock.clone(),
            gateway.clone(),
            settings.tickets.clone(),
            secret.as_bytes(),
        )
        .await?;
        let mailer = matsuri_mail::from_url(&settings.mail_url(), &settings.mail.from)?;
        let deadline = Duration::from_secs(settings.bus.handler_deadline_seconds.max(1));
        let mails = MailPorts {
            mailer: mailer.clone(),
            customers: Arc::new(AccountDirectory(accounts.clone())),
            shop_address: settings.shop.notify_email.clone(),
            deadline,
        };
        let realtime = Realtime::new(
            &matsuri_realtime::pubsub_url(settings),
            &settings.coord_prefix,
            coord.clone(),
            clock.clone(),
            keys.clone(),
            settings.realtime.clone(),
        )
        .await?;
        let push = PushService::new(
            db.clone(),
            clock.clone(),
            &settings.push,
            &settings.data_dir,
        )
        .await?;
        let nudge = matsuri_bus::Nudge::default();
        let chat = Arc::new(ChatService::new(
            db.clone(),
            clock.clone(),
            Arc::new(AccountDirectory(accounts.clone())),
            nudge.clone(),
        ));
        let chat_module = ChatModule::new(
            chat.clone(),
            realtime.clone(),
            Arc::new(PushNotifier(push.clone())),
        );
        let frames = vec![chat_module.frames()];
        let media = MediaService::new(
            db.clone(),
            coord.clone(),
            clock.clone(),
            settings,
            secret.as_bytes(),
            nudge.clone(),
        )?;
        let social = Arc::new(SocialService::new(
            db.clone(),
            clock.clone(),
            Arc::new(AccountDirectory(accounts.clone())),
            Arc::new(MediaPictures(media.clone())),
        ));
        let live = LiveService::new(
            db.clone(),
            coord.clone(),
            clock.clone(),
            realtime.clone(),
            Arc::new(AccountDirectory(accounts.clone())),
            settings.live.clone(),
            nudge.clone(),
        )
        .await?;
        // Every domain, as the server composes it: a new domain is one line here.
        let modules: Vec<Arc<dyn Module>> = vec![
            Arc::new(AccountsModule(accounts.clone())),
            Arc::new(ShopModule::new(shop.clone(), mails)),
            Arc::new(InventoryModule::new(stock.clone(), channels.clone())),
            Arc::new(TicketsModule::new(
                tickets.clone(),
                realtime.clone(),
                &settings.data_dir,
            )),
            Arc::new(PushModule(push.clone())),
            Arc::new(chat_module),
            Arc::new(SocialModule::new(
                social.clone(),
                realtime.clone(),
                Arc::new(LikePush(push.clone())),
            )),
            Arc::new(LiveModule(live.clone())),
            Arc::new(MediaModule(media.clone())),
            Arc::new(RecsModule(recs.clone())),
            Arc::new(RealtimeModule::new(realtime.clone(), frames)),
        ];
        let subscriptions: Vec<Subscription> = modules
            .iter()
            .flat_map(|m| m.subscriptions())
            .map(|s| {
                let attempts = settings.bus.max_attempts_of(s.group);
                s.with_max_attempts(attempts).with_deadline(deadline)
            })
            .collect();
        let bus_admin = BusAdmin::new(db.clone(), clock.clone(), &subscriptions);
        let transport = match settings.bus_url.as_str() {
            "db" => Transport::Sql,
            url if url.starts_with("nats://") => Transport::Nats(Arc::new(
                NatsLink::connect(url, &settings.bus.nats_prefix).await?,
            )),
            other => anyhow::bail!(
                "unsupported bus_url {:?}: expected db or nats://host:port",
                other.split(':').next().unwrap_or_default()
            ),
        };
        let bus = Bus::new(db.clone(), clock.clone(), subscriptions)
            .with_transport(transport)
            .with_nudge(nudge);
        Ok(Self {
            db,
            clock,
            keys,
            accounts,
            shop,
            stock,
            channels,
            tickets,
            chat,
            social,
            live,
            media,
            push,
            recs,
            realtime,
            mailer,
            gateway,
            bus,
            bus_admin,
            coord,
            modules,
            retention: Duration::from_secs(settings.bus.retention_hours.saturating_mul(3_600)),
        })
    }

    /// Applies every crate's migrations.
    pub async fn migrate(db: &Db) -> anyhow::Result<()> {
        db.migrate(&[
            &matsuri_db::MIGRATIONS,
            &matsuri_bus::MIGRATIONS,
            &matsuri_payments::MIGRATIONS,
            &matsuri_accounts::MIGRATIONS,
            &matsuri_shop::MIGRATIONS,
            &matsuri_inventory::MIGRATIONS,
            &matsuri_tickets::MIGRATIONS,
            &matsuri_push::MIGRATIONS,
            &matsuri_chat::MIGRATIONS,
            &matsuri_social::MIGRATIONS,
            &matsuri_live::MIGRATIONS,
            &matsuri_media::MIGRATIONS,
            &matsuri_recs::MIGRATIONS,
        ])
        .await
        .context("applying migrations")
    }

    /// Starts the event consumers, the bus's pruning and every module's scheduled jobs.
    pub fn spawn_workers(&self, stop: CancellationToken) -> Vec<JoinHandle<()>> {
        let mut workers = vec![
            tokio::spawn(self.bus.clone().run(stop.clone())),
            tokio::spawn(self.bus.clone().run_pruning(self.retention, stop.clone())),
        ];
        for module in &self.modules {
            workers.extend(module.spawn_jobs(&stop));
        }
        workers
    }

    /// Starts what every module runs beside the HTTP server, workers or not.
    pub fn spawn_serving(&self, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        self.modules
            .iter()
            .flat_map(|m| m.spawn_serving(stop))
            .collect()
    }

    /// Tells every module the server has started to drain.
    pub fn draining(&self) {
        for module in &self.modules {
            module.draining();
        }
    }
}

/// Refuses, with a clear message, backends this build does not have yet (rather than
/// silently running on another one) and settings that contradict each other.
fn check_settings(settings: &Settings) -> anyhow::Result<()> {
    let (wait, timeout) = (
        settings.tickets.max_queue_wait_seconds,
        settings.http.request_timeout_seconds,
    );
    anyhow::ensure!(
        wait < timeout,
        "tickets.max_queue_wait_seconds ({wait}) must be below http.request_timeout_seconds ({timeout}), \
         or held queue status requests would time out"
    );
    Ok(())
}

/// Lets the shop's checkout take stock from inventory's allocation store.
struct StockAllocator(Arc<Stock>);

#[async_trait::async_trait]
impl Allocator for StockAllocator {
    async fn take(&self, order_id: &str, lines: &[(String, i64)]) -> Result<(), Refusal> {
        self.0.take(order_id, lines).await.map_err(|e| match e {
            TakeRefusal::Short { product_id, left } => Refusal::Short {
                product_id,
                available: left,
            },
            TakeRefusal::Unknown(product_id) => Refusal::Unknown(product_id),
            TakeRefusal::Failed(e) => Refusal::Failed(e),
        })
    }

    async fn give_back(&self, order_id: &str) -> anyhow::Result<()> {
        self.0.give_back(order_id).await.map(|_| ())
    }

    async fn available(&self, product_ids: &[String]) -> anyhow::Result<Vec<i64>> {
        self.0.available(product_ids).await
    }

    async fn set_book(&self, product_id: &str, sku: &str, quantity: i64) -> anyhow::Result<i64> {
        self.0.set_book(product_id, sku, quantity).await
    }

    async fn cancel(
        &self,
        conn: &mut matsuri_db::Conn,
        order_id: &str,
        lines: &[(String, i64)],
    ) -> anyhow::Result<bool> {
        Ok(self.0.cancel_in(conn, order_id, lines).await?)
    }

    async fn restock(&self, order_id: &str, items: Vec<(String, String)>) -> anyhow::Result<()> {
        self.0.restock(order_id, items).await
    }
}

/// Lets recommendations show products' names and prices.
struct ShopCatalog(Arc<ShopService>);

#[async_trait::async_trait]
impl Catalog for ShopCatalog {
    async fn entries(&self, ids: &[String]) -> anyhow::Result<HashMap<String, CatalogEntry>> {
        Ok(self
            .0
            .names_and_prices(ids)
            .await?
            .into_iter()
            .map(|(id, name, price)| (id, CatalogEntry { name, price }))
            .collect())
    }
}

/// Lets posts attach their authors' processed images.
struct MediaPictures(Arc<MediaService>);

#[async_trait::async_trait]
impl Pictures for MediaPictures {
    async fn attachable(&self, owner: &str, image_id: &str) -> anyhow::Result<bool> {
        Ok(self.0.attachable(owner, image_id).await?)
    }
}

/// Lets the shop find a customer's mail address.
struct AccountDirectory(Arc<AccountService>);

#[async_trait::async_trait]
impl Customers for AccountDirectory {
    async fn contact(&self, user_id: &str) -> anyhow::Result<Option<Contact>> {
        match self.0.get(&UserId::from_stored(user_id.to_owned())).await {
            Ok(user) => Ok(Some(Contact {
                email: user.email,
                name: user.name,
            })),
            Err(matsuri_accounts::AccountError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait::async_trait]
impl People for AccountDirectory {
    async fn names(&self, ids: &[String]) -> anyhow::Result<HashMap<String, String>> {
        Ok(self.0.names(ids).await?)
    }
}

/// Tells authors of likes: a notification per post that gathers its likers while
/// unread, with a Web Push when the author has no socket open.
struct LikePush(Arc<PushService>);

#[async_trait::async_trait]
impl LikeNotifier for LikePush {
    async fn liked(
        &self,
        source_id: &str,
        like: &Liked,
        liker_name: &str,
        web_push: bool,
    ) -> anyhow::Result<Option<serde_json::Value>> {
        let notice = Notice {
            user_id: UserId::from_stored(like.author_id.clone()),
            kind: NotificationKind::PostLiked,
            subject_id: like.post_id.clone(),
            actor: Actor {
                id: like.liker_id.clone(),
                name: liker_name.to_owned(),
            },
            text: like.excerpt.clone(),
            url: Some(format!("/posts/{}", like.post_id)),
            urgency: Urgency::Normal,
            web_push,
        };
        let touched = self.0.notify(source_id, &[notice]).await?;
        touched
            .into_iter()
            .next()
            .map(|(_, shown)| serde_json::to_value(shown))
            .transpose()
            .map_err(Into::into)
    }

    async fn post_gone(&self, post_id: &str) -> anyhow::Result<()> {
        self.0.forget(NotificationKind::PostLiked, post_id).await?;
        Ok(())
    }
}

/// Tells chat members without a socket about a message: a notification per chat that
/// gathers its unread messages, and a Web Push.
struct PushNotifier(Arc<PushService>);

#[async_trait::async_trait]
impl OfflineNotifier for PushNotifier {
    async fn notify(
        &self,
        source_id: &str,
        recipients: &[String],
        message: OfflineMessage<'_>,
    ) -> anyhow::Result<()> {
        let notices: Vec<Notice> = recipients
            .iter()
            .map(|user| Notice {
                user_id: UserId::from_stored(user.clone()),
                kind: NotificationKind::ChatMessage,
                subject_id: message.chat_id.to_owned(),
                actor: Actor {
                    id: message.sender_id.to_owned(),
                    name: message.sender_name.to_owned(),
                },
                text: message.text.to_owned(),
                url: Some(format!("/chat/{}", message.chat_id)),
                urgency: Urgency::High,
                web_push: true,
            })
            .collect();
        self.0.notify(source_id, &notices).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_wait_longer_than_a_request_may_take_is_refused() {
        let mut settings = Settings::default();
        assert!(check_settings(&settings).is_ok());
        settings.http.request_timeout_seconds = 10;
        let refused = check_settings(&settings).unwrap_err().to_string();
        assert!(refused.contains("max_queue_wait_seconds"), "{refused}");
        settings.tickets.max_queue_wait_seconds = 9;
        assert!(check_settings(&settings).is_ok());
    }
}
