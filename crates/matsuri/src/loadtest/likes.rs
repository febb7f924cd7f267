//! `matsuri loadtest likes`: issue 20's benchmark. Every user likes one hot post once, so
//! all writers meet on one post's counter; then random users like random posts of many,
//! duplicates included (a like is idempotent), so the writes spread out.
//!
//! Invariants checked at the end: every like answered 200 `liked`; the hot post's
//! `like_count` is the number of users, its likers list has that many rows, each user once
//! and no one else; and every post of the second phase counts exactly the distinct users
//! the load generator sent to like it.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use rand::Rng;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::client::{Answer, Api, run_id};
use super::stats::{Latencies, progress, verdict};

#[derive(Debug, Args)]
pub struct LikesArgs {
    /// The server to drive.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// How many users; each likes the hot post once.
    #[arg(long, default_value_t = 20_000)]
    users: usize,
    /// Posts of the second phase.
    #[arg(long, default_value_t = 1_000)]
    posts: usize,
    /// Likes of the second phase, each by a random user of a random post.
    #[arg(long, default_value_t = 20_000)]
    likes: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
}

/// What a burst of likes came to.
struct Storm {
    elapsed: Duration,
    latencies: Latencies,
    /// Answered, but not 200 `liked: true`.
    refused: usize,
    /// No answer at all.
    unanswered: usize,
    first_failure: Option<String>,
}

impl Storm {
    fn print(&mut self, label: &str) {
        let sent = self.latencies.len();
        println!(
            "{label:<14}{sent} likes in {:.2} s, {:.0} likes/s",
            self.elapsed.as_secs_f64(),
            sent as f64 / self.elapsed.as_secs_f64()
        );
        println!("latency       {}", self.latencies.summary());
        if self.refused + self.unanswered > 0 {
            println!(
                "failed        {} refused, {} unanswered; first: {}",
                self.refused,
                self.unanswered,
                self.first_failure.as_deref().unwrap_or("-")
            );
        }
    }

    fn all_liked(&self) -> bool {
        self.refused == 0 && self.unanswered == 0
    }
}

#[derive(Deserialize)]
struct PostCount {
    like_count: i64,
}

pub async fn run(args: LikesArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.users > 0 && args.posts > 0,
        "--users and --posts must be positive"
    );
    let api = Api::new(&args.url, args.concurrency)?;
    let run_id = run_id();
    println!(
        "likes: {} users, then {} posts and {} random likes, {} in flight, against {}",
        args.users, args.posts, args.likes, args.concurrency, args.url
    );

    let author = api
        .register(
            &format!("author-{run_id}@loadtest.localhost"),
            "load-test-password",
            "Load test author",
        )
        .await?
        .token;
    let accounts = api
        .register_accounts("liker", &run_id, args.users, args.concurrency)
        .await?;
    let (tokens, user_ids): (Vec<String>, HashSet<String>) =
        accounts.into_iter().map(|a| (a.token, a.user_id)).unzip();
    let hot = write_post(&api, &author, "The hot post").await?;

    // Phase 1: everyone on one row.
    let everyone: Vec<(usize, usize)> = (0..tokens.len()).map(|user| (user, 0)).collect();
    let mut hot_storm = like_storm(
        &api,
        &tokens,
        std::slice::from_ref(&hot),
        &everyone,
        args.concurrency,
        "hot post",
    )
    .await;

    // Phase 2: likes spread over many posts.
    let posts = write_posts(&api, &author, args.posts, args.concurrency).await?;
    let pairs: Vec<(usize, usize)> = {
        let mut rng = rand::rng();
        (0..args.likes)
            .map(|_| {
                (
                    rng.random_range(0..tokens.len()),
                    rng.random_range(0..posts.len()),
                )
            })
            .collect()
    };
    let mut spread_storm = like_storm(
        &api,
        &tokens,
        &posts,
        &pairs,
        args.concurrency,
        "many posts",
    )
    .await;

    println!();
    hot_storm.print("hot post");
    spread_storm.print("many posts");

    let hot_count = like_count(&api, &author, &hot).await?;
    let paged = Instant::now();
    let likers = api
        .list_all(&format!("/posts/{hot}/likes?limit=100"), &author)
        .await?;
    let paged = paged.elapsed();
    let liker_ids: Vec<&str> = likers
        .iter()
        .filter_map(|l| l["user"]["id"].as_str())
        .collect();
    let distinct_likers: HashSet<&str> = liker_ids.iter().copied().collect();
    let only_users = distinct_likers.iter().all(|id| user_ids.contains(*id));
    println!("hot count     {hot_count} (users {})", tokens.len());
    println!(
        "likers list   {} rows ({} distinct) in {:.2} s",
        likers.len(),
        distinct_likers.len(),
        paged.as_secs_f64()
    );

    let expected = distinct_likers_per_post(&pairs, posts.len());
    let counts = like_counts(&api, &author, &posts, args.concurrency).await?;
    let mismatched: Vec<(usize, i64, i64)> = counts
        .iter()
        .zip(&expected)
        .enumerate()
        .filter(|(_, (got, want))| got != want)
        .map(|(i, (got, want))| (i, *got, *want))
        .collect();
    println!(
        "posts checked {} of {}, {} mismatched",
        counts.len(),
        posts.len(),
        mismatched.len()
    );
    for (i, got, want) in mismatched.iter().take(5) {
        println!(
            "mismatch      post {}: like_count {got}, distinct likers sent {want}",
            posts[*i]
        );
    }

    let users = i64::try_from(tokens.len())?;
    let checks = [
        (
            "every like answered 200 liked",
            hot_storm.all_liked() && spread_storm.all_liked(),
        ),
        ("hot post like_count = users", hot_count == users),
        (
            "hot post likers rows = like_count",
            i64::try_from(likers.len())? == hot_count,
        ),
        (
            "hot post likers = the users, each once",
            liker_ids.len() == distinct_likers.len()
                && distinct_likers.len() == user_ids.len()
                && only_users,
        ),
        (
            "each post's like_count = distinct likers sent",
            mismatched.is_empty(),
        ),
    ];
    Ok(verdict(checks))
}

