//! The text-level spam check for live comments (issue 21, seed 001 §3): pure functions and a
//! trained model, with no database, no async and no I/O, so the `live` crate decides what
//! to remember (a user's last comments, the stored model) and this crate only judges text.
//!
//! The checks, in the order the live crate runs them:
//!
//! - [`normalize`] a comment once, so every check sees 「ﾅｲﾌ」 and 「ないふ」 alike;
//! - [`NgWords::find`]: refused words, with allowed compounds;
//! - repeats: [`is_flood`] for a wall of one character, and [`similarity`] against the
//!   user's last few comments ([`NEAR_DUPLICATE`] and above is a resend);
//! - the classifier: [`Model::score`] (logistic regression over character n-grams and
//!   Latin words), at or above [`BLOCK`] refused, from [`HOLD`] held for review.
//!   [`default_model`] is trained on the project's own corpus ([`corpus`]); the nightly job
//!   trains on moderator decisions too and stores [`Model::to_bytes`].
//!
//! [`evaluate`] measures a model; `examples/evaluate.rs` measures the learner on the
//! SpamAssassin corpus (`bench/spam.sh`).

mod codec;
mod corpus;
mod eval;
mod features;
mod model;
mod ngwords;
mod normalize;
mod repeats;

pub use codec::ModelError;
pub use corpus::{BORDERLINE_EXAMPLE, corpus, default_model};
pub use eval::{Evaluation, evaluate};
pub use model::{BLOCK, HOLD, Model};
pub use ngwords::NgWords;
pub use normalize::normalize;
pub use repeats::{
    CLAP_FLOOD_CHARS, FLOOD_MIN_CHARS, FLOOD_RUN, FLOOD_SHARE, NEAR_DUPLICATE, is_flood, similarity,
};
