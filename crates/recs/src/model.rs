//! The recommender itself, free of I/O: fit item-item and user-user neighbours on a user ×
//! item matrix of weighted activity, score every user's unseen items from both, and
//! measure it offline against the popularity baseline on a held-out split.

use serde::{Deserialize, Serialize};

use crate::sparse::{Csr, Scratch, keep_top, par_rows, top_neighbours};

/// How the model is fitted and how much it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub neighbours: usize,
    pub user_neighbours: usize,
    pub top_n: usize,
    pub shrinkage: f32,
    pub bm25_k1: f32,
    pub bm25_b: f32,
    pub user_share: f32,
    /// Users followed per item when looking for a user's neighbours.
    pub posting: usize,
}

/// Why an item is recommended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Close to items the user interacted with.
    SimilarItems,
    /// Liked by users who behave like this one.
    SimilarUsers,
    /// Popular in the last days: the run did not know the user, or found nothing.
    Popular,
}

/// A fitted model: each item's and each user's nearest neighbours.
#[derive(Debug, Default)]
pub struct Model {
    pub items: Vec<Vec<(u32, f32)>>,
    pub users: Vec<Vec<(u32, f32)>>,
}

/// Fits both neighbourhoods on `weights` (users × items, raw summed kind weights).
pub fn fit(weights: &Csr, params: &Params) -> Model {
    let items = weights.transpose().bm25(params.bm25_k1, params.bm25_b);
    let users = items.transpose();
    let item_neighbours = top_neighbours(&items, &users, params.neighbours, params.shrinkage, None);
    let user_neighbours = if params.user_share > 0.0 {
        top_neighbours(
            &users,
            &items,
            params.user_neighbours,
            params.shrinkage,
            Some(params.posting),
        )
    } else {
        Vec::new()
    };
    Model {
        items: item_neighbours,
        users: user_neighbours,
    }
}

/// Every user's top `n` items of `weights`' columns, leaving out each user's row of
/// `exclude` (same shape as `weights`, only its pattern counts).
pub fn recommend_all(
    model: &Model,
    weights: &Csr,
    exclude: &Csr,
    n: usize,
    user_share: f32,
) -> Vec<Vec<(u32, f32, Reason)>> {
    let items = weights.cols;
    par_rows(
        weights.rows,
        |scratch, u| recommend(model, weights, exclude, u, n, user_share, scratch),
        2 * items,
    )
}

fn recommend(
    model: &Model,
    weights: &Csr,
    exclude: &Csr,
    u: usize,
    n: usize,
    user_share: f32,
    scratch: &mut Scratch,
) -> Vec<(u32, f32, Reason)> {
    let items = u32::try_from(weights.cols).unwrap_or(u32::MAX);
    let (own, own_weights) = weights.row(u);
    for (i, w) in own.iter().zip(own_weights) {
        let strength = w.ln_1p();
        for (j, s) in &model.items[*i as usize] {
            scratch.add(*j, strength * s);
        }
    }
    if let Some(neighbours) = model.users.get(u).filter(|_| user_share > 0.0) {
        for (v, s) in neighbours {
            let (theirs, their_weights) = weights.row(*v as usize);
            for (j, w) in theirs.iter().zip(their_weights) {
                scratch.add(items + j, s * w.ln_1p());
            }
        }
    }
    let mut sums: Vec<(u32, f32)> = scratch.drain().collect();
    sums.sort_unstable_by_key(|(cell, _)| cell % items.max(1));
    let top_of = |from_users: bool| {
        sums.iter()
            .filter(|(cell, _)| (*cell >= items) == from_users)
            .map(|(_, s)| *s)
            .fold(0.0_f32, f32::max)
            .max(f32::MIN_POSITIVE)
    };
    let (item_top, user_top) = (top_of(false), top_of(true));
    let excluded = exclude.row(u).0;
    let mut scored: Vec<(u32, f32, Reason)> = Vec::new();
    for group in sums.chunk_by(|a, b| a.0 % items == b.0 % items) {
        let j = group[0].0 % items;
        if excluded.binary_search(&j).is_ok() {
            continue;
        }
        let (mut by_items, mut by_users) = (0.0, 0.0);
        for (cell, s) in group {
            if *cell >= items {
                by_users = user_share * s / user_top;
            } else {
                by_items = (1.0 - user_share) * s / item_top;
            }
        }
        let reason = if by_users > by_items {
            Reason::SimilarUsers
        } else {
            Reason::SimilarItems
        };
        scored.push((j, by_items + by_users, reason));
    }
    let mut ranked: Vec<(u32, f32)> = scored.iter().map(|(j, s, _)| (*j, *s)).collect();
    keep_top(&mut ranked, n);
    ranked
        .into_iter()
        .filter_map(|(j, s)| {
            scored
                .iter()
                .find(|(k, _, _)| *k == j)
                .map(|(_, _, reason)| (j, s, *reason))
        })
        .collect()
}