/// Sends `PUT /posts/{id}/like` for each (user, post) pair, at most `concurrency` at once.
async fn like_storm(
    api: &Api,
    tokens: &[String],
    posts: &[String],
    pairs: &[(usize, usize)],
    concurrency: usize,
    what: &str,
) -> Storm {
    let bar = progress(pairs.len(), what);
    let started = Instant::now();
    let answers: Vec<(Duration, Answer)> = futures::stream::iter(pairs)
        .map(|&(user, post)| {
            let bar = bar.clone();
            let path = format!("/posts/{}/like", posts[post]);
            async move {
                let t = Instant::now();
                let answer = api
                    .send(Method::PUT, &path, Some(&tokens[user]), None, None)
                    .await;
                bar.inc(1);
                (t.elapsed(), answer)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    bar.finish_and_clear();

    let mut storm = Storm {
        elapsed,
        latencies: Latencies::default(),
        refused: 0,
        unanswered: 0,
        first_failure: None,
    };
    for (took, answer) in answers {
        storm.latencies.record(took);
        let failure = match answer {
            Ok((200, body)) if body["liked"].as_bool() == Some(true) => continue,
            Ok((status, body)) => {
                storm.refused += 1;
                format!("{status}: {body}")
            }
            Err(e) => {
                storm.unanswered += 1;
                e.to_string()
            }
        };
        storm.first_failure.get_or_insert(failure);
    }
    storm
}

/// Writes a post as `token` and returns its id.
async fn write_post(api: &Api, token: &str, text: &str) -> anyhow::Result<String> {
    let (status, post) = api
        .send(
            Method::POST,
            "/posts",
            Some(token),
            Some(&json!({ "text": text })),
            None,
        )
        .await
        .context("writing a post")?;
    anyhow::ensure!(status == 201, "writing a post answered {status}: {post}");
    post["id"]
        .as_str()
        .map(str::to_owned)
        .context("the post has no id")
}

/// Writes `count` posts (set-up, with a progress bar) and returns their ids in order.
async fn write_posts(
    api: &Api,
    token: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    let bar = progress(count, "posts");
    let ids: Vec<anyhow::Result<String>> = futures::stream::iter(0..count)
        .map(|i| {
            let bar = bar.clone();
            async move {
                let id = write_post(api, token, &format!("Post {i} of the likes load test")).await;
                bar.inc(1);
                id
            }
        })
        .buffered(concurrency.clamp(1, 64))
        .collect()
        .await;
    bar.finish_and_clear();
    ids.into_iter().collect()
}

async fn like_count(api: &Api, token: &str, post_id: &str) -> anyhow::Result<i64> {
    let post: PostCount = api
        .get_as(&format!("/posts/{post_id}"), token)
        .await
        .context("reading a post")?;
    Ok(post.like_count)
}

/// Every post's `like_count`, in the order of `posts`.
async fn like_counts(
    api: &Api,
    token: &str,
    posts: &[String],
    concurrency: usize,
) -> anyhow::Result<Vec<i64>> {
    let counts: Vec<anyhow::Result<i64>> = futures::stream::iter(posts)
        .map(|id| like_count(api, token, id))
        .buffered(concurrency.clamp(1, 64))
        .collect()
        .await;
    counts.into_iter().collect()
}

/// How many distinct users each post was sent likes by.
fn distinct_likers_per_post(pairs: &[(usize, usize)], posts: usize) -> Vec<i64> {
    let mut distinct: Vec<(usize, usize)> = pairs.iter().map(|&(u, p)| (p, u)).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let mut counts = vec![0; posts];
    for (post, _) in distinct {
        counts[post] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_likes_count_once() {
        let pairs = [(0, 1), (1, 1), (0, 1), (2, 0), (2, 0)];
        assert_eq!(distinct_likers_per_post(&pairs, 3), vec![1, 2, 0]);
    }
}
