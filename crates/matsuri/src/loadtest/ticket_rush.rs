//! `matsuri loadtest ticket-rush`: seed 003's LoadTest5. A concert goes on sale and every
//! virtual user at once joins the waiting queue, polls it until admitted (each poll held
//! by the server until then, with `--wait`), charges the wallet, holds a random seat and
//! pays for it from the wallet.
//!
//! The users all run together, so the queue sees the whole crowd and the waiting users
//! keep polling while the admitted ones buy; the requests themselves go out over real
//! HTTP, at most `--concurrency` in flight. With `--pick random` seats are picked at
//! random, as the seed's bots picked them, so collisions are expected: they are counted,
//! and the user tries another seat. With `--pick best` the server picks. Users told
//! `sold_out` go home.
//!
//! Reported beside the latencies: the requests answered by route against the fewest the
//! flow needs (a join and a status answer for every user, a charge, a hold and a payment
//! for every buyer), and the phases: joining, buying (first ticket to last), and the
//! time after the last ticket until the last user was told `sold_out`.
//!
//! Invariants checked at the end: every user got a queue token and was admitted or told
//! `sold_out`; no seat
//! is sold twice; every ticket's seat is `sold` and no other seat is; every 201 payment
//! is a ticket; money adds up (charged = balance + paid, paid = tickets × price, and the
//! wallets' own charged totals match the charges that answered 200).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Display;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Semaphore;

use super::client::{Api, StaffLogin, run_id};
use super::stats::{Latencies, progress, verdict};
use fan::{End, Journey, Pick, Rush, STEPS, StepTimes};

mod fan;

#[derive(Debug, Args)]
pub struct TicketRushArgs {
    /// The server to drive.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// How many virtual users rush for tickets.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Seats in the hall.
    #[arg(long, default_value_t = 9_000)]
    seats: usize,
    /// Users admitted from the queue at once (the event's `max_active`).
    #[arg(long, default_value_t = 2_000)]
    max_active: u32,
    /// Price of every seat, in yen.
    #[arg(long, default_value_t = 5_000)]
    price: i64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Seconds a waiting user asks the queue to hold its status request until admitted
    /// (`Prefer: wait`); 0 polls without it.
    #[arg(long, default_value_t = 20)]
    wait: u64,
    /// Held status requests open at once, apart from `--concurrency`.
    #[arg(long, default_value_t = 4_096)]
    waiting_connections: usize,
    /// How users pick seats: `random` (the seed's bots) or `best` (the server picks).
    #[arg(long, value_enum, default_value_t = Pick::Random)]
    pick: Pick,
    /// A staff account to create the event with.
    #[command(flatten)]
    staff: StaffLogin,
}

/// The hall is laid out in rows of this many seats, at most `MAX_ROWS` rows a section
/// and `MAX_SECTIONS` sections (the limits `POST /admin/events` accepts).
const SEATS_PER_ROW: usize = 50;
const MAX_ROWS: usize = 200;
const MAX_SECTIONS: usize = 50;

pub async fn run(args: TicketRushArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.users > 0 && args.seats > 0 && args.price > 0 && args.concurrency > 0,
        "--users, --seats, --price and --concurrency must be positive"
    );
    let api = Api::new(&args.url, args.concurrency + args.waiting_connections)?;
    let staff = api.login_staff(&args.staff).await?;
    let run_id = run_id();
    let event_id = create_event(&api, &staff, &args, &run_id).await?;

    println!(
        "ticket-rush: {} users, {} seats at {} yen, {} admitted at once, {} in flight, \
         status held up to {} s ({} at once), seats picked {:?}, against {}",
        args.users,
        args.seats,
        args.price,
        args.max_active,
        args.concurrency,
        args.wait,
        args.waiting_connections,
        args.pick,
        args.url
    );
    let users = api
        .register_many("fan", &run_id, args.users, args.concurrency)
        .await?;
    let seats = seat_ids(&api, &event_id, &staff, "?status=available").await?;
    anyhow::ensure!(
        seats.len() == args.seats,
        "the new event offers {} seats, not {}",
        seats.len(),
        args.seats
    );

    let rush = Rush {
        api: api.clone(),
        gate: Semaphore::new(args.concurrency),
        event_id: event_id.clone(),
        price: args.price,
        run_id,
        started: Instant::now(),
        seats: Arc::new(seats),
        wait: args.wait,
        waiting: Semaphore::new(args.waiting_connections.max(1)),
        pick: args.pick,
    };
    let started = rush.started;
    let journeys = rush.all_users(&users).await;
    let elapsed = started.elapsed();

    let mut tally = Tally::default();
    for journey in journeys {
        tally.add(journey);
    }
    let audit = audit(&api, &event_id, &staff, &users, args.concurrency).await?;
    tally.print(elapsed, &audit);

    Ok(verdict(verdicts(&tally, &audit, args.price)?))
}

