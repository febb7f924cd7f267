//! The rush as one virtual user lives it: join the queue, poll until admitted (or told
//! the event is sold out), charge the wallet, hold a random seat (another one after a
//! collision) or the best available one, pay. Every request goes through one gate of
//! `--concurrency` permits, and each step's latency is kept apart.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::Rng;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::seat_ids;
use crate::loadtest::client::{Answer, Api};
use crate::loadtest::stats::{Latencies, progress};

/// Seats a user tries from its own (stale) list before asking which are still free.
const HOLD_TRIES: usize = 20;
/// How often an unsettled `Idempotency-Key` request is sent again.
const RETRIES: usize = 10;

/// Fresh seat lists a user asks for before it gives up colliding.
const REFETCHES: usize = 50;
/// How long a user keeps polling the queue before it counts as never admitted.
const ADMISSION_PATIENCE: Duration = Duration::from_secs(15 * 60);

/// The steps of a user's journey, each timed on its own.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    Join,
    Status,
    Charge,
    /// Reading the free seats again after collisions.
    Seats,
    Hold,
    Pay,
}

pub(super) const STEPS: [Step; 6] = [
    Step::Join,
    Step::Status,
    Step::Charge,
    Step::Seats,
    Step::Hold,
    Step::Pay,
];

impl Step {
    pub(super) fn name(self) -> &'static str {
        match self {
            Step::Join => "join",
            Step::Status => "status",
            Step::Charge => "charge",
            Step::Seats => "seats",
            Step::Hold => "hold",
            Step::Pay => "pay",
        }
    }

    fn method(self) -> Method {
        match self {
            Step::Status | Step::Seats => Method::GET,
            Step::Join | Step::Charge | Step::Hold | Step::Pay => Method::POST,
        }
    }
}

/// How a user picks a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Pick {
    /// A random seat of a list read before the rush, as the seed's bots did.
    Random,
    /// The best available seat, picked by the server.
    Best,
}

/// Why a journey stopped before a ticket.
#[derive(Debug)]
pub(super) enum End {
    /// The queue answered `sold_out`.
    ToldSoldOut,
    /// No seat was left when the user asked for the free ones (or the best).
    SoldOut,
    /// The queue answered `expired`.
    Expired,
    /// A step answered something else, or nothing: what it answered.
    Failed(Step, String),
}

/// Latencies per step.
#[derive(Debug, Default)]
pub(super) struct StepTimes([Latencies; STEPS.len()]);

impl StepTimes {
    pub(super) fn of(&mut self, step: Step) -> &mut Latencies {
        &mut self.0[step as usize]
    }

    pub(super) fn extend(&mut self, other: StepTimes) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            mine.extend(theirs);
        }
    }
}

/// How far one user got.
#[derive(Debug, Default)]
pub(super) struct Journey {
    pub(super) token: bool,
    pub(super) admitted: bool,
    pub(super) charged: Option<i64>,
    pub(super) held: bool,
    pub(super) paid: bool,
    /// When the join answered, since the rush began.
    pub(super) joined_after: Option<Duration>,
    /// When the payment answered, since the rush began.
    pub(super) paid_after: Option<Duration>,
    /// When the queue said `sold_out`, since the rush began.
    pub(super) told_sold_out_after: Option<Duration>,
    pub(super) collisions: usize,
    /// Each hold request: when it was answered, since the rush began, and how long it took.
    pub(super) holds: Vec<(Duration, Duration)>,
    pub(super) stopped: Option<End>,
    pub(super) times: StepTimes,
}

/// What every user shares during the rush.
pub(super) struct Rush {
    pub(super) api: Api,
    /// One permit per request in flight.
    pub(super) gate: Semaphore,
    pub(super) event_id: String,
    pub(super) price: i64,
    pub(super) run_id: String,
    /// When the rush began.
    pub(super) started: Instant,
    /// The free seats as listed before the rush: every user starts from this list.
    pub(super) seats: Arc<Vec<String>>,
    /// Seconds a waiting user asks the queue to hold its status request; 0: plain polls.
    pub(super) wait: u64,
    pub(super) pick: Pick,
    /// One permit per held status request, apart from `gate`: a held request waits
    /// rather than works, as a real user's open connection would.
    pub(super) waiting: Semaphore,
}

