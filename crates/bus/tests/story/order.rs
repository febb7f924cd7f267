//! Each event once per group and each key's events in order: with producers publishing
//! while the bus runs, with two workers on one subscription, after a publisher sent a
//! run twice, and after a worker froze with a batch in hand.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use matsuri_bus::{Bus, Consumer, Event, Subscription};

use crate::{Backend, Log};

crate::bus_tests!(
    events_of_one_key_are_handled_in_order,
    the_running_bus_hands_every_event_over_once_in_key_order,
    two_running_buses_hand_every_event_over_once_in_key_order,
    a_worker_stuck_past_its_turn_is_taken_over_and_nothing_is_skipped,
);

const PRODUCERS: i64 = 8;
const EVENTS_EACH: i64 = 25;
const EVENTS: usize = (PRODUCERS * EVENTS_EACH) as usize;

/// Records the order in which events arrive, and how many, for a waiter to watch; fails
/// the first attempt of every fifth event of a key.
struct Recorder {
    seen: Mutex<Vec<(String, i64)>>,
    failed_once: Mutex<HashSet<String>>,
    count: watch::Sender<usize>,
}

impl Recorder {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            seen: Mutex::default(),
            failed_once: Mutex::default(),
            count: watch::Sender::new(0),
        })
    }
}

#[async_trait::async_trait]
impl Consumer for Recorder {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        let seq = event.payload["seq"].as_i64().unwrap_or(-1);
        if seq % 5 == 3 && self.failed_once.lock().unwrap().insert(event.id.clone()) {
            anyhow::bail!("failing the first attempt of {seq}");
        }
        let mut seen = self.seen.lock().unwrap();
        seen.push((event.key.clone().unwrap_or_default(), seq));
        self.count.send_replace(seen.len());
        Ok(())
    }
}

/// A bus on `log` with a [`Recorder`] subscribed to `topic`.
fn recording_bus(log: &Log, topic: &'static str) -> (Bus, Arc<Recorder>) {
    let recorder = Recorder::new();
    let bus = log.bus(vec![Subscription::new(topic, "recorder", recorder.clone())]);
    (bus, recorder)
}

/// Eight producers publish 25 events each to `topic`, concurrently, each under its own
/// key and each event in a transaction of its own; the payload's `seq` counts each key's
/// events.
async fn publish_keyed(log: &Log, topic: &'static str) {
    let producers = (0..PRODUCERS).map(|p| async move {
        for seq in 0..EVENTS_EACH {
            log.publish(topic, &[(format!("key-{p}"), json!({"seq": seq}))])
                .await;
        }
    });
    futures::future::join_all(producers).await;
}

/// The recorder saw every event of [`publish_keyed`] once, each key's in order.
fn assert_each_once_in_key_order(recorder: &Recorder) {
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), EVENTS, "every event once");
    for p in 0..PRODUCERS {
        let key = format!("key-{p}");
        let order: Vec<i64> = seen
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(
            order,
            (0..EVENTS_EACH).collect::<Vec<_>>(),
            "{key} in order"
        );
    }
}

/// Waits until the recorder has seen every event of [`publish_keyed`], moving the clock a
/// second every 50 ms meanwhile so that retries come due; fails after 30 s.
async fn until_all_seen(log: &Log, recorder: &Recorder) {
    let mut count = recorder.count.subscribe();
    let all_seen = count.wait_for(|n| *n >= EVENTS);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let moving_clock = async {
        loop {
            tick.tick().await;
            log.clock.advance(Duration::from_secs(1));
        }
    };
    tokio::select! {
        seen = all_seen => { seen.unwrap(); }
        () = moving_clock => unreachable!(),
        () = tokio::time::sleep(Duration::from_secs(30)) => {
            let seen = recorder.seen.lock().unwrap().len();
            panic!("{seen} of {EVENTS} events seen after 30 s");
        }
    }
}

/// Runs `buses` until the recorder has seen every event, then stops them and waits for
/// each to finish what it had in hand: a second delivery would have been recorded by
/// then.
async fn run_until_all_seen(log: &Log, recorder: &Recorder, buses: Vec<Bus>) {
    let stop = CancellationToken::new();
    let running: Vec<_> = buses
        .into_iter()
        .map(|bus| tokio::spawn(bus.run(stop.clone())))
        .collect();
    until_all_seen(log, recorder).await;
    stop.cancel();
    for bus in running {
        bus.await.unwrap();
    }
}

