//! Integration tests of matsuri-imaging, one binary: the sample photos end as three
//! variants of the right sizes with no metadata left; orientation; every accepted colour
//! type and animation; and the guards against bombs, impostors and damaged files. Inputs
//! are built in code (`fixtures`), except the photos in `shared/data/images`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixtures;
mod formats;
mod guards;
mod orientation;
mod photos;