impl Rush {
    /// Every user's journey, all at once. Users ask for permits in order, so the joins
    /// reach the queue ahead of most polls.
    pub(super) async fn all_users(&self, users: &[String]) -> Vec<Journey> {
        let bar = progress(users.len(), "rush");
        let journeys = futures::stream::iter(users.iter().enumerate())
            .map(|(user, token)| {
                let bar = &bar;
                async move {
                    let mut fan = Fan {
                        rush: self,
                        user,
                        token,
                        journey: Journey::default(),
                    };
                    fan.journey.stopped = fan.walk().await.err();
                    bar.inc(1);
                    fan.journey
                }
            })
            .buffer_unordered(users.len())
            .collect()
            .await;
        bar.finish_and_clear();
        journeys
    }
}

/// One virtual user on the way to a ticket.
struct Fan<'a> {
    rush: &'a Rush,
    user: usize,
    token: &'a str,
    journey: Journey,
}

impl Fan<'_> {
    /// From the queue to a paid ticket; stops at the first step that fails.
    async fn walk(&mut self) -> Result<(), End> {
        let (queue_token, sold_out) = self.join().await?;
        self.journey.token = true;
        self.journey.joined_after = Some(self.rush.started.elapsed());
        if sold_out {
            return Err(self.told_sold_out());
        }
        let access_token = self.wait_for_admission(&queue_token).await?;
        self.journey.admitted = true;
        self.charge().await?;
        self.journey.charged = Some(self.rush.price);
        let reservation = match self.hold(&access_token).await {
            Ok(reservation) => reservation,
            Err(end) => {
                // A user who gives up leaves, so the next in line gets the slot now.
                self.leave().await;
                return Err(end);
            }
        };
        self.journey.held = true;
        self.pay(&reservation).await?;
        self.journey.paid = true;
        self.journey.paid_after = Some(self.rush.started.elapsed());
        Ok(())
    }

    /// One request under the gate, timed (the wait for a permit is not).
    async fn call(
        &mut self,
        step: Step,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let gate = &self.rush.gate;
        self.call_through(gate, step, path, body, headers).await
    }

    /// One request under `gate`, timed (the wait for a permit is not).
    async fn call_through(
        &mut self,
        gate: &Semaphore,
        step: Step,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let _permit = gate.acquire().await;
        let t = Instant::now();
        let answer = (self.rush.api)
            .send_with(step.method(), path, Some(self.token), body, headers)
            .await;
        let took = t.elapsed();
        self.journey.times.of(step).record(took);
        if let Step::Hold = step {
            self.journey.holds.push((self.rush.started.elapsed(), took));
        }
        answer
    }

    /// Leaves the waiting room; a failure only means the slot frees when the token ends.
    async fn leave(&mut self) {
        let path = format!("/events/{}/queue", self.rush.event_id);
        let _permit = self.rush.gate.acquire().await;
        let _ = (self.rush.api)
            .send_with(reqwest::Method::DELETE, &path, Some(self.token), None, &[])
            .await;
    }

    /// The queue token, and whether the event is sold out already.
    async fn join(&mut self) -> Result<(String, bool), End> {
        let path = format!("/events/{}/queue", self.rush.event_id);
        let answer = self.call(Step::Join, &path, None, &[]).await;
        let body = expect(Step::Join, answer, &[200, 201])?;
        let token = string_field(Step::Join, &body, "queue_token")?;
        Ok((token, body["state"] == "sold_out"))
    }

    fn told_sold_out(&mut self) -> End {
        self.journey.told_sold_out_after = Some(self.rush.started.elapsed());
        End::ToldSoldOut
    }

    /// Polls the queue until it admits the user, asking the server to hold each poll
    /// up to `wait` seconds; returns the access token.
    async fn wait_for_admission(&mut self, queue_token: &str) -> Result<String, End> {
        let rush = self.rush;
        let path = format!("/events/{}/queue/status", rush.event_id);
        let prefer = format!("wait={}", rush.wait);
        let mut headers = vec![("X-Queue-Token", queue_token)];
        let gate = if rush.wait > 0 {
            headers.push(("Prefer", prefer.as_str()));
            &rush.waiting
        } else {
            &rush.gate
        };
        let deadline = Instant::now() + ADMISSION_PATIENCE;
        loop {
            let answer = self
                .call_through(gate, Step::Status, &path, None, &headers)
                .await;
            let body = expect(Step::Status, answer, &[200])?;
            match body["state"].as_str() {
                Some("active") => return string_field(Step::Status, &body, "access_token"),
                Some("expired") => return Err(End::Expired),
                Some("sold_out") => return Err(self.told_sold_out()),
                Some("waiting") if Instant::now() < deadline => {}
                Some("waiting") => return Err(End::Failed(Step::Status, "never admitted".into())),
                _ => {
                    let state = format!("state {}", body["state"]);
                    return Err(End::Failed(Step::Status, state));
                }
            }
            tokio::time::sleep(poll_pause(
                body["poll_after_seconds"].as_f64(),
                body["estimated_wait_seconds"].as_f64(),
            ))
            .await;
        }
    }

    async fn charge(&mut self) -> Result<(), End> {
        let key = format!("rush-{}-charge-{}", self.rush.run_id, self.user);
        let body = json!({"amount": self.rush.price});
        let headers = [("Idempotency-Key", key.as_str())];
        let answer = self
            .call_again_on_timeout(Step::Charge, "/wallet/charge", &body, &headers)
            .await;
        expect(Step::Charge, answer, &[200]).map(drop)
    }

    /// Holds one seat as `--pick` says; returns the reservation.
    async fn hold(&mut self, access_token: &str) -> Result<String, End> {
        match self.rush.pick {
            Pick::Random => self.hold_random(access_token).await,
            Pick::Best => self.hold_best(access_token).await,
        }
    }

    /// Holds the best seat available; none left ends the journey.
    async fn hold_best(&mut self, access_token: &str) -> Result<String, End> {
        let path = format!("/events/{}/reservations", self.rush.event_id);
        let headers = [("X-Access-Token", access_token)];
        let body = json!({"quantity": 1});
        match self.call(Step::Hold, &path, Some(&body), &headers).await {
            Ok((201, body)) => string_field(Step::Hold, &body, "reservation_id"),
            Ok((409, body)) if body["code"] == "seat_unavailable" => Err(End::SoldOut),
            other => Err(failure(Step::Hold, other)),
        }
    }

    /// Holds one random seat, trying others after collisions; returns the reservation.
    async fn hold_random(&mut self, access_token: &str) -> Result<String, End> {
        let path = format!("/events/{}/reservations", self.rush.event_id);
        let headers = [("X-Access-Token", access_token)];
        let mut choice = Choice::new(self.rush.seats.clone());
        for _ in 0..REFETCHES {
            for _ in 0..HOLD_TRIES {
                let Some(pick) = choice.pick() else { break };
                let body = json!({"seat_ids": [choice.seats[pick]]});
                match self.call(Step::Hold, &path, Some(&body), &headers).await {
                    Ok((201, body)) => return string_field(Step::Hold, &body, "reservation_id"),
                    Ok((409, body)) if body["code"] == "seat_unavailable" => {
                        self.journey.collisions += 1;
                        choice.exclude(pick);
                    }
                    other => return Err(failure(Step::Hold, other)),
                }
            }
            let free = self.free_seats().await?;
            if free.is_empty() {
                return Err(End::SoldOut);
            }
            choice = Choice::new(Arc::new(free));
        }
        Err(End::Failed(Step::Hold, "still colliding".into()))
    }

    /// The seats still free, asked under the gate like any other request.
    async fn free_seats(&mut self) -> Result<Vec<String>, End> {
        let _permit = self.rush.gate.acquire().await;
        let filter = "?status=available";
        let t = Instant::now();
        let free = seat_ids(&self.rush.api, &self.rush.event_id, self.token, filter).await;
        self.journey.times.of(Step::Seats).record(t.elapsed());
        free.map_err(|e| End::Failed(Step::Seats, format!("listing free seats: {e:#}")))
    }

    async fn pay(&mut self, reservation: &str) -> Result<(), End> {
        let path = format!("/reservations/{reservation}/payment");
        let key = format!("rush-{}-pay-{}", self.rush.run_id, self.user);
        let headers = [("Idempotency-Key", key.as_str())];
        let body = json!({"method": "wallet"});
        let answer = self
            .call_again_on_timeout(Step::Pay, &path, &body, &headers)
            .await;
        expect(Step::Pay, answer, &[201]).map(drop)
    }

    /// A request carrying an `Idempotency-Key`, sent again with the same key when the
    /// server answers that it took too long or is still at it, as a careful client does:
    /// the first attempt may have gone through, and the retry then replays its answer.
    async fn call_again_on_timeout(
        &mut self,
        step: Step,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut answer = self.call(step, path, Some(body), headers).await;
        for _ in 0..RETRIES {
            let unsettled = match &answer {
                Ok((503, _)) => true,
                Ok((409, body)) => body["code"] == "idempotency_key_in_use",
                _ => false,
            };
            if !unsettled {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            answer = self.call(step, path, Some(body), headers).await;
        }
        answer
    }
}

