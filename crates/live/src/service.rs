//! The live service: what every part of a room shares (the database, `coord`, the
//! gateway, the room cache, the names of commenters, the spam model, the comment writer
//! and the stage that paces frames to viewers).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use matsuri_coord::SharedCoord;
use matsuri_core::SharedClock;
use matsuri_core::config::LiveSettings;
use matsuri_db::Db;
use matsuri_module::People;
use matsuri_realtime::Realtime;

use crate::model::{Commenter, LiveError};
use crate::rooms::RoomCache;
use crate::stage::Stage;
use crate::training::ModelSlot;
use crate::writer::Writer;

/// How long a commenter's name is trusted.
const NAME_TTL: Duration = Duration::from_secs(300);
/// Names kept at most; past it the cache starts over.
const NAMES_KEPT: usize = 100_000;

pub struct LiveService {
    pub(crate) db: Db,
    pub(crate) coord: SharedCoord,
    pub(crate) clock: SharedClock,
    pub(crate) realtime: Arc<Realtime>,
    people: Arc<dyn People>,
    pub(crate) settings: LiveSettings,
    pub(crate) rooms: RoomCache,
    names: Mutex<HashMap<String, (Instant, String)>>,
    pub(crate) model: ModelSlot,
    pub(crate) writer: Writer,
    pub(crate) stage: Arc<Stage>,
}

impl LiveService {
    /// Loads the newest spam model (or the shipped one) and starts the comment writer.
    pub async fn new(
        db: Db,
        coord: SharedCoord,
        clock: SharedClock,
        realtime: Arc<Realtime>,
        people: Arc<dyn People>,
        settings: LiveSettings,
        nudge: matsuri_bus::Nudge,
    ) -> anyhow::Result<Arc<Self>> {
        let model = ModelSlot::load(&db).await?;
        let writer = Writer::start(db.clone(), nudge, settings.write_batch);
        let stage = Arc::new(Stage::new(
            realtime.clone(),
            Duration::from_millis(settings.tick_ms.max(10)),
        ));
        Ok(Arc::new(Self {
            db,
            coord,
            clock,
            realtime,
            people,
            settings,
            rooms: RoomCache::default(),
            names: Mutex::new(HashMap::new()),
            model,
            writer,
            stage,
        }))
    }

    fn name_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, String)>> {
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The names of these accounts, from the cache where it is fresh.
    pub(crate) async fn names(&self, ids: &[String]) -> Result<HashMap<String, String>, LiveError> {
        let mut known = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let cache = self.name_cache();
            for id in ids {
                match cache.get(id) {
                    Some((read_at, name)) if read_at.elapsed() < NAME_TTL => {
                        known.insert(id.clone(), name.clone());
                    }
                    _ if !missing.contains(id) => missing.push(id.clone()),
                    _ => {}
                }
            }
        }
        if missing.is_empty() {
            return Ok(known);
        }
        let found = self.people.names(&missing).await?;
        let mut cache = self.name_cache();
        if cache.len() + found.len() > NAMES_KEPT {
            cache.clear();
        }
        let now = Instant::now();
        for (id, name) in found {
            cache.insert(id.clone(), (now, name.clone()));
            known.insert(id, name);
        }
        Ok(known)
    }

    /// Someone by id, named when the account exists.
    pub(crate) fn commenter(&self, names: &HashMap<String, String>, id: &str) -> Commenter {
        Commenter {
            id: id.to_owned(),
            name: names.get(id).cloned().unwrap_or_default(),
        }
    }

    pub fn settings(&self) -> &LiveSettings {
        &self.settings
    }
}
