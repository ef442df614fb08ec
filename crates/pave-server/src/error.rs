//! API errors as RFC 9457 problem documents. Every error has a stable `type` (clients may
//! match on it), the right status, and a `detail` written for people.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pave_model::{FieldError, PlanError};
use pave_store::StoreError;

/// The table of stable error codes: `(type suffix, status, title)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    /// A deployment the environment's release policy refuses.
    PolicyFailed,
    PayloadTooLarge,
    Invalid,
    Unavailable,
    Internal,
}

impl Problem {
    pub fn code(self) -> &'static str {
        match self {
            Problem::BadRequest => "bad-request",
            Problem::Unauthorized => "unauthorized",
            Problem::Forbidden => "forbidden",
            Problem::NotFound => "not-found",
            Problem::MethodNotAllowed => "method-not-allowed",
            Problem::Conflict => "conflict",
            Problem::PolicyFailed => "policy-failed",
            Problem::PayloadTooLarge => "payload-too-large",
            Problem::Invalid => "invalid",
            Problem::Unavailable => "unavailable",
            Problem::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Problem::BadRequest => StatusCode::BAD_REQUEST,
            Problem::Unauthorized => StatusCode::UNAUTHORIZED,
            Problem::Forbidden => StatusCode::FORBIDDEN,
            Problem::NotFound => StatusCode::NOT_FOUND,
            Problem::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Problem::Conflict => StatusCode::CONFLICT,
            Problem::PolicyFailed => StatusCode::FORBIDDEN,
            Problem::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Problem::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            Problem::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Problem::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Problem::BadRequest => "The request could not be read",
            Problem::Unauthorized => "Authentication required",
            Problem::Forbidden => "Not allowed",
            Problem::NotFound => "Not found",
            Problem::MethodNotAllowed => "Method not allowed",
            Problem::Conflict => "Conflict with the current state",
            Problem::PolicyFailed => "The release does not meet the environment's release policy",
            Problem::PayloadTooLarge => "Request body too large",
            Problem::Invalid => "Invalid input",
            Problem::Unavailable => "Service unavailable",
            Problem::Internal => "Internal error",
        }
    }
}

/// One field a request got wrong (the wire type is `pave-api`'s).
pub use pave_api::InvalidField;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub problem: Problem,
    pub detail: String,
    pub errors: Vec<InvalidField>,
}

impl ApiError {
    pub fn new(problem: Problem, detail: impl Into<String>) -> Self {
        Self { problem, detail: detail.into(), errors: Vec::new() }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(Problem::BadRequest, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(Problem::NotFound, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(Problem::Forbidden, detail)
    }

    pub fn invalid(detail: impl Into<String>, errors: Vec<InvalidField>) -> Self {
        Self { problem: Problem::Invalid, detail: detail.into(), errors }
    }

    pub fn from_fields(resource: Option<String>, document: Option<usize>, fields: Vec<FieldError>) -> Self {
        let errors: Vec<InvalidField> = fields
            .into_iter()
            .map(|f| InvalidField { document, resource: resource.clone(), field: f.field, reason: f.reason })
            .collect();
        let detail = errors.iter().map(|e| format!("{}: {}", e.field, e.reason)).collect::<Vec<_>>().join("; ");
        Self::invalid(detail, errors)
    }
}

/// Base of every problem `type` URI.
pub const PROBLEM_BASE: &str = "https://pave.dev/problems/";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.problem.status();
        let body = pave_api::ProblemDocument {
            kind: format!("{PROBLEM_BASE}{}", self.problem.code()),
            title: self.problem.title().to_owned(),
            status: status.as_u16(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
        };
        let bytes = serde_json::to_vec(&body).expect("problem documents serialize");
        let mut resp = (status, bytes).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        // Lets the audit layer record why a request failed without parsing the body.
        resp.extensions_mut().insert(self);
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Plan(PlanError::Invalid(list)) => {
                let errors: Vec<InvalidField> = list
                    .into_iter()
                    .map(|(resource, f)| InvalidField {
                        document: None,
                        resource: Some(resource),
                        field: f.field,
                        reason: f.reason,
                    })
                    .collect();
                let detail = errors
                    .iter()
                    .map(|e| format!("{}: {}: {}", e.resource.as_deref().unwrap_or(""), e.field, e.reason));
                ApiError::invalid(detail.collect::<Vec<_>>().join("; "), errors)
            }
            StoreError::Plan(e @ PlanError::Conflict(_)) => ApiError::new(Problem::Conflict, e.to_string()),
            StoreError::Plan(e @ PlanError::NotFound { .. }) => ApiError::not_found(e.to_string()),
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::new(Problem::Conflict, m),
            StoreError::Forbidden(m) => ApiError::forbidden(m),
            StoreError::Invalid(m) => ApiError::invalid(m, Vec::new()),
            other => {
                tracing::error!(error = %other, "store failure");
                let problem = match other {
                    StoreError::Database(sqlx_err) if is_unavailable(&sqlx_err) => Problem::Unavailable,
                    _ => Problem::Internal,
                };
                ApiError::new(problem, "the store failed to complete the request; see the server log")
            }
        }
    }
}

fn is_unavailable(e: &pave_store::SqlxError) -> bool {
    matches!(e, pave_store::SqlxError::PoolTimedOut | pave_store::SqlxError::PoolClosed | pave_store::SqlxError::Io(_))
}