async fn events_of_one_key_are_handled_in_order(backend: Backend) {
    let log = Log::open(backend).await;
    let (bus, recorder) = recording_bus(&log, "test.sequence");
    let relay = async {
        for _ in 0..30 {
            bus.run_once().await.unwrap();
            tokio::task::yield_now().await;
        }
    };
    tokio::join!(publish_keyed(&log, "test.sequence"), relay);
    log.drain(&bus).await;
    assert_each_once_in_key_order(&recorder);
}

/// The bus as `serve` and `worker` run it (on JetStream, a follower per subscription
/// reading a continuous stream), with producers publishing while it runs.
async fn the_running_bus_hands_every_event_over_once_in_key_order(backend: Backend) {
    let log = Log::open(backend).await;
    let (bus, recorder) = recording_bus(&log, "test.running");
    let running = run_until_all_seen(&log, &recorder, vec![bus]);
    tokio::join!(publish_keyed(&log, "test.running"), running);
    assert_each_once_in_key_order(&recorder);
}

/// Two workers (as in two processes) on one subscription: one holds its turn at a time,
/// so every event is handed over once and each key's in order.
async fn two_running_buses_hand_every_event_over_once_in_key_order(backend: Backend) {
    let log = Log::open(backend).await;
    let (bus, recorder) = recording_bus(&log, "test.two");
    let other = log.bus(bus.subscriptions().to_vec());
    let running = run_until_all_seen(&log, &recorder, vec![bus, other]);
    tokio::join!(publish_keyed(&log, "test.two"), running);
    assert_each_once_in_key_order(&recorder);
}

/// On JetStream: a publisher that stopped after sending the log, before recording how far
/// the stream has stored it, sends the same runs of events again when it starts over; the
/// stream keeps each run once, so every event is still handed over once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_published_again_reaches_the_stream_once() {
    let Some(url) = matsuri_testkit::service_url("MATSURI_TEST_NATS_URL") else {
        return;
    };
    let log = Log::open(Backend::Nats(url)).await;
    let (bus, recorder) = recording_bus(&log, "test.again");
    publish_keyed(&log, "test.again").await;
    bus.run_once().await.unwrap();
    sqlx::query("UPDATE bus_nats_published SET seq = 0")
        .execute(log.db.writer())
        .await
        .unwrap();
    log.drain(&bus).await;
    assert_each_once_in_key_order(&recorder);
}

/// Takes events and never finishes them, until let go; says when it took the first.
struct Stuck {
    took_one: CancellationToken,
    let_go: CancellationToken,
}

#[async_trait::async_trait]
impl Consumer for Stuck {
    async fn handle(&self, _event: &Event) -> anyhow::Result<()> {
        self.took_one.cancel();
        self.let_go.cancelled().await;
        Ok(())
    }
}

/// A worker hangs with a batch in hand (as a process that froze or died would). Once its
/// turn has run out another takes over and hands every event over, each key's in order;
/// none of what the first had received is skipped, and when the first wakes up it
/// records nothing.
async fn a_worker_stuck_past_its_turn_is_taken_over_and_nothing_is_skipped(backend: Backend) {
    let log = Log::open(backend).await;
    let (bus, recorder) = recording_bus(&log, "test.takeover");
    let stuck = Arc::new(Stuck {
        took_one: CancellationToken::new(),
        let_go: CancellationToken::new(),
    });
    let frozen = log.bus(vec![
        Subscription::new("test.takeover", "recorder", stuck.clone())
            .with_deadline(Duration::from_secs(60)),
    ]);
    let stop_frozen = CancellationToken::new();
    let frozen = tokio::spawn(frozen.run(stop_frozen.clone()));
    publish_keyed(&log, "test.takeover").await;
    tokio::time::timeout(Duration::from_secs(10), stuck.took_one.cancelled())
        .await
        .expect("the first worker took a batch");
    // Past the frozen worker's turn (four times its 60 s deadline).
    log.clock.advance(Duration::from_secs(300));
    let stop = CancellationToken::new();
    let running = tokio::spawn(bus.run(stop.clone()));
    until_all_seen(&log, &recorder).await;
    // The first wakes up and finishes: what it then records of its batch is refused.
    stuck.let_go.cancel();
    stop_frozen.cancel();
    frozen.await.unwrap();
    stop.cancel();
    running.await.unwrap();
    assert_each_once_in_key_order(&recorder);
    let processed: i64 = sqlx::query_scalar(
        "SELECT processed FROM bus_cursors WHERE group_name = 'recorder' AND topic = 'test.takeover'",
    )
    .fetch_one(log.db.reader())
    .await
    .unwrap();
    assert_eq!(
        processed, EVENTS as i64,
        "only the worker holding the turn recorded its batches"
    );
}