/// Items by how many users interacted with them, most first.
pub fn by_popularity(weights: &Csr) -> Vec<(u32, f32)> {
    let mut counts = vec![0_f32; weights.cols];
    for &c in &weights.indices {
        counts[c as usize] += 1.0;
    }
    let mut ranked: Vec<(u32, f32)> = counts
        .into_iter()
        .enumerate()
        .filter(|(_, c)| *c > 0.0)
        .map(|(j, c)| (u32::try_from(j).unwrap_or(u32::MAX), c))
        .collect();
    let k = ranked.len();
    keep_top(&mut ranked, k);
    ranked
}

/// The offline evaluation of a run, on each user's last day held out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Metrics {
    pub precision_at_10: f64,
    pub recall_at_10: f64,
    pub ndcg_at_10: f64,
    /// Precision@10 of recommending the most popular unseen items on the same split.
    pub popular_precision_at_10: f64,
    /// Users with held-out items the figures are averaged over.
    pub users_evaluated: u64,
}

const AT: usize = 10;

/// Fits on `train` (users × items), recommends each user `AT` items they have not seen in
/// training (popular ones for a user without training rows) and scores them against
/// `held_out` (each user's sorted items of the held-out day, unseen in training).
pub fn evaluate(train: &Csr, held_out: &[Vec<u32>], params: &Params) -> Metrics {
    let model = fit(train, params);
    let lists = recommend_all(&model, train, train, AT, params.user_share);
    let popular = by_popularity(train);
    let mut sums = [0.0_f64; 4];
    let mut evaluated = 0_u64;
    for (u, truth) in held_out.iter().enumerate() {
        if truth.is_empty() {
            continue;
        }
        evaluated += 1;
        let seen = train.row(u).0;
        let popular_list: Vec<u32> = popular
            .iter()
            .map(|(j, _)| *j)
            .filter(|j| seen.binary_search(j).is_err())
            .take(AT)
            .collect();
        let mut ours: Vec<u32> = lists[u].iter().map(|(j, _, _)| *j).collect();
        for j in &popular_list {
            if ours.len() >= AT {
                break;
            }
            if !ours.contains(j) {
                ours.push(*j);
            }
        }
        let (precision, recall, ndcg) = score(&ours, truth);
        sums[0] += precision;
        sums[1] += recall;
        sums[2] += ndcg;
        sums[3] += score(&popular_list, truth).0;
    }
    let mean = |sum: f64| {
        if evaluated == 0 {
            0.0
        } else {
            sum / evaluated as f64
        }
    };
    Metrics {
        precision_at_10: mean(sums[0]),
        recall_at_10: mean(sums[1]),
        ndcg_at_10: mean(sums[2]),
        popular_precision_at_10: mean(sums[3]),
        users_evaluated: evaluated,
    }
}

/// Precision@10, recall@10 and NDCG@10 of one list against the sorted `truth`.
fn score(list: &[u32], truth: &[u32]) -> (f64, f64, f64) {
    let mut hits = 0_usize;
    let mut dcg = 0.0;
    for (rank, j) in list.iter().take(AT).enumerate() {
        if truth.binary_search(j).is_ok() {
            hits += 1;
            dcg += 1.0 / ((rank + 2) as f64).log2();
        }
    }
    let ideal: f64 = (0..truth.len().min(AT))
        .map(|rank| 1.0 / ((rank + 2) as f64).log2())
        .sum();
    (
        hits as f64 / AT as f64,
        hits as f64 / truth.len() as f64,
        if ideal > 0.0 { dcg / ideal } else { 0.0 },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            neighbours: 10,
            user_neighbours: 10,
            top_n: 5,
            shrinkage: 1.0,
            bm25_k1: 1.2,
            bm25_b: 0.75,
            user_share: 0.3,
            posting: 100,
        }
    }

    /// Users 0–3 like items 0–3, users 4–7 items 4–7; each user has three of the four.
    fn two_groups() -> Csr {
        let mut entries = Vec::new();
        for u in 0..8_u32 {
            let base = if u < 4 { 0 } else { 4 };
            for k in 0..4_u32 {
                if k != u % 4 {
                    entries.push((u, base + k, 1.0 + k as f32));
                }
            }
        }
        Csr::from_entries(8, 8, entries)
    }

    #[test]
    fn users_get_their_groups_missing_item() {
        let weights = two_groups();
        let model = fit(&weights, &params());
        let lists = recommend_all(&model, &weights, &weights, 5, 0.3);
        for (u, list) in lists.iter().enumerate() {
            let base = if u < 4 { 0 } else { 4 };
            assert_eq!(
                list.first().map(|r| r.0),
                Some(base + (u as u32) % 4),
                "{u}: {list:?}"
            );
            assert!(list.iter().all(|(j, _, _)| (base..base + 4).contains(j)));
        }
    }

    #[test]
    fn scores_are_measured() {
        assert_eq!(score(&[1, 2], &[2]), (0.1, 1.0, 1.0 / 3_f64.log2()));
        let held_out: Vec<Vec<u32>> = (0..8_u32)
            .map(|u| vec![if u < 4 { 0 } else { 4 } + u % 4])
            .collect();
        let metrics = evaluate(&two_groups(), &held_out, &params());
        assert_eq!(metrics.users_evaluated, 8);
        assert!((metrics.precision_at_10 - 0.1).abs() < 1e-9, "{metrics:?}");
        assert!((metrics.ndcg_at_10 - 1.0).abs() < 1e-9, "{metrics:?}");
    }
}
