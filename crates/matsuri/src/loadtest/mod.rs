//! Load scenarios that drive a running server over real HTTP with many concurrent
//! clients, print their figures, and check the system's invariants afterwards. A scenario
//! exits non-zero when an invariant fails.

pub(crate) mod chat;
mod client;
mod fanout;
mod flash_sale;
mod likes;
mod live;
mod stats;
mod ticket_rush;

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Chat over the realtime gateway: idle sockets held open, or groups talking.
    #[command(subcommand)]
    Chat(chat::Mode),
    /// Many buyers, one product, limited stock (seed 000 §1 under a stampede).
    FlashSale(flash_sale::FlashSaleArgs),
    /// Events through the outbox to three consumer groups (seed 004's fan-out).
    Fanout(fanout::FanoutArgs),
    /// Everyone likes one hot post, then random users like random posts (issue 20).
    Likes(likes::LikesArgs),
    /// Live comments: ingest into one room, or the paced fan-out to many viewers (issue 21).
    #[command(subcommand)]
    Live(live::Mode),
    /// Concert ticket rush: queue, admission, wallet, seat holds, payment (seed 003 LoadTest5).
    TicketRush(ticket_rush::TicketRushArgs),
}

pub async fn run(scenario: Scenario) -> anyhow::Result<ExitCode> {
    match scenario {
        Scenario::Chat(mode) => chat::run(mode).await,
        Scenario::FlashSale(args) => flash_sale::run(args).await,
        Scenario::Fanout(args) => fanout::run(args).await,
        Scenario::Likes(args) => likes::run(args).await,
        Scenario::Live(mode) => live::run(mode).await,
        Scenario::TicketRush(args) => ticket_rush::run(args).await,
    }
}
