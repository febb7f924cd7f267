//! What becomes of an event its consumer fails: retried with a growing backoff while the
//! later events of its key wait behind it, dead after the group's attempts, sent back by
//! an operator (and then handed over once) or deleted (and then never handed over); a
//! batch handed over whole, or one event at a time when it fails; pruning that keeps
//! what a dead letter still needs; and the record of applied events that makes a
//! redelivery change nothing twice.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use matsuri_bus::{Bus, BusAdmin, Consumer, ConsumerStats, Event, Subscription};

use crate::{Backend, Log};

crate::bus_tests!(
    a_failing_event_backs_off_holds_its_key_and_ends_dead,
    a_dead_letter_sent_back_is_handed_over_once_and_a_deleted_one_never,
    a_batch_is_handled_together_or_one_event_at_a_time,
    handled_events_are_pruned_and_those_of_dead_letters_kept,
    an_event_applied_once_is_not_applied_again,
);

const TOPIC: &str = "test.failures";
const GROUP: &str = "picky";

/// Handles events by their number `n`, refusing those it is told to refuse.
#[derive(Default)]
struct Picky {
    seen: Mutex<Vec<i64>>,
    refused: Mutex<HashSet<i64>>,
}

fn number_of(event: &Event) -> i64 {
    event.payload["n"].as_i64().unwrap_or(-1)
}

impl Picky {
    fn refusing(numbers: &[i64]) -> Arc<Self> {
        Arc::new(Self {
            seen: Mutex::default(),
            refused: Mutex::new(numbers.iter().copied().collect()),
        })
    }

    fn seen(&self) -> Vec<i64> {
        self.seen.lock().unwrap().clone()
    }

    fn heal(&self) {
        self.refused.lock().unwrap().clear();
    }
}

#[async_trait::async_trait]
impl Consumer for Picky {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        let n = number_of(event);
        anyhow::ensure!(!self.refused.lock().unwrap().contains(&n), "refusing {n}");
        self.seen.lock().unwrap().push(n);
        Ok(())
    }
}

/// A bus with `picky` subscribed, trying each event `attempts` times, and its admin.
fn picky_bus(log: &Log, picky: &Arc<Picky>, attempts: i64) -> (Bus, BusAdmin) {
    let subscriptions =
        vec![Subscription::new(TOPIC, GROUP, picky.clone()).with_max_attempts(attempts)];
    let admin = BusAdmin::new(log.db.clone(), log.clock(), &subscriptions);
    (log.bus(subscriptions), admin)
}

/// Events `(key, n)` of [`TOPIC`], in one transaction.
async fn publish_numbered(log: &Log, events: &[(&str, i64)]) {
    let events: Vec<_> = events
        .iter()
        .map(|(key, n)| ((*key).to_owned(), json!({"n": n})))
        .collect();
    log.publish(TOPIC, &events).await;
}

/// Runs passes of `bus` without moving the clock until `picky` has seen `count` events.
async fn passes_until_seen(bus: &Bus, picky: &Picky, count: usize) {
    for _ in 0..50 {
        if picky.seen.lock().unwrap().len() >= count {
            return;
        }
        bus.run_once().await.unwrap();
    }
    panic!("{:?} seen after 50 passes, {count} wanted", picky.seen());
}

/// Each parked event's `n`, status, attempts and milliseconds until its next attempt, in
/// log order.
async fn parked(log: &Log) -> Vec<(i64, String, i64, i64)> {
    let now = matsuri_core::Clock::now_ms(&*log.clock);
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT o.payload, p.status, p.attempts, p.next_attempt_at FROM bus_parked p \
         JOIN outbox o ON o.id = p.event_id ORDER BY p.seq",
    )
    .fetch_all(log.db.reader())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(payload, status, attempts, next)| {
            let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
            (payload["n"].as_i64().unwrap(), status, attempts, next - now)
        })
        .collect()
}

async fn stats(admin: &BusAdmin) -> ConsumerStats {
    admin.consumers().await.unwrap().remove(0)
}

