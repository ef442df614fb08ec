//! Bearer-token authentication, role checks and the audit trail of mutating requests.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pave_model::Role;
use pave_model::auth::Scope;
use pave_store::{NewAuditEntry, NewToken};
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use crate::request_id::RequestId;

/// Prefix of every token secret, so leaked tokens are recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "pave_";

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: String,
    pub name: String,
    pub role: Role,
    /// Whom the token acts for; with the catalog's teams it decides which services a
    /// developer token may change (`pave_model::auth::may`).
    pub scope: Scope,
}

/// SHA-256 of a token secret, hex-encoded: what the store keeps. A fast hash is right here
/// because secrets are 192 random bits, not passwords.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new random token: `(secret shown once, what to store)`.
pub fn generate_token(name: &str, role: Role, scope: Scope) -> (String, NewToken) {
    let mut rng = rand::rng();
    let mut secret = [0u8; 24];
    rng.fill_bytes(&mut secret);
    let mut id = [0u8; 6];
    rng.fill_bytes(&mut id);
    let secret = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
    let token =
        NewToken { id: format!("tok_{}", hex::encode(id)), name: name.into(), role, scope, hash: hash_secret(&secret) };
    (secret, token)
}

/// The least role a route needs; handlers may ask for more (an apply containing teams needs
/// admin even though the route admits developers).
pub fn route_role(method: &Method, route: &str) -> Role {
    let admin_only = route.starts_with("/api/v1/audit")
        || route.starts_with("/api/v1/tokens")
        || route.starts_with("/api/v1/sdk-tokens");
    if admin_only {
        return Role::Admin;
    }
    if !is_mutating(method, route) {
        return Role::Viewer;
    }
    if route.starts_with("/api/v1/teams") || route.starts_with("/api/v1/environments") {
        Role::Admin
    } else {
        Role::Developer
    }
}

/// Routes that take a POST body only to carry a query: they change nothing.
const QUERY_ROUTES: &[&str] = &["/api/v1/dora"];

fn is_mutating(method: &Method, route: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) && !QUERY_ROUTES.contains(&route)
}

async fn authenticate(state: &AppState, authorization: Option<header::HeaderValue>) -> Result<Principal, ApiError> {
    let Some(value) = authorization else {
        return Err(ApiError::new(
            crate::error::Problem::Unauthorized,
            "missing Authorization header; send `Authorization: Bearer <token>`",
        ));
    };
    let secret = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::new(crate::error::Problem::Unauthorized, "the Authorization header must be `Bearer <token>`")
        })?;
    let record = state.store.token_by_hash(&hash_secret(secret)).await?;
    match record {
        Some(t) if t.revoked_at.is_none() => {
            Ok(Principal { token_id: t.id, name: t.name, role: t.role, scope: t.scope })
        }
        Some(t) => {
            Err(ApiError::new(crate::error::Problem::Unauthorized, format!("token {:?} has been revoked", t.id)))
        }
        None => Err(ApiError::new(crate::error::Problem::Unauthorized, "unknown token")),
    }
}

/// Authenticates the caller, checks the route's role, runs the handler, and records every
/// mutating request — allowed or denied — in the audit trail before answering.
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let attempt = Attempt::of(&req);
    let (method, route) = (attempt.method.clone(), attempt.route.clone());
    let authorization = req.headers().get(header::AUTHORIZATION).cloned();
    let principal = authenticate(&state, authorization).await;
    let (response, actor, role) = match principal {
        Err(e) => (e.into_response(), "anonymous".to_owned(), None),
        Ok(p) => {
            let needed = route_role(&method, &route);
            let (name, role) = (p.name.clone(), p.role);
            let resp = if p.role.allows(needed) {
                req.extensions_mut().insert(p);
                next.run(req).await
            } else {
                ApiError::forbidden(format!("{method} {route} needs the {needed} role; token {name:?} has {role}"))
                    .into_response()
            };
            (resp, name, Some(role))
        }
    };

    if is_mutating(&method, &route) {
        return record(&state, attempt, actor, role, response).await;
    }
    response
}

/// What the audit trail says was attempted.
struct Attempt {
    method: Method,
    /// The route template (`/api/v1/teams/{name}`).
    route: String,
    /// The concrete path.
    target: String,
    request_id: String,
}

impl Attempt {
    fn of(req: &Request) -> Self {
        Attempt {
            method: req.method().clone(),
            route: req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default(),
            target: req.uri().path().to_owned(),
            request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default(),
        }
    }
}

/// Writes the audit entry of a mutating request and returns its response — or, if the entry
/// cannot be written, an error: an unrecorded change must not look successful.
async fn record(state: &AppState, attempt: Attempt, actor: String, role: Option<Role>, response: Response) -> Response {
    let status = response.status();
    let outcome = match status.as_u16() {
        401 | 403 => "denied",
        s if s < 400 => "allowed",
        _ => "failed",
    };
    let detail =
        response.extensions().get::<ApiError>().map(|e| json!({"error": e.problem.code(), "detail": e.detail}));
    let detail = detail.or_else(|| response.extensions().get::<AuditDetail>().map(|d| d.0.clone()));
    let entry = NewAuditEntry {
        time: pave_model::clock::now_ms(),
        actor,
        role: role.map(|r| r.as_str().to_owned()),
        action: format!("{} {}", attempt.method, attempt.route),
        target: attempt.target,
        outcome: outcome.to_owned(),
        status: status.as_u16(),
        request_id: attempt.request_id,
        detail,
    };
    if let Err(e) = state.store.append_audit(&entry).await {
        tracing::error!(error = %e, "could not write the audit entry");
        return ApiError::from(e).into_response();
    }
    response
}

/// For routes that authenticate by other means (webhook signatures): records the request in
/// the audit trail under the actor the handler names (`AuditActor`), allowed or denied.
pub async fn audit_only(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let attempt = Attempt::of(&req);
    let response = next.run(req).await;
    let actor = response.extensions().get::<AuditActor>().map_or_else(|| "anonymous".to_owned(), |a| a.0.clone());
    record(&state, attempt, actor, None, response).await
}

/// Who a request authenticated by other means than a token acted as, for the audit trail.
#[derive(Debug, Clone)]
pub struct AuditActor(pub String);

/// A summary a handler attaches to its response for the audit entry (never secrets).
#[derive(Debug, Clone)]
pub struct AuditDetail(pub serde_json::Value);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ta) = generate_token("ci", Role::Developer, Scope::Unscoped);
        let (b, _) = generate_token("ci", Role::Developer, Scope::Unscoped);
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 48);
        assert_eq!(ta.hash, hash_secret(&a));
        assert!(!ta.hash.contains(&a[TOKEN_PREFIX.len()..]));
    }

    #[test]
    fn route_roles() {
        assert_eq!(route_role(&Method::GET, "/api/v1/services"), Role::Viewer);
        assert_eq!(route_role(&Method::POST, "/api/v1/services"), Role::Developer);
        assert_eq!(route_role(&Method::PUT, "/api/v1/teams/{name}"), Role::Admin);
        assert_eq!(route_role(&Method::GET, "/api/v1/audit"), Role::Admin);
        assert_eq!(route_role(&Method::POST, "/api/v1/apply"), Role::Developer);
        assert_eq!(route_role(&Method::POST, "/api/v1/dora"), Role::Viewer);
        assert_eq!(route_role(&Method::POST, "/api/v1/events"), Role::Developer);
    }
}
