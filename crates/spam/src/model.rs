//! The trained classifier: logistic regression over the feature sets of [`crate::features`].
//!
//! Naive Bayes was tried first and measured (`bench/README.md`, "Spam classifier"): on
//! SpamAssassin it reached 91 % accuracy with 4 % of ham blocked, because character n-grams
//! overlap (every character is in three of them) and naive Bayes counts each overlap as fresh
//! evidence, so nearly every score is 0 or 1 and no threshold can trade recall for fewer
//! false positives. Logistic regression learns how much each feature adds *given the
//! others*, and its score is a usable probability, which is what a hold-for-review band
//! between [`HOLD`] and [`BLOCK`] needs.
//!
//! A text is its feature set, each feature 1 / √(number of known features) (the vector has
//! unit length), so a long text is not more certain than a short one merely by being long.
//! Training is AdaGrad on the log loss with a little L2, over the examples in a shuffled but
//! fixed order; features seen in a single example are dropped (they cannot generalise and
//! would only fatten the stored model).

use std::fmt;

use rustc_hash::FxHashMap;

use crate::features::features;

/// Score at or above which a comment is refused as spam. At 0.9 the default model refuses
/// none of the held-out ham of the project corpus and the learner blocks 0.29 % of
/// SpamAssassin's ham (5-fold): a viewer wrongly refused is worse than a spam let through.
pub const BLOCK: f64 = 0.9;
/// Score at or above which (and below [`BLOCK`]) a comment is held for a moderator: even
/// odds. On the project corpus's held-out lines it holds 0.62 % of the ham (a long
/// applause of 8s, 「草草」, one cheer) and lets 0.4 % of the spam through.
pub const HOLD: f64 = 0.5;

/// Passes over the training examples.
const EPOCHS: usize = 12;
/// AdaGrad's base step.
const LEARNING_RATE: f64 = 1.0;
/// L2 penalty per update of an active feature.
const L2: f64 = 1e-6;
/// A feature must occur in at least this many training examples to be kept.
const MIN_EXAMPLES_PER_FEATURE: u32 = 2;
/// Seeds the order in which examples are visited: fixed, so training is reproducible.
const SHUFFLE_SEED: u64 = 0x6d61_7473_7572_6921;

/// A trained spam classifier. Scoring takes `&self` only, so one model serves every thread;
/// clone it to keep the old one while a new one is loaded.
#[derive(Clone, PartialEq)]
pub struct Model {
    /// Weight of each known feature.
    pub(crate) weights: FxHashMap<u64, f32>,
    /// The log-odds of a text with no known feature.
    pub(crate) bias: f64,
    pub(crate) ham_examples: u64,
    pub(crate) spam_examples: u64,
}

impl Model {
    /// Trains a model from labelled examples `(text, is_spam)`. Texts are given raw; they are
    /// normalised inside. Deterministic: the same examples, in any order, give the same model.
    /// A feature must occur in two examples to be learned, so a handful of examples teaches
    /// little. CPU-bound (the project corpus takes ~70 ms, SpamAssassin's 4,800 messages a
    /// few seconds): run it off the async executor.
    pub fn train<'a>(examples: impl IntoIterator<Item = (&'a str, bool)>) -> Model {
        let mut examples: Vec<(&str, bool)> = examples.into_iter().collect();
        // The visiting order is a seeded shuffle of a canonical order, not of the caller's.
        examples.sort_unstable();
        let spam_examples = examples.iter().filter(|(_, is_spam)| *is_spam).count() as u64;
        let ham_examples = examples.len() as u64 - spam_examples;

        let extracted: Vec<(Vec<u64>, bool)> = examples
            .iter()
            .map(|&(text, is_spam)| (features(text), is_spam))
            .collect();
        let (vocabulary, encoded) = encode(&extracted);
        let (weights, bias) = fit(&encoded, vocabulary.len());
        let weights = vocabulary
            .into_iter()
            .zip(weights)
            .map(|(feature, weight)| (feature, weight as f32))
            .collect();
        Model {
            weights,
            bias,
            ham_examples,
            spam_examples,
        }
    }

    /// Spam score of `text` in `0.0..=1.0`; compare it with [`BLOCK`] and [`HOLD`]. Give it
    /// the text as written: it is normalised inside. Normalised text scores too, but has lost
    /// the word boundaries that the word tokens need, so it may score a little differently.
    /// Features the model never saw are ignored, so an untrained model scores every text 0.5.
    pub fn score(&self, text: &str) -> f64 {
        let (evidence, known) = features(text)
            .iter()
            .filter_map(|feature| self.weights.get(feature))
            .fold((0.0f64, 0usize), |(sum, count), &weight| {
                (sum + f64::from(weight), count + 1)
            });
        let scale = if known == 0 {
            0.0
        } else {
            (known as f64).sqrt().recip()
        };
        logistic(self.bias + evidence * scale)
    }

    /// How many examples of each class it was trained on: `(ham, spam)`.
    pub fn examples(&self) -> (u64, u64) {
        (self.ham_examples, self.spam_examples)
    }
}

