//! The event log, the audit trail, tokens, and who-am-I.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pave_model::Role;
use pave_store::{AuditQuery, EventQuery};
use serde::Deserialize;
use serde_json::json;

use super::Caller;
use crate::AppState;
use crate::auth::{AuditDetail, generate_token};
use crate::error::ApiError;
use crate::extract::{ApiQuery, JsonBody};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    /// Return events with ids greater than this (0 from the start).
    #[serde(default)]
    after: i64,
    /// Comma-separated kinds; a trailing `*` matches a prefix (`service.*`).
    kind: Option<String>,
    /// Only events about this subject (`service/checkout`).
    subject: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<i64>,
}

pub async fn events(State(state): State<AppState>, ApiQuery(p): ApiQuery<EventParams>) -> Result<Response, ApiError> {
    if p.after < 0 {
        return Err(ApiError::bad_request("after must be 0 or a positive event id"));
    }
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit {limit} is out of range 1..=1000")));
    }
    let kinds = p.kind.map(|k| k.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect());
    let q = EventQuery { after: p.after, kinds: kinds.unwrap_or_default(), subject: p.subject, limit };
    let events = state.store.events(&q).await?;
    let next = events.last().map_or(p.after, |e| e.id);
    Ok(Json(json!({ "events": events, "next": next })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Return entries older than this id (newest first).
    before: Option<i64>,
    actor: Option<String>,
    /// `allowed`, `denied` or `failed`.
    outcome: Option<String>,
    limit: Option<i64>,
}

pub async fn audit(State(state): State<AppState>, ApiQuery(p): ApiQuery<AuditParams>) -> Result<Response, ApiError> {
    if let Some(o) = &p.outcome
        && !matches!(o.as_str(), "allowed" | "denied" | "failed")
    {
        return Err(ApiError::bad_request(format!("outcome {o:?} is not one of allowed, denied, failed")));
    }
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit {limit} is out of range 1..=1000")));
    }
    let entries =
        state.store.audit(&AuditQuery { before: p.before, actor: p.actor, outcome: p.outcome, limit }).await?;
    let next = entries.last().map(|e| e.id);
    Ok(Json(json!({ "entries": entries, "next": next })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    name: String,
    role: Role,
}

pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewTokenBody>,
) -> Result<Response, ApiError> {
    if let Err(e) = pave_model::name::validate(&body.name) {
        return Err(ApiError::from_fields(
            None,
            None,
            vec![pave_model::FieldError::new("name", format!("{:?} {e}", body.name))],
        ));
    }
    let (secret, token) = generate_token(&body.name, body.role);
    let record = state.store.create_token(&token, &caller.write_context()).await?;
    let mut resp = (StatusCode::CREATED, Json(json!({ "token": record, "secret": secret }))).into_response();
    // The audit entry names the token, never its secret.
    resp.extensions_mut().insert(AuditDetail(json!({"tokenId": record.id, "name": record.name, "role": record.role})));
    Ok(resp)
}

pub async fn list_tokens(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(json!({ "tokens": state.store.list_tokens().await? })).into_response())
}

pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = state.store.revoke_token(&id, &caller.write_context()).await?;
    Ok(Json(json!({ "token": record })).into_response())
}

pub async fn whoami(caller: Caller) -> Json<serde_json::Value> {
    Json(json!({
        "tokenId": caller.principal.token_id,
        "name": caller.principal.name,
        "role": caller.principal.role,
    }))
}

pub async fn openapi() -> Response {
    let doc = crate::openapi::document();
    ([(axum::http::header::CONTENT_TYPE, "application/json")], doc).into_response()
}
