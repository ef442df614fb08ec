//! Extractors whose rejections are problem documents that name the failing field, instead of
//! axum's plain-text defaults.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use pave_model::FieldError;
use serde_json::Value;

use crate::error::{ApiError, InvalidField, Problem};

/// A JSON request body, size-limited by the router's `DefaultBodyLimit`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A request body as bytes, size-limited by the router's `DefaultBodyLimit`, with a problem
/// document when it is over the limit or cannot be read.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(RawBody).map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    Problem::PayloadTooLarge,
                    format!("the request body is over the limit: {}", e.body_text()),
                )
            } else {
                ApiError::bad_request(format!("could not read the request body: {}", e.body_text()))
            }
        })
    }
}

/// Parses JSON, reporting the path of a field of the wrong type or unknown to the schema.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("malformed JSON: {inner}"))
        } else {
            let field = if path == "." { String::new() } else { path };
            ApiError::invalid(
                format!("{}{inner}", if field.is_empty() { String::new() } else { format!("{field}: ") }),
                vec![InvalidField { document: None, resource: None, field, reason: inner.to_string() }],
            )
        }
    })
}

/// Query-string parameters.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::bad_request(format!("invalid query parameters: {}", e.body_text())))
    }
}

/// Parses every document of a batch, reporting all the invalid ones (not just the first)
/// with their position and `label` (say `service/checkout`): a batch is all or nothing.
pub fn parse_batch<T>(
    docs: Vec<Value>,
    label: impl Fn(&Value) -> Option<String>,
    parse: impl Fn(Value) -> Result<T, Vec<FieldError>>,
) -> Result<Vec<T>, ApiError> {
    let mut out = Vec::with_capacity(docs.len());
    let mut errors = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        let name = label(&doc);
        match parse(doc) {
            Ok(t) => out.push(t),
            Err(fields) => errors.extend(fields.into_iter().map(|f| InvalidField {
                document: Some(i),
                resource: name.clone(),
                field: f.field,
                reason: f.reason,
            })),
        }
    }
    if errors.is_empty() {
        return Ok(out);
    }
    let detail = errors
        .iter()
        .map(|e| {
            let what = e.resource.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
            format!("document {}{what}: {}: {}", e.document.unwrap_or(0), e.field, e.reason)
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(ApiError::invalid(detail, errors))
}
