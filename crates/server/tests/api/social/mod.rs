//! Posts and likes.

mod likes;
