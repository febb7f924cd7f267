//! One error type for every HTTP answer that is not a success, rendered as an RFC 9457
//! problem document with a stable snake_case `code` (see `api.md`, "Conventions").
//!
//! Server-side failures keep their cause for the log only: the client sees a generic body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A field that broke a rule, reported in a 422 `validation_failed` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The body of every error answer (`application/problem+json`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(schema_with = problem_errors)]
    pub errors: Vec<FieldError>,
    /// Extra members some answers carry (for example `order_number`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
}

/// The schema of a problem's `errors`: the fields that broke a rule (`validation_failed`:
/// `{field, message}`), or the lines of a refused file (`invalid_import`: `{line,
/// message}`, the header being line 1).
fn problem_errors() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
    let entry = |key: &str, kind: Type| {
        ObjectBuilder::new()
            .property(key, ObjectBuilder::new().schema_type(kind))
            .property("message", ObjectBuilder::new().schema_type(Type::String))
            .required(key)
            .required("message")
    };
    ArrayBuilder::new()
        .items(
            OneOfBuilder::new()
                .item(entry("field", Type::String))
                .item(entry("line", Type::Integer)),
        )
        .build()
}

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An error answer. Build one with the constructors; 5xx answers log their cause and show
/// the client only a generic detail.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: Option<String>,
    errors: Vec<FieldError>,
    extra: Map<String, Value>,
    retry_after: Option<u64>,
    cause: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: Some(detail.into()),
            errors: Vec::new(),
            extra: Map::new(),
            retry_after: None,
            cause: None,
        }
    }

    /// 400 `invalid_request`: the request could not be read (bad JSON, wrong types).
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }

    /// 422 `validation_failed` with the fields that broke a rule.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "the request breaks one or more rules",
        );
        err.errors = errors;
        err
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than the limit of 1 MiB",
        )
    }

    /// 422 `idempotency_key_reused`: the key came before with a different request.
    pub fn idempotency_key_reused() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
        )
    }

    /// 409 `idempotency_key_in_use`: a request with the same key is still running.
    pub fn idempotency_key_in_use() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_use",
            "a request with this Idempotency-Key is still being processed; retry shortly",
        )
        .with_retry_after(1)
    }

    /// 500 `internal_error`: the cause goes to the log, never to the client.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let mut err = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred; it has been logged",
        );
        err.cause = Some(cause.into());
        err
    }

    /// Adds a member to the problem document.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The document the client receives.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:matsuri:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            code: self.code.to_owned(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
            extra: self.extra.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.code)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause:#}")?;
        }
        Ok(())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            match &self.cause {
                Some(cause) => tracing::error!(
                    code = self.code,
                    error = format!("{cause:#}"),
                    "request failed"
                ),
                None => tracing::error!(code = self.code, "request failed"),
            }
        }
        problem_response(self.status, &self.problem(), self.retry_after)
    }
}

/// Renders a problem document; also used to replay a stored answer.
pub fn problem_response(
    status: StatusCode,
    problem: &Problem,
    retry_after: Option<u64>,
) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    if let Some(secs) = retry_after {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

/// An answer as stored for an `Idempotency-Key`, to be replayed byte for byte: the
/// storage keeps a status and a body and knows nothing of HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

impl StoredResponse {
    /// A success as stored for its key: `value` as JSON.
    pub fn json(status: StatusCode, value: &impl Serialize) -> Self {
        Self {
            status: status.as_u16(),
            body: serde_json::to_string(value).unwrap_or_default(),
        }
    }

    /// A created resource (201) as stored for its key, for the services that store their
    /// answer in the transaction that makes it.
    pub fn created(value: &impl Serialize) -> Self {
        Self::json(StatusCode::CREATED, value)
    }

    /// A plain success (200) as stored for its key.
    pub fn ok(value: &impl Serialize) -> Self {
        Self::json(StatusCode::OK, value)
    }

    /// A refusal as stored for its key: the problem document the client was given.
    pub fn refusal(err: &ApiError) -> Self {
        Self {
            status: err.status().as_u16(),
            body: serde_json::to_string(&err.problem()).unwrap_or_default(),
        }
    }
}

/// The stored answer, byte for byte: JSON for a success, a problem document otherwise.
impl IntoResponse for StoredResponse {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let content_type = if status.is_success() {
            "application/json"
        } else {
            PROBLEM_CONTENT_TYPE
        };
        let mut res = (status, self.body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = ApiError::internal(anyhow::anyhow!("relation \"orders\" does not exist"));
        let problem = err.problem();
        assert_eq!(problem.status, 500);
        assert_eq!(problem.code, "internal_error");
        assert!(!problem.detail.unwrap_or_default().contains("orders"));
    }

    #[test]
    fn extra_members_are_flattened() {
        let err = ApiError::new(StatusCode::PAYMENT_REQUIRED, "payment_declined", "declined")
            .with("order_number", "20250101-000001");
        let json = serde_json::to_value(err.problem()).unwrap_or_default();
        assert_eq!(json["order_number"], "20250101-000001");
        assert_eq!(json["type"], "urn:matsuri:problem:payment_declined");
    }
}