/// Creates the concert, on sale at once, and returns its id.
async fn create_event(
    api: &Api,
    staff: &str,
    args: &TicketRushArgs,
    run_id: &str,
) -> anyhow::Result<String> {
    let starts_at = (OffsetDateTime::now_utc() + time::Duration::days(30))
        .replace_nanosecond(0)?
        .format(&Rfc3339)?;
    let body = json!({
        "name": format!("Ticket rush {run_id}"),
        "starts_at": starts_at,
        "max_active": args.max_active,
        "hold_seconds": 600,
        "sections": hall(args.seats, args.price)?,
    });
    let (status, event) = api
        .send(
            Method::POST,
            "/admin/events",
            Some(staff),
            Some(&body),
            None,
        )
        .await
        .context("creating the event")?;
    anyhow::ensure!(
        status == 201,
        "creating the event answered {status}: {event}"
    );
    event["id"]
        .as_str()
        .map(str::to_owned)
        .context("the event has no id")
}

/// Sections holding exactly `seats` seats: full sections of `MAX_ROWS` rows, then what
/// is left of the full rows, then one short row for the remainder.
fn hall(seats: usize, price: i64) -> anyhow::Result<Vec<Value>> {
    let mut rows_left = seats / SEATS_PER_ROW;
    let mut sections = Vec::new();
    while rows_left > 0 {
        let rows = rows_left.min(MAX_ROWS);
        sections.push((rows, SEATS_PER_ROW));
        rows_left -= rows;
    }
    let short_row = seats % SEATS_PER_ROW;
    if short_row > 0 {
        sections.push((1, short_row));
    }
    anyhow::ensure!(
        sections.len() <= MAX_SECTIONS,
        "{seats} seats need more than {MAX_SECTIONS} sections"
    );
    Ok(sections
        .into_iter()
        .enumerate()
        .map(|(i, (rows, seats_per_row))| {
            json!({"name": section_name(i), "rows": rows, "seats_per_row": seats_per_row, "price": price})
        })
        .collect())
}

/// A, B, … Z, AA, AB, …
fn section_name(i: usize) -> String {
    let letter = |n: usize| char::from(b'A' + (n % 26) as u8);
    if i < 26 {
        letter(i).to_string()
    } else {
        format!("{}{}", letter(i / 26 - 1), letter(i))
    }
}

/// The ids of the event's seats (`filter` is a query string, or empty for all of them).
/// Only the ids are read from the answer: every user asks for the free seats after
/// collisions, and the load generator shares the machine with the server.
async fn seat_ids(
    api: &Api,
    event_id: &str,
    token: &str,
    filter: &str,
) -> anyhow::Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct SeatMap {
        items: Vec<SeatId>,
    }
    #[derive(serde::Deserialize)]
    struct SeatId {
        id: String,
    }
    let map: SeatMap = api
        .get_as(&format!("/events/{event_id}/seats{filter}"), token)
        .await?;
    Ok(map.items.into_iter().map(|seat| seat.id).collect())
}

/// The rush as the load generator saw it.
#[derive(Debug, Default)]
struct Tally {
    users: usize,
    tokens: usize,
    admitted: usize,
    charges: usize,
    charged: i64,
    held: usize,
    paid: usize,
    /// When the last join answered: the whole crowd was in the queue.
    last_joined: Duration,
    /// When the first payment answered.
    first_paid: Option<Duration>,
    /// When the last payment answered: the sale's length.
    last_paid: Duration,
    /// When the last user was told `sold_out`.
    last_told: Option<Duration>,
    collisions: usize,
    /// Every hold request: when it was answered and how long it took.
    holds: Vec<(Duration, Duration)>,
    sold_out: usize,
    told_sold_out: usize,
    expired: usize,
    /// `step status code` → how many users stopped there.
    errors: BTreeMap<String, usize>,
    times: StepTimes,
}

