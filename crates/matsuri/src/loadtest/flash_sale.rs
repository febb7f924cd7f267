//! `matsuri loadtest flash-sale`: N buyers race for one product with limited stock; a
//! share of them pay with a card that is declined.
//!
//! Invariants checked at the end: stock never negative, exactly `stock` units sold (the
//! approved buyers who were turned away while declined payments still held stock try
//! again until it is gone), every sold unit is a 201, and every declined payment gave its
//! unit back (sold + available = stock).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Api, StaffLogin, run_id};
use super::stats::{Latencies, progress, verdict};

#[derive(Debug, Args)]
pub struct FlashSaleArgs {
    /// The server to drive.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// How many distinct buyers.
    #[arg(long, default_value_t = 20_000)]
    buyers: usize,
    /// Units of the product on sale.
    #[arg(long, default_value_t = 1_000)]
    stock: i64,
    /// Share of buyers whose card is declined, in percent.
    #[arg(long, default_value_t = 10)]
    declined_pct: u8,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// A staff account to create the product with.
    #[command(flatten)]
    staff: StaffLogin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Paid,
    OutOfStock,
    Declined,
    Other(u16),
    Transport,
}

struct Buyer {
    token: String,
    card: &'static str,
}

pub async fn run(args: FlashSaleArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.declined_pct <= 100, "--declined-pct is a percentage");
    anyhow::ensure!(
        args.stock > 0 && args.buyers > 0,
        "--stock and --buyers must be positive"
    );
    let api = Api::new(&args.url, args.concurrency)?;
    let staff = api.login_staff(&args.staff).await?;
    let run_id = run_id();

    let (status, product) = api
        .send(
            Method::POST,
            "/admin/products",
            Some(&staff),
            Some(&json!({"sku": format!("FLASH-{run_id}"), "name": "Flash-sale item", "price": 1000, "stock": args.stock})),
            None,
        )
        .await?;
    anyhow::ensure!(
        status == 201,
        "creating the product answered {status}: {product}"
    );
    let product_id = product["id"]
        .as_str()
        .context("the product has no id")?
        .to_owned();

    println!(
        "flash-sale: {} buyers, stock {}, {} % declined, {} in flight, against {}",
        args.buyers, args.stock, args.declined_pct, args.concurrency, args.url
    );
    let buyers = register_buyers(&api, &args, &run_id).await?;

    let started = Instant::now();
    let bar = progress(buyers.len(), "checkout");
    let (mut outcomes, mut latencies, mut last_sale) = attack(
        &api,
        &product_id,
        &buyers,
        (0..buyers.len()).collect(),
        args.concurrency,
        &run_id,
        0,
        &bar,
    )
    .await;
    bar.finish_and_clear();
    let first_wave = started.elapsed();
    let attempts_first = latencies.len();

    // Approved buyers turned away while declined payments still held units try again,
    // as real shoppers would, until the stock is gone.
    let mut wave = 1;
    loop {
        let available = available(&api, &product_id).await?;
        let retry: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(i, o)| **o == Outcome::OutOfStock && buyers[*i].card == "tok_visa")
            .map(|(i, _)| i)
            .collect();
        if available == 0 || retry.is_empty() || wave > 20 {
            break;
        }
        let bar = progress(retry.len(), "retry");
        let (again, more, sold_again) = attack(
            &api,
            &product_id,
            &buyers,
            retry.clone(),
            args.concurrency,
            &run_id,
            wave,
            &bar,
        )
        .await;
        bar.finish_and_clear();
        for (slot, outcome) in retry.iter().zip(again) {
            outcomes[*slot] = outcome;
        }
        latencies.extend(more);
        last_sale = last_sale.max(sold_again);
        wave += 1;
    }
    let elapsed = started.elapsed();

    let count = |o: Outcome| outcomes.iter().filter(|x| **x == o).count();
    let paid = count(Outcome::Paid);
    let out_of_stock = count(Outcome::OutOfStock);
    let declined = count(Outcome::Declined);
    let transport = count(Outcome::Transport);
    let other = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Other(_)))
        .count();
    let available = available(&api, &product_id).await?;
    let sold = args.stock - available;
    let approved_buyers = buyers.iter().filter(|b| b.card == "tok_visa").count();
    let expected_sold = args.stock.min(i64::try_from(approved_buyers)?);

    println!();
    println!(
        "attempts      {} ({} in the first wave, {} retry waves)",
        latencies.len(),
        attempts_first,
        wave - 1
    );
    println!(
        "first wave    {:.2} s, {:.0} attempts/s",
        first_wave.as_secs_f64(),
        attempts_first as f64 / first_wave.as_secs_f64()
    );
    println!(
        "overall       {:.2} s, {:.0} attempts/s",
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    if let Some(at) = last_sale {
        let selling = at.duration_since(started).as_secs_f64();
        println!(
            "selling       last sale after {selling:.2} s ({:.0} paid/s while stock lasted)",
            paid as f64 / selling
        );
    }
    println!("paid          {paid}");
    println!("out of stock  {out_of_stock}");
    println!("declined      {declined}");
    println!("other status  {other}");
    println!("no answer     {transport}");
    println!("latency       {}", latencies.summary());
    println!("available     {available}");

    let checks = [
        ("stock never negative", available >= 0),
        ("exactly the stock sold", sold == expected_sold),
        ("every sold unit answered 201", i64::try_from(paid)? == sold),
        (
            "declined payments gave their units back",
            sold + available == args.stock && i64::try_from(paid)? + available == args.stock,
        ),
        ("every request answered", transport == 0 && other == 0),
    ];
    Ok(verdict(checks))
}

