//! Accounts: registration, sign-in and the signed-in user's profile. Passwords are hashed
//! with argon2id off the async executor; sign-in answers with a signed, expiring token.

mod password;
mod routes;
mod service;

pub use password::PasswordPolicy;
pub use routes::routes;
pub use service::{AccountError, AccountService, NewUser, User};

use matsuri_db::{Migration, MigrationSet};

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "accounts",
    migrations: &[Migration {
        version: 1,
        name: "users",
        sql: include_str!("../migrations/0001_users.sql"),
        postgres_sql: None,
    }],
};
