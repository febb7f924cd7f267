//! Account rules: who may register, how sign-in works, and the staff bootstrap.

use std::sync::Arc;

use axum::http::StatusCode;
use serde::Serialize;

use matsuri_core::ids::UserId;
use matsuri_core::{ApiError, FieldError, Role, SharedClock, TokenKeys};
use matsuri_db::{Db, is_unique_violation};

use crate::password::PasswordPolicy;

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    #[schema(value_type = String)]
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("the request breaks one or more rules")]
    Invalid(Vec<FieldError>),
    #[error("no such user")]
    NotFound,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AccountError {
    fn from(e: sqlx::Error) -> Self {
        AccountError::Internal(e.into())
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::EmailTaken => {
                ApiError::new(StatusCode::CONFLICT, "email_taken", e.to_string())
            }
            AccountError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                e.to_string(),
            ),
            AccountError::Invalid(errors) => ApiError::validation(errors),
            AccountError::NotFound => ApiError::not_found("no such user"),
            AccountError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

/// A registration, checked field by field.
#[derive(Debug, Clone)]
pub struct NewUser {
    email: String,
    password: String,
    name: String,
}

const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 128;
const MAX_NAME: usize = 100;

impl NewUser {
    /// Parses and checks a registration; every broken rule is reported at once.
    pub fn parse(email: &str, password: &str, name: &str) -> Result<NewUser, AccountError> {
        let mut errors = Vec::new();
        let email = matsuri_core::text::email(email);
        if email.is_none() {
            errors.push(FieldError::new(
                "email",
                "must be a mail address such as name@example.com",
            ));
        }
        let chars = password.chars().count();
        if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&chars) {
            errors.push(FieldError::new(
                "password",
                format!("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
            ));
        }
        let name = matsuri_core::text::line("name", name, MAX_NAME)
            .map_err(|e| errors.push(e))
            .ok();
        match (email, name) {
            (Some(email), Some(name)) if errors.is_empty() => Ok(NewUser {
                email,
                password: password.to_owned(),
                name,
            }),
            _ => Err(AccountError::Invalid(errors)),
        }
    }
}

fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

pub struct AccountService {
    db: Db,
    clock: SharedClock,
    keys: Arc<TokenKeys>,
    policy: PasswordPolicy,
    /// A real hash to verify against when the email is unknown, so both failures take the
    /// same time and do not reveal which emails exist.
    decoy_hash: String,
}

/// A signed-in user and their token.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub token: String,
    pub expires_at: i64,
}

impl AccountService {
    pub async fn new(
        db: Db,
        clock: SharedClock,
        keys: Arc<TokenKeys>,
        policy: PasswordPolicy,
    ) -> anyhow::Result<Self> {
        let decoy_hash = policy
            .hash("decoy password for unknown users".into())
            .await?;
        Ok(Self {
            db,
            clock,
            keys,
            policy,
            decoy_hash,
        })
    }

    /// Creates a customer and signs them in.
    pub async fn register(&self, new: NewUser) -> Result<Session, AccountError> {
        let user = self.create(new, Role::Customer).await?;
        self.session(user)
    }

    /// Creates a user with any role (the CLI and the staff bootstrap).
    pub async fn create(&self, new: NewUser, role: Role) -> Result<User, AccountError> {
        let hash = self.policy.hash(new.password).await?;
        let user = User {
            id: UserId::generate(),
            email: new.email,
            name: new.name,
            role,
        };
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id.as_str())
        .bind(&user.email)
        .bind(&user.name)
        .bind(hash)
        .bind(role.as_str())
        .bind(self.clock.now_ms())
        .execute(self.db.writer())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                AccountError::EmailTaken
            } else {
                e.into()
            }
        })?;
        tracing::info!(user_id = %user.id, role = role.as_str(), "user created");
        Ok(user)
    }

    /// Creates the user unless one with that email exists; true when created.
    pub async fn ensure(&self, new: NewUser, role: Role) -> Result<bool, AccountError> {
        match self.create(new, role).await {
            Ok(_) => Ok(true),
            Err(AccountError::EmailTaken) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<Session, AccountError> {
        let row: Option<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT id, email, name, role, password_hash FROM users WHERE email = $1",
        )
        .bind(normalize_email(email))
        .fetch_optional(self.db.reader())
        .await?;
        let (user, stored) = match row {
            Some((id, email, name, role, hash)) => (
                Some(User {
                    id: UserId::from_stored(id),
                    email,
                    name,
                    role: Role::parse(&role).unwrap_or(Role::Customer),
                }),
                hash,
            ),
            None => (None, self.decoy_hash.clone()),
        };
        let matches = PasswordPolicy::verify(password.to_owned(), stored).await?;
        match user {
            Some(user) if matches => self.session(user),
            _ => Err(AccountError::InvalidCredentials),
        }
    }

    /// The display name of each id that is an account; unknown ids are left out.
    pub async fn names(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, String>, AccountError> {
        let mut names = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT id, name FROM users WHERE id IN ({})",
                matsuri_db::parameter_list(1, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id);
            }
            names.extend(query.fetch_all(self.db.reader()).await?);
        }
        Ok(names)
    }

    pub async fn get(&self, id: &UserId) -> Result<User, AccountError> {
        let row: Option<(String, String, String, String)> =
            sqlx::query_as("SELECT id, email, name, role FROM users WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(self.db.reader())
                .await?;
        let (id, email, name, role) = row.ok_or(AccountError::NotFound)?;
        Ok(User {
            id: UserId::from_stored(id),
            email,
            name,
            role: Role::parse(&role).unwrap_or(Role::Customer),
        })
    }

    fn session(&self, user: User) -> Result<Session, AccountError> {
        let (token, expires_at) = self
            .keys
            .issue(&user.id, user.role, self.clock.now_ms())
            .map_err(|e| AccountError::Internal(anyhow::anyhow!("{e}")))?;
        Ok(Session {
            user,
            token,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_are_checked() {
        assert!(NewUser::parse("Ann@Example.com ", "long enough", "Ann").is_ok());
        let Err(AccountError::Invalid(errors)) = NewUser::parse("nope", "short", " ") else {
            panic!("expected a validation error");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "password", "name"]);
        assert!(NewUser::parse("a@b@c", "long enough", "x").is_err());
        assert!(NewUser::parse(&format!("{}@x.io", "a".repeat(260)), "long enough", "x").is_err());
    }

    #[test]
    fn emails_are_normalized() {
        let user = NewUser::parse(" Ann@Example.COM", "long enough", "Ann").unwrap();
        assert_eq!(user.email, "ann@example.com");
    }
}