async fn register_buyers(
    api: &Api,
    args: &FlashSaleArgs,
    run_id: &str,
) -> anyhow::Result<Vec<Buyer>> {
    let tokens = api
        .register_many("buyer", run_id, args.buyers, args.concurrency)
        .await?;
    let declined_every = usize::from(args.declined_pct);
    Ok(tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| Buyer {
            token,
            // Spread the declined cards evenly over the crowd.
            card: if i % 100 < declined_every {
                "tok_declined"
            } else {
                "tok_visa"
            },
        })
        .collect())
}

#[allow(clippy::too_many_arguments)]
async fn attack(
    api: &Api,
    product_id: &str,
    buyers: &[Buyer],
    who: Vec<usize>,
    concurrency: usize,
    run_id: &str,
    wave: usize,
    bar: &indicatif::ProgressBar,
) -> (Vec<Outcome>, Latencies, Option<Instant>) {
    let body = Arc::new(json!({
        "items": [{"product_id": product_id, "quantity": 1}],
        "shipping_address": {"name": "Load Test", "postal_code": "100-0001", "address": "Chiyoda 1-1, Tokyo"},
        "payment": {"method": "card", "card_token": "tok_visa"},
    }));
    let mut results: Vec<(usize, Outcome, Duration, Instant)> =
        futures::stream::iter(who.into_iter().enumerate())
            .map(|(slot, i)| {
                let api = api.clone();
                let bar = bar.clone();
                let mut body: Value = (*body).clone();
                body["payment"]["card_token"] = Value::from(buyers[i].card);
                let key = format!("{run_id}-{i}-{wave}");
                let token = buyers[i].token.clone();
                async move {
                    let t = Instant::now();
                    let answer = api
                        .send(
                            Method::POST,
                            "/orders",
                            Some(&token),
                            Some(&body),
                            Some(&key),
                        )
                        .await;
                    let outcome = match answer {
                        Ok((201, _)) => Outcome::Paid,
                        Ok((409, _)) => Outcome::OutOfStock,
                        Ok((402, _)) => Outcome::Declined,
                        Ok((status, _)) => Outcome::Other(status),
                        Err(_) => Outcome::Transport,
                    };
                    bar.inc(1);
                    (slot, outcome, t.elapsed(), Instant::now())
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    // Answers arrive as they finish; put them back in the order asked.
    results.sort_unstable_by_key(|(slot, _, _, _)| *slot);
    let last_sale = results
        .iter()
        .filter(|(_, o, _, _)| *o == Outcome::Paid)
        .map(|(_, _, _, at)| *at)
        .max();
    let mut latencies = Latencies::default();
    let outcomes = results
        .into_iter()
        .map(|(_, o, d, _)| {
            latencies.record(d);
            o
        })
        .collect();
    (outcomes, latencies, last_sale)
}

async fn available(api: &Api, product_id: &str) -> anyhow::Result<i64> {
    let (status, body) = api
        .send(
            Method::GET,
            &format!("/products/{product_id}"),
            None,
            None,
            None,
        )
        .await?;
    anyhow::ensure!(status == 200, "reading the product answered {status}");
    body["available"]
        .as_i64()
        .context("the product has no availability")
}