impl fmt::Debug for Model {
    /// The sizes, not the thousands of weights.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("features", &self.weights.len())
            .field("bias", &self.bias)
            .field("ham_examples", &self.ham_examples)
            .field("spam_examples", &self.spam_examples)
            .finish()
    }
}

/// A training example as dense feature indices.
struct Encoded {
    features: Vec<u32>,
    is_spam: bool,
}

/// Keeps the features seen in at least [`MIN_EXAMPLES_PER_FEATURE`] examples and numbers
/// them in ascending hash order; returns those hashes and each example in that numbering.
fn encode(extracted: &[(Vec<u64>, bool)]) -> (Vec<u64>, Vec<Encoded>) {
    let mut seen: FxHashMap<u64, u32> = FxHashMap::default();
    for (features, _) in extracted {
        for &feature in features {
            *seen.entry(feature).or_default() += 1;
        }
    }
    let mut vocabulary: Vec<u64> = seen
        .into_iter()
        .filter(|&(_, examples)| examples >= MIN_EXAMPLES_PER_FEATURE)
        .map(|(feature, _)| feature)
        .collect();
    vocabulary.sort_unstable();
    let index: FxHashMap<u64, u32> = vocabulary
        .iter()
        .enumerate()
        .map(|(position, &feature)| (feature, position as u32))
        .collect();
    let encoded = extracted
        .iter()
        .map(|(features, is_spam)| Encoded {
            features: features
                .iter()
                .filter_map(|feature| index.get(feature).copied())
                .collect(),
            is_spam: *is_spam,
        })
        .collect();
    (vocabulary, encoded)
}

/// Logistic regression by AdaGrad; returns the weights (by index) and the bias.
fn fit(examples: &[Encoded], features: usize) -> (Vec<f64>, f64) {
    let mut weights = vec![0.0f64; features];
    let mut squared = vec![0.0f64; features];
    let (mut bias, mut bias_squared) = (0.0f64, 0.0f64);
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut random = SplitMix64(SHUFFLE_SEED);
    for _ in 0..EPOCHS {
        random.shuffle(&mut order);
        for example in order.iter().filter_map(|&position| examples.get(position)) {
            let scale = if example.features.is_empty() {
                0.0
            } else {
                (example.features.len() as f64).sqrt().recip()
            };
            let evidence: f64 = example
                .features
                .iter()
                .filter_map(|&feature| weights.get(feature as usize))
                .sum();
            let error = logistic(bias + evidence * scale) - f64::from(u8::from(example.is_spam));
            bias_squared += error * error;
            bias -= LEARNING_RATE * error / bias_squared.sqrt().max(f64::MIN_POSITIVE);
            for &feature in &example.features {
                let (Some(weight), Some(sum)) = (
                    weights.get_mut(feature as usize),
                    squared.get_mut(feature as usize),
                ) else {
                    continue;
                };
                let gradient = error * scale + L2 * *weight;
                *sum += gradient * gradient;
                if *sum > 0.0 {
                    *weight -= LEARNING_RATE * gradient / sum.sqrt();
                }
            }
        }
    }
    (weights, bias)
}

/// The logistic function, written so that large |x| neither overflows nor loses the sign.
fn logistic(log_odds: f64) -> f64 {
    if log_odds >= 0.0 {
        1.0 / (1.0 + (-log_odds).exp())
    } else {
        let odds = log_odds.exp();
        odds / (1.0 + odds)
    }
}

/// SplitMix64: a tiny, well-mixed generator whose sequence is fixed by its seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fisher–Yates.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for last in (1..items.len()).rev() {
            let other = (self.next() % (last as u64 + 1)) as usize;
            items.swap(last, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_order_does_not_change_the_model() {
        let examples = [
            ("free money click here http://spam.example", true),
            ("win a prize now, DM me", true),
            ("free prize, DM me http://spam.example", true),
            ("この曲最高", false),
            ("nice song", false),
            ("この曲好き nice", false),
        ];
        let forward = Model::train(examples);
        let mut reversed = examples;
        reversed.reverse();
        assert_eq!(forward, Model::train(reversed));
        assert!(forward.score("free prize http://spam.example") > forward.score("この曲 nice"));
    }

    #[test]
    fn an_untrained_model_scores_at_even_odds() {
        let model = Model::train(std::iter::empty());
        assert_eq!(model.score("anything"), 0.5);
        assert_eq!(model.examples(), (0, 0));
    }

    #[test]
    fn logistic_stays_finite_and_ordered() {
        assert_eq!(logistic(0.0), 0.5);
        assert!(logistic(-1_000.0) >= 0.0 && logistic(-1_000.0) < 1e-300);
        assert_eq!(logistic(1_000.0), 1.0);
        assert!(logistic(2.0) > logistic(1.0));
    }
}
