//! The event log, the audit trail, tokens, and who-am-I.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pave_api as api;
use pave_model::Kind;
use pave_model::auth::Scope;
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
    Ok(Json(api::EventPage { events, next }).into_response())
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
    let entries = entries.into_iter().map(audit_entry).collect();
    Ok(Json(api::AuditPage { entries, next }).into_response())
}

fn audit_entry(e: pave_store::AuditEntry) -> api::AuditEntry {
    api::AuditEntry {
        id: e.id,
        time: e.time,
        actor: e.actor,
        role: e.role,
        action: e.action,
        target: e.target,
        outcome: e.outcome,
        status: e.status,
        request_id: e.request_id,
        detail: e.detail,
    }
}

/// A token's scope as the wire spells it.
fn scoped(scope: &Scope) -> api::admin::TokenScope {
    let named = |kind: &str| (scope.kind() == kind).then(|| scope.subject().map(str::to_owned)).flatten();
    api::admin::TokenScope { scope: scope.kind().to_owned(), user: named("user"), team: named("team") }
}

/// A stored token as the API shows it.
pub(crate) fn token_view(t: pave_store::TokenRecord) -> api::Token {
    api::Token {
        id: t.id,
        name: t.name,
        role: t.role,
        scope: scoped(&t.scope),
        note: t.note.map(str::to_owned),
        created_at: t.created_at,
        created_by: t.created_by,
        revoked_at: t.revoked_at,
    }
}

/// The scope a token request asks for, checked: one of user or team, a user identity without
/// spaces, a team that exists.
async fn requested_scope(state: &AppState, body: &api::NewToken) -> Result<Scope, ApiError> {
    let field =
        |f: &str, reason: String| ApiError::from_fields(None, None, vec![pave_model::FieldError::new(f, reason)]);
    match (&body.user, &body.team) {
        (None, None) => Ok(Scope::Unscoped),
        (Some(_), Some(_)) => Err(field("team", "a token acts for a user or for a team, not both".into())),
        (Some(user), None) => {
            if user.is_empty() || user.len() > 254 || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(field(
                    "user",
                    format!("{user:?} is not an identity teams can list: 1-254 characters, no spaces"),
                ));
            }
            Ok(Scope::User(user.clone()))
        }
        (None, Some(team)) => {
            if state.store.get(Kind::Team, team).await?.is_none() {
                return Err(field("team", format!("team {team:?} does not exist; create it first")));
            }
            Ok(Scope::Team(team.clone()))
        }
    }
}

pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<api::NewToken>,
) -> Result<Response, ApiError> {
    if let Err(e) = pave_model::name::validate(&body.name) {
        return Err(ApiError::from_fields(
            None,
            None,
            vec![pave_model::FieldError::new("name", format!("{:?} {e}", body.name))],
        ));
    }
    let scope = requested_scope(&state, &body).await?;
    let (secret, token) = generate_token(&body.name, body.role, scope);
    let record = state.store.create_token(&token, &caller.write_context()).await?;
    let mut resp =
        (StatusCode::CREATED, Json(api::CreatedToken { token: token_view(record.clone()), secret })).into_response();
    // The audit entry names the token, never its secret.
    let mut detail = serde_json::to_value(&record.scope).expect("a scope serialises");
    detail["tokenId"] = json!(record.id);
    detail["name"] = json!(record.name);
    detail["role"] = json!(record.role);
    resp.extensions_mut().insert(AuditDetail(detail));
    Ok(resp)
}

pub async fn list_tokens(State(state): State<AppState>) -> Result<Response, ApiError> {
    let tokens = state.store.list_tokens().await?.into_iter().map(token_view).collect();
    Ok(Json(api::TokenList { tokens }).into_response())
}

pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = state.store.revoke_token(&id, &caller.write_context()).await?;
    Ok(Json(api::TokenOne { token: token_view(record) }).into_response())
}

pub async fn whoami(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let access = caller.access(&state).await?;
    let p = &caller.principal;
    let note = (p.scope == Scope::Unscoped).then(|| pave_model::auth::unscoped_note(p.role)).flatten();
    Ok(Json(api::WhoAmI {
        token_id: p.token_id.clone(),
        name: p.name.clone(),
        role: p.role,
        scope: scoped(&p.scope),
        teams: access.teams.iter().map(|(t, _)| t.clone()).collect(),
        platform: access.teams.iter().any(|(_, p)| *p),
        note: note.map(str::to_owned),
    })
    .into_response())
}

pub async fn openapi() -> Response {
    let doc = crate::openapi::document();
    ([(axum::http::header::CONTENT_TYPE, "application/json")], doc).into_response()
}
