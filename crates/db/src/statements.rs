//! Statements that need nothing from one another's results, sent together. On SQLite each
//! statement is otherwise a request to the connection's own thread and an answer back,
//! which under load costs more than the statement; several in one request cost one. The
//! SQL is the same on both databases: only how it travels differs.

use sqlx::Arguments;
use sqlx::any::AnyArguments;

use crate::{Conn, Dialect};

/// A value bound to one of the statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Param::Text(Some(value.to_owned()))
    }
}

impl From<&String> for Param {
    fn from(value: &String) -> Self {
        Param::Text(Some(value.clone()))
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Param::Text(Some(value))
    }
}

impl From<Option<&str>> for Param {
    fn from(value: Option<&str>) -> Self {
        Param::Text(value.map(str::to_owned))
    }
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Param::Int(Some(value))
    }
}

/// Statements run in order on one connection: on SQLite as a single request (their
/// numbered parameters renumbered to follow one another), on PostgreSQL one after
/// another. Each statement numbers its own parameters from `$1`, and none may hold a `$`
/// other than its parameters.
#[derive(Debug, Default)]
pub struct Statements {
    statements: Vec<(String, Vec<Param>)>,
}

impl Statements {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a statement and its parameters, in `$1, $2, …` order.
    pub fn add(&mut self, sql: &str, params: Vec<Param>) -> &mut Self {
        self.statements.push((sql.to_owned(), params));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Runs every statement, in the order added.
    pub async fn run(self, conn: &mut Conn) -> Result<(), sqlx::Error> {
        match Dialect::of(conn) {
            Dialect::Sqlite => {
                let mut sql = String::new();
                let mut args = AnyArguments::default();
                let mut offset = 0;
                for (statement, params) in &self.statements {
                    sql.push_str(&renumber(statement, offset));
                    sql.push_str(";\n");
                    offset += params.len();
                    for param in params {
                        bind(&mut args, param)?;
                    }
                }
                sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
                    .execute(conn)
                    .await?;
            }
            Dialect::Postgres => {
                for (statement, params) in &self.statements {
                    let mut args = AnyArguments::default();
                    for param in params {
                        bind(&mut args, param)?;
                    }
                    sqlx::query_with(sqlx::AssertSqlSafe(statement.clone()), args)
                        .execute(&mut *conn)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

fn bind(args: &mut AnyArguments, param: &Param) -> Result<(), sqlx::Error> {
    match param {
        Param::Text(value) => args.add(value.clone()),
        Param::Int(value) => args.add(*value),
    }
    .map_err(sqlx::Error::Encode)
}

/// `sql` with each `$n` turned into `$(n + offset)`.
fn renumber(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.next_if(char::is_ascii_digit) {
            digits.push(d);
        }
        match digits.parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&digits),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_follow_those_of_the_statements_before() {
        assert_eq!(
            renumber("UPDATE t SET a = $1 WHERE b = $2 AND c = $12", 3),
            "UPDATE t SET a = $4 WHERE b = $5 AND c = $15"
        );
        assert_eq!(renumber("SELECT 1", 7), "SELECT 1");
    }
}