impl Tally {
    fn add(&mut self, j: Journey) {
        self.users += 1;
        self.tokens += usize::from(j.token);
        self.admitted += usize::from(j.admitted);
        if let Some(amount) = j.charged {
            self.charges += 1;
            self.charged += amount;
        }
        self.held += usize::from(j.held);
        self.paid += usize::from(j.paid);
        self.last_joined = self.last_joined.max(j.joined_after.unwrap_or_default());
        if let Some(paid) = j.paid_after {
            self.first_paid = Some(self.first_paid.map_or(paid, |first| first.min(paid)));
            self.last_paid = self.last_paid.max(paid);
        }
        if let Some(told) = j.told_sold_out_after {
            self.last_told = Some(self.last_told.map_or(told, |last| last.max(told)));
        }
        self.collisions += j.collisions;
        self.holds.extend(j.holds);
        match j.stopped {
            None => {}
            Some(End::SoldOut) => self.sold_out += 1,
            Some(End::ToldSoldOut) => self.told_sold_out += 1,
            Some(End::Expired) => self.expired += 1,
            Some(End::Failed(step, what)) => {
                *self
                    .errors
                    .entry(format!("{} {what}", step.name()))
                    .or_default() += 1;
            }
        }
        self.times.extend(j.times);
    }

    fn print(&mut self, elapsed: Duration, audit: &Audit) {
        let errors: usize = self.errors.values().sum();
        let secs = elapsed.as_secs_f64();
        println!();
        show("users", self.users);
        show("tokens issued", self.tokens);
        show("admitted", self.admitted);
        show(
            "charged",
            format!("{} ({} yen)", self.charges, self.charged),
        );
        show("held", self.held);
        show("paid", self.paid);
        show("collisions", self.collisions);
        show("told sold_out", self.told_sold_out);
        show("no seat left", self.sold_out);
        show("expired", self.expired);
        show("other errors", errors);
        for (what, n) in &self.errors {
            show("", format!("{what} × {n}"));
        }
        show("elapsed", format!("{secs:.2} s"));
        show("paid/s", format!("{:.0}", self.paid as f64 / secs));
        let selling = self.last_paid.as_secs_f64().max(f64::EPSILON);
        show(
            "selling",
            format!(
                "{selling:.2} s to the last ticket, {:.0} paid/s while it lasted",
                self.paid as f64 / selling
            ),
        );
        if let Some(first) = self.first_paid {
            let buying = (self.last_paid - first).as_secs_f64().max(f64::EPSILON);
            show(
                "buying",
                format!(
                    "the whole crowd had joined at {:.2} s, the first ticket came at {:.2} s; \
                     {:.0} paid/s from the first ticket to the last",
                    self.last_joined.as_secs_f64(),
                    first.as_secs_f64(),
                    self.paid.saturating_sub(1) as f64 / buying
                ),
            );
        }
        if let Some(told) = self.last_told {
            show(
                "after",
                format!(
                    "the last user was told sold_out at {:.2} s, {:.2} s after the last ticket",
                    told.as_secs_f64(),
                    told.saturating_sub(self.last_paid).as_secs_f64()
                ),
            );
        }
        let answered: usize = STEPS.iter().map(|&step| self.times.of(step).len()).sum();
        let needed = 2 * self.users + 3 * self.paid;
        show(
            "requests",
            format!(
                "{answered} answered, {needed} needed at least (×{:.2}): {}",
                answered as f64 / needed.max(1) as f64,
                STEPS
                    .iter()
                    .map(|&step| format!("{} {}", step.name(), self.times.of(step).len()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        for step in STEPS {
            let latencies = self.times.of(step);
            let count = latencies.len();
            let label = format!("latency {}", step.name());
            show(
                &label,
                format!("{}  ({count} requests)", latencies.summary()),
            );
        }
        // Most hold requests of a big rush are late users colliding after the sell-out.
        let mut selling_holds = Latencies::default();
        for &(answered, took) in &self.holds {
            if answered <= self.last_paid {
                selling_holds.record(took);
            }
        }
        let count = selling_holds.len();
        show(
            "hold, selling",
            format!(
                "{}  ({count} requests answered by the last ticket)",
                selling_holds.summary()
            ),
        );
        show("tickets", audit.ticket_seats.len());
        show("seats sold", audit.sold());
    }
}

fn show(label: &str, value: impl Display) {
    println!("{label:<16}{value}");
}

/// What the server says after the rush: every user's tickets and wallet, every seat.
#[derive(Debug, Default)]
struct Audit {
    ticket_seats: Vec<String>,
    seat_status: HashMap<String, String>,
    balance: i64,
    charged_total: i64,
    paid_total: i64,
}

impl Audit {
    fn sold(&self) -> usize {
        self.seat_status.values().filter(|s| *s == "sold").count()
    }
}

async fn audit(
    api: &Api,
    event_id: &str,
    staff: &str,
    users: &[String],
    concurrency: usize,
) -> anyhow::Result<Audit> {
    let bar = progress(users.len(), "audit");
    let per_user: Vec<anyhow::Result<(Vec<String>, [i64; 3])>> = futures::stream::iter(users)
        .map(|token| {
            let bar = &bar;
            async move {
                let found = audit_user(api, token).await;
                bar.inc(1);
                found
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    bar.finish_and_clear();
    let mut audit = Audit::default();
    for found in per_user {
        let (seats, [balance, charged_total, paid_total]) = found?;
        audit.ticket_seats.extend(seats);
        audit.balance += balance;
        audit.charged_total += charged_total;
        audit.paid_total += paid_total;
    }
    let seats = api
        .list_all(&format!("/events/{event_id}/seats"), staff)
        .await?;
    audit.seat_status = seats
        .iter()
        .filter_map(|s| {
            Some((
                s["id"].as_str()?.to_owned(),
                s["status"].as_str()?.to_owned(),
            ))
        })
        .collect();
    Ok(audit)
}

/// One user's ticket seats and wallet `[balance, charged_total, paid_total]`.
async fn audit_user(api: &Api, token: &str) -> anyhow::Result<(Vec<String>, [i64; 3])> {
    let seats = api
        .list_all("/tickets", token)
        .await?
        .iter()
        .map(|t| {
            t["seat_id"]
                .as_str()
                .map(str::to_owned)
                .context("a ticket has no seat_id")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (status, wallet) = api
        .send(Method::GET, "/wallet", Some(token), None, None)
        .await
        .context("reading a wallet")?;
    anyhow::ensure!(
        status == 200,
        "reading a wallet answered {status}: {wallet}"
    );
    let amount = |field: &str| {
        wallet[field]
            .as_i64()
            .with_context(|| format!("the wallet has no {field}: {wallet}"))
    };
    Ok((
        seats,
        [
            amount("balance")?,
            amount("charged_total")?,
            amount("paid_total")?,
        ],
    ))
}

fn verdicts(t: &Tally, a: &Audit, price: i64) -> anyhow::Result<Vec<(&'static str, bool)>> {
    let tickets = a.ticket_seats.len();
    let distinct: HashSet<&String> = a.ticket_seats.iter().collect();
    let on_sold_seats = a
        .ticket_seats
        .iter()
        .all(|seat| a.seat_status.get(seat).is_some_and(|s| s == "sold"));
    Ok(vec![
        ("a queue token for every user", t.tokens == t.users),
        (
            "every queued user admitted or told sold_out (unless told expired)",
            t.admitted + t.expired + t.told_sold_out == t.tokens,
        ),
        ("no seat sold twice", distinct.len() == tickets),
        (
            "every ticket's seat sold, and no other",
            on_sold_seats && a.sold() == tickets,
        ),
        ("every 201 payment is a ticket", t.paid == tickets),
        (
            "charged = balance + paid",
            t.charged == a.balance + a.paid_total,
        ),
        (
            "paid = tickets × price",
            a.paid_total == i64::try_from(tickets)? * price,
        ),
        ("wallets count every charge", a.charged_total == t.charged),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seats_in(sections: &[Value]) -> u64 {
        sections
            .iter()
            .map(|s| s["rows"].as_u64().unwrap() * s["seats_per_row"].as_u64().unwrap())
            .sum()
    }

    #[test]
    fn the_hall_holds_exactly_the_seats_asked_for() {
        for seats in [1, 49, 50, 9_000, 9_001, 10_000, 10_049, 123_456] {
            let sections = hall(seats, 5_000).unwrap();
            assert_eq!(seats_in(&sections), seats as u64, "{seats}");
            assert!(sections.iter().all(|s| s["rows"].as_u64().unwrap() <= 200));
        }
        assert!(hall(500_000, 5_000).is_ok());
        assert!(hall(500_001, 5_000).is_err());
    }

    #[test]
    fn section_names_run_past_z() {
        assert_eq!(section_name(0), "A");
        assert_eq!(section_name(25), "Z");
        assert_eq!(section_name(26), "AA");
        assert_eq!(section_name(49), "AX");
    }
}
