//! Accounts: registration, sign-in and the signed-in user's profile. Passwords are hashed
//! with argon2id off the async executor; sign-in answers with a signed, expiring token.

mod password;
mod routes;
mod service;

pub use password::PasswordPolicy;
pub use routes::routes;
pub use service::{AccountError, AccountService, NewUser, User};

use std::sync::Arc;

use matsuri_db::{Migration, MigrationSet};

/// Accounts as the server composes them: the `users` routes.
pub struct AccountsModule(pub Arc<AccountService>);

impl matsuri_module::Module for AccountsModule {
    fn name(&self) -> &'static str {
        "accounts"
    }

    fn tag(&self) -> Option<(&'static str, &'static str)> {
        Some(("users", "Accounts and sign-in"))
    }

    fn routes(&self) -> utoipa_axum::router::OpenApiRouter {
        routes(self.0.clone())
    }
}

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "accounts",
    migrations: &[Migration {
        version: 1,
        name: "users",
        sql: include_str!("../migrations/0001_users.sql"),
        postgres_sql: None,
    }],
};