/// A user's view of the free seats: a shared list less the seats it collided on.
struct Choice {
    seats: Arc<Vec<String>>,
    taken: HashSet<usize>,
}

impl Choice {
    fn new(seats: Arc<Vec<String>>) -> Self {
        Self {
            seats,
            taken: HashSet::new(),
        }
    }

    /// A random seat not known to be taken.
    fn pick(&self) -> Option<usize> {
        if self.taken.len() >= self.seats.len() {
            return None;
        }
        let mut rng = rand::rng();
        // Only a handful are ever excluded, so a few draws suffice.
        loop {
            let i = rng.random_range(0..self.seats.len());
            if !self.taken.contains(&i) {
                return Some(i);
            }
        }
    }

    fn exclude(&mut self, i: usize) {
        self.taken.insert(i);
    }
}

/// As long as the queue asks (`poll_after_seconds`; 0 after a held request, so at once),
/// or else half the wait it estimates, between 0.2 s and 2 s; give or take 15 %, so the
/// crowd does not poll in step.
fn poll_pause(poll_after_seconds: Option<f64>, estimated_wait_seconds: Option<f64>) -> Duration {
    let pause = poll_after_seconds
        .unwrap_or_else(|| (estimated_wait_seconds.unwrap_or(1.0) / 2.0).clamp(0.2, 2.0));
    let jitter = rand::rng().random_range(0.85..1.15);
    Duration::from_secs_f64(pause * jitter)
}

/// The body of an answer with one of the `wanted` statuses.
fn expect(step: Step, answer: Answer, wanted: &[u16]) -> Result<Value, End> {
    match answer {
        Ok((status, body)) if wanted.contains(&status) => Ok(body),
        other => Err(failure(step, other)),
    }
}

fn failure(step: Step, answer: Answer) -> End {
    let what = match answer {
        Ok((status, body)) => format!("{status} {}", body["code"].as_str().unwrap_or("-")),
        Err(_) => "no answer".into(),
    };
    End::Failed(step, what)
}

fn string_field(step: Step, body: &Value, field: &str) -> Result<String, End> {
    body[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| End::Failed(step, format!("answer without {field}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_runs_out_when_every_seat_collided() {
        let mut choice = Choice::new(Arc::new(vec!["s1".into(), "s2".into()]));
        for _ in 0..2 {
            let pick = choice.pick().unwrap();
            choice.exclude(pick);
        }
        assert_eq!(choice.pick(), None);
    }
}
