//! `matsuri loadtest live`: live comments (issue 21). `ingest` posts comments into one
//! room as fast as the server takes them, each through the rate limit and the spam check,
//! and checks the archive holds every accepted one; `fanout` has thousands of viewers
//! follow one room over the gateway while posters comment at a steady rate, and measures
//! post → receipt at the viewers, what each viewer is sent a second, and the sample's
//! share.

use std::fmt::Display;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use crate::loadtest::client::Api;

mod fanout;
mod ingest;

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Comments into one room as fast as they are accepted, the archive written.
    Ingest(ingest::IngestArgs),
    /// Many viewers on sockets, comments at a steady rate: latency and pacing.
    Fanout(fanout::FanoutArgs),
}

pub async fn run(mode: Mode) -> anyhow::Result<ExitCode> {
    match mode {
        Mode::Ingest(args) => ingest::run(args).await,
        Mode::Fanout(args) => fanout::run(args).await,
    }
}

fn show(label: &str, value: impl Display) {
    println!("{label:<18}{value}");
}

/// Opens a room as `staff`, puts it on air with the room's limit at its highest, and
/// returns its id.
async fn open_room(api: &Api, staff: &str, display_per_second: i64) -> anyhow::Result<String> {
    let (status, room) = api
        .send(
            Method::POST,
            "/live",
            Some(staff),
            Some(&json!({"title": "load test"})),
            None,
        )
        .await?;
    anyhow::ensure!(status == 201, "opening the room answered {status}: {room}");
    let id = room["id"]
        .as_str()
        .context("the room has no id")?
        .to_owned();
    let (status, body) = api
        .send(
            Method::POST,
            &format!("/live/{id}/start"),
            Some(staff),
            None,
            None,
        )
        .await?;
    anyhow::ensure!(status == 200, "starting the room answered {status}: {body}");
    let settings = json!({
        "ng_words": [],
        "rate_limit_per_minute": 600,
        "slow_mode_seconds": 0,
        "links_allowed": true,
        "display_per_second": display_per_second,
    });
    let (status, body) = api
        .send(
            Method::PUT,
            &format!("/live/{id}/moderation"),
            Some(staff),
            Some(&settings),
            None,
        )
        .await?;
    anyhow::ensure!(
        status == 200,
        "raising the limits answered {status}: {body}"
    );
    Ok(id)
}

/// Words viewers use; a comment is a few of them, so one viewer's comments are never
/// near-duplicates of each other.
const WORDS: [&str; 48] = [
    "最高",
    "かわいい",
    "すごい",
    "神",
    "きたー",
    "歌うま",
    "ギター",
    "ドラム",
    "ベース",
    "アンコール",
    "泣いた",
    "感動",
    "楽しい",
    "待ってた",
    "こんばんは",
    "大阪から",
    "東京から",
    "初見です",
    "今日も",
    "ありがとう",
    "演出",
    "照明",
    "衣装",
    "新曲",
    "名曲",
    "声",
    "最強",
    "nice",
    "amazing",
    "love",
    "this",
    "song",
    "great",
    "show",
    "tonight",
    "hello",
    "from",
    "Paris",
    "wow",
    "best",
    "encore",
    "vocals",
    "guitar",
    "solo",
    "drums",
    "again",
    "yes",
    "happy",
];

/// Comment `n` of viewer `who`: three to five words picked by a small mixing function.
fn saying(who: usize, n: u64) -> String {
    let mut x =
        (who as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ n.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let mut next = || {
        x ^= x >> 31;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 29;
        x
    };
    let count = 3 + (next() % 3) as usize;
    (0..count)
        .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sayings_vary() {
        let said: std::collections::HashSet<String> = (0..200).map(|n| saying(7, n)).collect();
        assert!(said.len() > 190, "{}", said.len());
        assert_ne!(saying(1, 0), saying(2, 0));
    }
}