async fn a_failing_event_backs_off_holds_its_key_and_ends_dead(backend: Backend) {
    let log = Log::open(backend).await;
    let picky = Picky::refusing(&[1]);
    let (bus, admin) = picky_bus(&log, &picky, 3);
    publish_numbered(&log, &[("a", 0), ("a", 1), ("a", 2), ("b", 3)]).await;
    passes_until_seen(&bus, &picky, 2).await;
    assert_eq!(picky.seen(), vec![0, 3], "2 waits behind 1, which failed");
    let waiting = parked(&log).await;
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    let (n, ref status, attempts, wait) = waiting[0];
    assert_eq!((n, status.as_str(), attempts), (1, "pending", 1));
    assert!((250..=500).contains(&wait), "first backoff {wait} ms");
    assert_eq!(waiting[1].0, 2);

    // The clock passes the first backoff: a second failure waits longer.
    log.clock.advance(Duration::from_millis(500));
    bus.run_once().await.unwrap();
    let (_, _, attempts, wait) = parked(&log).await[0];
    assert_eq!(attempts, 2);
    assert!((500..=1000).contains(&wait), "second backoff {wait} ms");

    // The third failure is the last: 1 is dead, and 2 follows at once.
    log.clock.advance(Duration::from_millis(1_000));
    bus.run_once().await.unwrap();
    passes_until_seen(&bus, &picky, 3).await;
    assert_eq!(picky.seen(), vec![0, 3, 2]);
    let figures = stats(&admin).await;
    assert_eq!(
        (figures.processed, figures.failed, figures.dead, figures.lag),
        (3, 3, 1, 0),
        "{figures:?}"
    );
    let letters = admin.dead_letters(Some(GROUP), None, 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 3);
    assert_eq!(letters[0].payload["n"], 1);
    assert!(letters[0].last_error.contains("refusing 1"), "{letters:?}");
    assert!(
        admin
            .dead_letters(Some("other"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_dead_letter_sent_back_is_handed_over_once_and_a_deleted_one_never(backend: Backend) {
    let log = Log::open(backend).await;
    let picky = Picky::refusing(&[1, 2]);
    let (bus, admin) = picky_bus(&log, &picky, 1);
    publish_numbered(&log, &[("a", 0), ("b", 1), ("c", 2)]).await;
    log.drain(&bus).await;
    assert_eq!(picky.seen(), vec![0]);
    let letters = admin.dead_letters(None, None, 10).await.unwrap();
    let id_of = |n: i64| {
        letters
            .iter()
            .find(|l| l.payload["n"] == n)
            .map(|l| l.id.clone())
            .unwrap()
    };
    let (retried, deleted) = (id_of(1), id_of(2));

    // The consumer is mended: one letter is sent back, the other deleted.
    picky.heal();
    assert!(admin.retry(&retried).await.unwrap());
    assert!(admin.delete(&deleted).await.unwrap());
    log.drain(&bus).await;
    assert_eq!(
        picky.seen(),
        vec![0, 1],
        "the retried once, the deleted never"
    );
    assert!(
        !admin.retry(&retried).await.unwrap(),
        "a letter goes back once"
    );
    assert!(!admin.retry(&deleted).await.unwrap());
    assert!(!admin.delete(&deleted).await.unwrap());
    let figures = stats(&admin).await;
    assert_eq!((figures.processed, figures.dead), (2, 0), "{figures:?}");
    assert_eq!(
        log.count("SELECT COUNT(*) FROM bus_parked WHERE status = 'dead'")
            .await,
        1,
        "the deleted letter's event stays unhandled"
    );
}

/// Records what it is given; any batch holding a `poison` event fails, and so does that
/// event alone.
#[derive(Default)]
struct Batcher {
    seen: Mutex<Vec<i64>>,
    batches: Mutex<usize>,
}

fn poison(event: &Event) -> bool {
    event.payload["poison"] == true
}

#[async_trait::async_trait]
impl Consumer for Batcher {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        anyhow::ensure!(!poison(event), "poison");
        self.seen.lock().unwrap().push(number_of(event));
        Ok(())
    }

    async fn handle_all(&self, events: &[&Event]) -> Option<anyhow::Result<()>> {
        if events.iter().any(|e| poison(e)) {
            return Some(Err(anyhow::anyhow!("a poison event in the batch")));
        }
        *self.batches.lock().unwrap() += 1;
        self.seen
            .lock()
            .unwrap()
            .extend(events.iter().map(|e| number_of(e)));
        Some(Ok(()))
    }
}

async fn a_batch_is_handled_together_or_one_event_at_a_time(backend: Backend) {
    let log = Log::open(backend).await;
    let batcher = Arc::new(Batcher::default());
    let bus = log.bus(vec![
        Subscription::new("test.batch", "batcher", batcher.clone()).with_max_attempts(2),
    ]);
    let publish = |from: i64, poisoned: Option<i64>| {
        let events: Vec<_> = (from..from + 10)
            .map(|n| {
                let key = format!("key-{}", n % 3);
                (key, json!({"n": n, "poison": Some(n) == poisoned}))
            })
            .collect();
        let log = &log;
        async move { log.publish("test.batch", &events).await }
    };

    // A batch without a bad event is handed over in one piece.
    publish(0, None).await;
    log.drain(&bus).await;
    assert_eq!(*batcher.batches.lock().unwrap(), 1);
    assert_eq!(*batcher.seen.lock().unwrap(), (0..10).collect::<Vec<_>>());

    // With one, the batch fails as a whole and its events go one at a time: the bad one
    // ends dead, and the rest of its key waits behind it and then follows, in order.
    publish(10, Some(13)).await;
    log.drain(&bus).await;
    assert_eq!(*batcher.batches.lock().unwrap(), 1);
    let seen = batcher.seen.lock().unwrap().clone();
    let mut later: Vec<i64> = seen[10..].to_vec();
    let key_of_poison: Vec<i64> = later.iter().copied().filter(|n| n % 3 == 1).collect();
    assert_eq!(key_of_poison, vec![10, 16, 19], "the poisoned key in order");
    later.sort_unstable();
    assert_eq!(later, vec![10, 11, 12, 14, 15, 16, 17, 18, 19]);
    assert_eq!(
        log.count("SELECT COUNT(*) FROM bus_parked WHERE status = 'dead'")
            .await,
        1
    );
}

async fn handled_events_are_pruned_and_those_of_dead_letters_kept(backend: Backend) {
    let log = Log::open(backend).await;
    let picky = Picky::refusing(&[1]);
    let (bus, admin) = picky_bus(&log, &picky, 1);
    publish_numbered(&log, &[("a", 0), ("b", 1)]).await;
    log.drain(&bus).await;
    let week = 7 * 86_400_000;
    let now = || matsuri_core::Clock::now_ms(&*log.clock);
    let mut tx = log.db.begin().await.unwrap();
    matsuri_bus::apply_once(&mut tx, GROUP, "an-event", now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        bus.prune(now() - week).await.unwrap(),
        0,
        "recent events stay"
    );
    log.clock.advance(Duration::from_secs(8 * 86_400));
    assert_eq!(
        bus.prune(now() - week).await.unwrap(),
        1,
        "the handled one goes"
    );
    assert_eq!(log.count("SELECT COUNT(*) FROM outbox").await, 1);
    assert_eq!(log.count("SELECT COUNT(*) FROM bus_applied").await, 0);
    let letters = admin.dead_letters(None, None, 10).await.unwrap();
    assert_eq!(
        letters[0].payload["n"], 1,
        "the dead letter keeps its event"
    );
    // Sent back and handled, it goes with the next prune.
    picky.heal();
    assert!(admin.retry(&letters[0].id).await.unwrap());
    log.drain(&bus).await;
    assert_eq!(bus.prune(now() - week).await.unwrap(), 1);
    assert_eq!(log.count("SELECT COUNT(*) FROM outbox").await, 0);
}

/// A consumer records the events it applies in the transaction of their effect: once per
/// group, never for a transaction rolled back, and many at once (past one statement's
/// worth) with each event's first record the only one.
async fn an_event_applied_once_is_not_applied_again(backend: Backend) {
    let log = Log::open(backend).await;
    let now = matsuri_core::Clock::now_ms(&*log.clock);
    let mut tx = log.db.begin().await.unwrap();
    assert!(
        matsuri_bus::apply_once(&mut tx, GROUP, "e1", now)
            .await
            .unwrap()
    );
    assert!(
        !matsuri_bus::apply_once(&mut tx, GROUP, "e1", now)
            .await
            .unwrap()
    );
    assert!(
        matsuri_bus::apply_once(&mut tx, "other", "e1", now)
            .await
            .unwrap()
    );
    let many: Vec<String> = (0..2_500).map(|i| format!("m{i}")).collect();
    let mut ids: Vec<&str> = vec!["e1", "e2", "e2"];
    ids.extend(many.iter().map(String::as_str));
    let fresh = matsuri_bus::apply_all(&mut tx, GROUP, &ids, now)
        .await
        .unwrap();
    assert_eq!(fresh.len(), 2_501, "e2 and the many, each once");
    assert!(fresh.contains("e2") && !fresh.contains("e1"));
    tx.commit().await.unwrap();

    let mut tx = log.db.begin().await.unwrap();
    assert!(
        matsuri_bus::apply_once(&mut tx, GROUP, "e3", now)
            .await
            .unwrap()
    );
    tx.rollback().await.unwrap();

    let mut conn = log.db.writer().acquire().await.unwrap();
    let applied = matsuri_bus::applied_among(&mut conn, GROUP, &["e1", "e2", "e3", "m2499"])
        .await
        .unwrap();
    let expected: HashSet<String> = ["e1", "e2", "m2499"].map(String::from).into();
    assert_eq!(applied, expected, "the rolled-back e3 was not recorded");
}
