//! Live comments: the rate limit, the spam check, moderation, likes and the top
//! comments, the paced broadcast across nodes, the archive and the event stream.

mod archive;
mod comments;
mod moderation;
mod nodes;
mod support;
