//! `matsuri loadtest chat`: the realtime gateway and chat over real WebSockets. `idle`
//! holds many authenticated sockets and measures what each costs the server; `messages`
//! has groups of members talk, measures send→receive latency and delivered messages a
//! second, and checks every member got every other member's message exactly once.

use std::fmt::Display;
use std::process::ExitCode;

use clap::Subcommand;

mod idle;
mod member;
mod messages;
pub(crate) mod socket;

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Many authenticated sockets held open: the server's memory per connection.
    Idle(idle::IdleArgs),
    /// Groups whose members all talk: deliveries a second, latency, exactly once.
    Messages(messages::MessagesArgs),
}

pub async fn run(mode: Mode) -> anyhow::Result<ExitCode> {
    match mode {
        Mode::Idle(args) => idle::run(args).await,
        Mode::Messages(args) => messages::run(args).await,
    }
}

fn show(label: &str, value: impl Display) {
    println!("{label:<16}{value}");
}
