//! A reproducible synthetic shop for `matsuri dev gen-activity`, tests and the benchmark:
//! items grouped into taste clusters with Zipf popularity inside each, users with a main
//! taste and one or two side ones (heavy and light users, also Zipf), sessions of views
//! with some cart adds and purchases, searches, and pairs of items bought together. The
//! same settings and seed give the same events, one at a time (an iterator: a large shop
//! never sits in memory).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use matsuri_module::ActivityKind;

use crate::DAY_MS;
use crate::log::Event;

/// What to generate.
#[derive(Debug, Clone)]
pub struct ShopShape {
    pub users: usize,
    pub items: usize,
    pub events: usize,
    pub seed: u64,
    /// The days the events are spread over, ending at `end`.
    pub days: u32,
    /// Taste clusters; 0 picks one per 100 items (at least 2).
    pub clusters: usize,
    /// Milliseconds since the epoch: events happen before it.
    pub end: i64,
}

/// A generated user's id.
pub fn user_id(n: usize) -> String {
    format!("00000000-0000-7000-8000-{n:012x}")
}

/// A generated item's id, when the items are not a real catalog's.
pub fn item_id(n: usize) -> String {
    format!("00000000-0000-7000-9000-{n:012x}")
}

/// The events of a [`ShopShape`], in session order (not time order).
pub struct Generator {
    shape: ShopShape,
    items: Vec<String>,
    clusters: usize,
    rng: StdRng,
    /// Per cluster: cumulative popularity of its items (item = cluster + rank·clusters).
    within: Vec<Vec<f64>>,
    /// Cumulative activity of the users.
    users: Vec<f64>,
    pending: std::collections::VecDeque<Event>,
    emitted: usize,
}

impl Generator {
    /// `items` are the product ids to use (their count wins over `shape.items`); empty
    /// means generated ids.
    pub fn new(shape: ShopShape, items: Vec<String>) -> Self {
        let items = if items.is_empty() {
            (0..shape.items.max(2)).map(item_id).collect()
        } else {
            items
        };
        let clusters = if shape.clusters == 0 {
            (items.len() / 100).max(2)
        } else {
            shape.clusters
        }
        .min(items.len());
        let within = (0..clusters)
            .map(|c| {
                let mut sum = 0.0;
                (c..items.len())
                    .step_by(clusters)
                    .enumerate()
                    .map(|(rank, _)| {
                        sum += 1.0 / (rank as f64 + 1.0);
                        sum
                    })
                    .collect()
            })
            .collect();
        let mut sum = 0.0;
        let users = (0..shape.users.max(1))
            .map(|u| {
                sum += 1.0 / (u as f64 + 1.0).powf(0.6);
                sum
            })
            .collect();
        Self {
            rng: StdRng::seed_from_u64(shape.seed),
            shape,
            items,
            clusters,
            within,
            users,
            pending: std::collections::VecDeque::new(),
            emitted: 0,
        }
    }

    /// The cluster an item is in.
    pub fn cluster_of(&self, item: usize) -> usize {
        item % self.clusters
    }

    /// A user's tastes: main cluster first.
    pub fn tastes_of(&self, user: usize) -> [usize; 3] {
        let spread = |k: usize| {
            user.wrapping_mul(2_654_435_761)
                .wrapping_add(k.wrapping_mul(40_503))
                % self.clusters
        };
        [user % self.clusters, spread(1), spread(2)]
    }

    fn pick(rng: &mut StdRng, cumulative: &[f64]) -> usize {
        let total = cumulative.last().copied().unwrap_or(0.0);
        let at = rng.random::<f64>() * total;
        cumulative
            .partition_point(|c| *c < at)
            .min(cumulative.len().saturating_sub(1))
    }

    fn session(&mut self) {
        let user = Self::pick(&mut self.rng, &self.users);
        let tastes = self.tastes_of(user);
        let roll = self.rng.random::<f64>();
        let cluster = tastes[if roll < 0.7 {
            0
        } else if roll < 0.9 {
            1
        } else {
            2
        }];
        let span = i64::from(self.shape.days.max(1)) * DAY_MS;
        let mut at = self.shape.end - span + self.rng.random_range(0..span);
        let length = self.rng.random_range(2..12);
        let user_id = user_id(user);
        let end = self.shape.end;
        let mut out = Vec::new();
        let mut push =
            |at: i64, kind: ActivityKind, product: Option<String>, query: Option<String>| {
                out.push(Event {
                    at: at.min(end - 1),
                    user_id: user_id.clone(),
                    kind,
                    product_id: product,
                    query,
                });
            };
        for _ in 0..length {
            at += self.rng.random_range(20_000..300_000);
            if self.rng.random::<f64>() < 0.05 {
                push(
                    at,
                    ActivityKind::Search,
                    None,
                    Some(format!("cluster {cluster}")),
                );
                continue;
            }
            let rank = Self::pick(&mut self.rng, &self.within[cluster]);
            let item = cluster + rank * self.clusters;
            let product = self.items[item].clone();
            push(at, ActivityKind::View, Some(product.clone()), None);
            if self.rng.random::<f64>() >= 0.15 {
                continue;
            }
            push(
                at + 5_000,
                ActivityKind::CartAdd,
                Some(product.clone()),
                None,
            );
            if self.rng.random::<f64>() >= 0.4 {
                continue;
            }
            push(at + 60_000, ActivityKind::Purchase, Some(product), None);
            // Its partner (the next item of the cluster) is often bought with it.
            let partner = if item + self.clusters < self.items.len() {
                item + self.clusters
            } else {
                item.saturating_sub(self.clusters)
            };
            if partner != item && self.rng.random::<f64>() < 0.5 {
                let product = self.items[partner].clone();
                push(at + 10_000, ActivityKind::View, Some(product.clone()), None);
                push(
                    at + 20_000,
                    ActivityKind::CartAdd,
                    Some(product.clone()),
                    None,
                );
                push(at + 60_000, ActivityKind::Purchase, Some(product), None);
            }
        }
        self.pending.extend(out);
    }
}

impl Iterator for Generator {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.emitted >= self.shape.events {
            return None;
        }
        while self.pending.is_empty() {
            self.session();
        }
        self.emitted += 1;
        self.pending.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(seed: u64) -> ShopShape {
        ShopShape {
            users: 50,
            items: 40,
            events: 500,
            seed,
            days: 7,
            clusters: 4,
            end: 1_767_225_600_000,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_shop() {
        let a: Vec<Event> = Generator::new(shape(7), Vec::new()).collect();
        let b: Vec<Event> = Generator::new(shape(7), Vec::new()).collect();
        let c: Vec<Event> = Generator::new(shape(8), Vec::new()).collect();
        assert_eq!(a.len(), 500);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let end = shape(7).end;
        assert!(a.iter().all(|e| e.at < end && e.at >= end - 7 * DAY_MS));
        assert!(a.iter().any(|e| e.kind == ActivityKind::Purchase));
    }
}
