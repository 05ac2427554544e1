//! Errors: [`ServerError`] for what fails while starting or running the service, and [`ApiError`], the one
//! place where anything becomes an HTTP status and a JSON body:
//!
//! ```json
//! {"error": {"code": "unknown_accelerator", "message": "accelerator \"Z999\" is not in the catalog", "field": "resources.accelerators"}}
//! ```
//!
//! `code` is stable (clients match on it); `message` is for people; `field` names the offending input
//! field when there is one.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hedge_store::StoreError;
use serde::Serialize;

/// What failed while starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("reading configuration {path}")]
    ReadConfig {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration {origin}: {field}: {reason}")]
    Config {
        origin: String,
        field: String,
        reason: String,
    },
    #[error("opening the store")]
    Store(#[source] StoreError),
    #[error("starting provider {provider}")]
    Driver {
        provider: String,
        #[source]
        source: hedge_drivers::DriverError,
    },
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// An error answered to an HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}
#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    pub fn bad_request(
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message).field(field)
    }
    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
        .field("Authorization")
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {what} {id}"),
        )
    }
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        })
        .expect("an error body always serializes")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.to_json(),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 9110: a 401 names the scheme the client should use.
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// Full error chain in one line, for logs and 500 bodies.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::UnknownTeam { team } => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_team", format!("unknown team {team}")).field("team")
            }
            StoreError::UnknownJob { job } => ApiError::not_found("job", job),
            StoreError::UnknownToken { id } => ApiError::not_found("token", id),
            StoreError::UnknownAttempt { key } => ApiError::not_found("attempt", key),
            StoreError::InvalidInput { field, reason } => {
                ApiError::bad_request("invalid_input", *field, format!("invalid {field}: {reason}"))
            }
            StoreError::IdempotencyConflict { key } => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                format!("Idempotency-Key {key:?} was already used with a different request"),
            )
            .field("Idempotency-Key"),
            StoreError::DuplicateCommitment { id, index } => ApiError::new(
                StatusCode::CONFLICT,
                "duplicate_commitment",
                format!("commitment {id} already exists or repeats in the batch; commitments are never replaced"),
            )
            .field(format!("commitments[{index}].id")),
            StoreError::IllegalTransition { .. } | StoreError::StaleTransition { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            _ => {
                tracing::error!(error = %chain(&e), "store failure");
                ApiError::internal(chain(&e))
            }
        }
    }
}
