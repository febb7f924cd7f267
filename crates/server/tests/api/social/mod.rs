//! Posts and likes.

mod failures;
mod likes;
