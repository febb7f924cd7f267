//! The shared vocabulary of every matsuri crate: ids, money, time, configuration, auth
//! tokens, and the one API error type that every failure a client can cause turns into.

pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod extract;
pub mod ids;
pub mod money;
pub mod page;
pub mod text;
pub mod timefmt;

pub use auth::{AuthUser, Identity, Role, StaffUser, TokenKeys};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use config::Settings;
pub use error::{ApiError, FieldError, Problem};
pub use extract::{IdempotencyKey, Json, Query};
pub use money::{CURRENCY, Yen};
