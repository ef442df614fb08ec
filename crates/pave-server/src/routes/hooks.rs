//! GitHub and GitLab webhook receivers: verify the signature before reading anything, map the
//! payload to delivery facts, store them. A bad signature is refused (and audited) and
//! nothing of its payload is kept.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use pave_model::delivery::Report;
use pave_model::{Kind, Resource};
use pave_store::{ListQuery, WriteContext};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{AuditActor, AuditDetail};
use crate::error::{ApiError, Problem};
use crate::webhooks::{self, Lookup, Outcome, WebhookError};

/// Repository → service, from each service's `spec.repository` and its
/// `github.com/project-slug` / `gitlab.com/project-slug` annotations.
struct Repositories(HashMap<String, String>);

impl Lookup for Repositories {
    fn service_for(&self, normalized: &str) -> Option<String> {
        self.0.get(normalized).cloned()
    }
}

async fn repositories(state: &AppState) -> Result<Repositories, ApiError> {
    let mut map = HashMap::new();
    for s in state.store.list(Kind::Service, &ListQuery::default()).await? {
        if let Resource::Service(svc) = s.resource {
            let name = svc.metadata.name.clone();
            if let Some(r) = &svc.spec.repository {
                map.insert(webhooks::normalize_repository(r), name.clone());
            }
            for (host, key) in [("github.com", "github.com/project-slug"), ("gitlab.com", "gitlab.com/project-slug")] {
                if let Some(slug) = svc.metadata.annotations.get(key) {
                    map.insert(webhooks::normalize_repository(&format!("{host}/{slug}")), name.clone());
                }
            }
        }
    }
    Ok(Repositories(map))
}

fn with_actor(mut resp: Response, actor: &str) -> Response {
    resp.extensions_mut().insert(AuditActor(actor.to_owned()));
    resp
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn github(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    const ACTOR: &str = "webhook:github";
    let Some(secret) = state.config.github_webhook_secret.as_deref() else {
        return with_actor(
            ApiError::not_found("GitHub webhooks are not enabled: start pave serve with PAVE_GITHUB_WEBHOOK_SECRET or --github-webhook-secret-file")
                .into_response(),
            ACTOR,
        );
    };
    if !webhooks::github_signature_ok(secret.as_bytes(), &body, header(&headers, "x-hub-signature-256")) {
        return with_actor(
            ApiError::new(Problem::Unauthorized, "X-Hub-Signature-256 is missing or does not match the payload")
                .into_response(),
            ACTOR,
        );
    }
    let kind = header(&headers, "x-github-event").unwrap_or("").to_owned();
    let delivery = header(&headers, "x-github-delivery").unwrap_or("").to_owned();
    let result = receive(&state, &body, ACTOR, |p, l| webhooks::github(&kind, p, l)).await;
    with_actor(finish(result, &kind, &delivery), ACTOR)
}

pub async fn gitlab(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    const ACTOR: &str = "webhook:gitlab";
    let Some(token) = state.config.gitlab_webhook_token.as_deref() else {
        return with_actor(
            ApiError::not_found("GitLab webhooks are not enabled: start pave serve with PAVE_GITLAB_WEBHOOK_TOKEN or --gitlab-webhook-token-file")
                .into_response(),
            ACTOR,
        );
    };
    if !webhooks::gitlab_token_ok(token.as_bytes(), header(&headers, "x-gitlab-token")) {
        return with_actor(
            ApiError::new(Problem::Unauthorized, "X-Gitlab-Token is missing or wrong").into_response(),
            ACTOR,
        );
    }
    let kind = header(&headers, "x-gitlab-event").unwrap_or("").to_owned();
    let delivery = header(&headers, "x-gitlab-event-uuid").unwrap_or("").to_owned();
    let result = receive(&state, &body, ACTOR, |p, l| webhooks::gitlab(&kind, p, l)).await;
    with_actor(finish(result, &kind, &delivery), ACTOR)
}

async fn receive(
    state: &AppState,
    body: &[u8],
    actor: &str,
    map: impl FnOnce(&Value, &dyn Lookup) -> Result<Outcome, WebhookError>,
) -> Result<Outcome, ApiError> {
    let payload: Value = crate::extract::parse_json(body)?;
    let repos = repositories(state).await?;
    let outcome = map(&payload, &repos).map_err(|e| ApiError::invalid(e.to_string(), vec![]))?;
    let Outcome::Reports(mut reports) = outcome else {
        return Ok(outcome);
    };
    // An incident seen before keeps its detection time and severity when it is closed.
    for r in &mut reports {
        if let Report::Incident(i) = r
            && let Some(known) = state.store.incident(&i.id).await?
        {
            i.detected_at = known.detected_at.or(i.detected_at);
            if i.severity == "unknown" {
                i.severity = known.severity;
            }
        }
    }
    let ctx = WriteContext { actor: actor.to_owned(), request_id: None, now: pave_model::clock::now_ms() };
    state.store.report(&reports, &ctx).await?;
    Ok(Outcome::Reports(reports))
}

fn finish(result: Result<Outcome, ApiError>, kind: &str, delivery: &str) -> Response {
    match result {
        Err(e) => e.into_response(),
        Ok(Outcome::Ignored(why)) => {
            let mut r = Json(json!({"event": kind, "stored": 0, "ignored": why})).into_response();
            r.extensions_mut().insert(AuditDetail(json!({"event": kind, "delivery": delivery, "ignored": why})));
            r
        }
        Ok(Outcome::Reports(reports)) => {
            let ids: Vec<String> = reports.iter().map(|r| format!("{}/{}", r.noun(), r.key())).collect();
            let mut r = Json(json!({"event": kind, "stored": reports.len(), "facts": ids})).into_response();
            r.extensions_mut().insert(AuditDetail(json!({"event": kind, "delivery": delivery, "facts": ids})));
            r
        }
    }
}
