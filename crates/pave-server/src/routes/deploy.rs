//! Deployments and rollouts: requests go through `pave_deploy::commands` (checked, stored,
//! audited); the engine — in whichever replica holds its lease — is woken to act on them.

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use pave_api as api;
use pave_deploy::commands::{self, Actor, DeployError, DeployRequest};
use pave_model::auth::ServiceAct;
use pave_model::rollout::Strategy;
use serde::Deserialize;
use serde_json::json;

use super::Caller;
use crate::AppState;
use crate::auth::AuditDetail;
use crate::error::{ApiError, InvalidField, Problem};
use crate::extract::{ApiQuery, JsonBody};

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        match e {
            DeployError::NotFound(m) => ApiError::not_found(m),
            DeployError::Invalid(m) => ApiError::invalid(m, Vec::new()),
            DeployError::Forbidden(m) => ApiError::forbidden(m),
            DeployError::Conflict(m) => ApiError::new(Problem::Conflict, m),
            DeployError::Policy { message, failed } => {
                let mut e = ApiError::new(Problem::PolicyFailed, message);
                e.errors = failed
                    .into_iter()
                    .map(|c| InvalidField {
                        document: None,
                        resource: None,
                        field: c.gate.to_string(),
                        reason: c.reason,
                    })
                    .collect();
                e
            }
            DeployError::Store(e) => e.into(),
        }
    }
}

fn actor(c: &Caller) -> Actor {
    Actor { name: c.principal.name.clone(), role: c.principal.role, request_id: Some(c.request_id.clone()) }
}

fn wake(state: &AppState) {
    if let Some(e) = &state.engine {
        e.wake();
    }
}

pub async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<api::DeployRequest>,
) -> Result<Response, ApiError> {
    let strategy = match body.strategy.as_deref() {
        None => None,
        Some(s) => Some(Strategy::parse(s).ok_or_else(|| {
            ApiError::invalid(format!("strategy {s:?} is not one of recreate, rolling, blue-green"), Vec::new())
        })?),
    };
    caller.may(&state, ServiceAct::Deploy, &body.service, Some(&body.environment)).await?;
    let req = DeployRequest {
        service: body.service,
        environment: body.environment,
        version: body.version,
        strategy,
        override_reason: body.override_reason,
    };
    let commands::Deployed { rollout: r, overridden } =
        commands::deploy(&state.store, &req, &actor(&caller), pave_model::clock::now_ms()).await?;
    wake(&state);
    let detail = AuditDetail(json!({
        "rollout": r.id, "environment": r.environment, "version": r.version, "strategy": r.strategy,
        "override": r.override_reason, "overridden": overridden,
    }));
    let mut resp = (StatusCode::CREATED, Json(api::RolloutOne { rollout: r })).into_response();
    resp.extensions_mut().insert(detail);
    Ok(resp)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    service: Option<String>,
    environment: Option<String>,
    limit: Option<i64>,
}

pub async fn list(State(state): State<AppState>, ApiQuery(p): ApiQuery<ListParams>) -> Result<Response, ApiError> {
    let limit = p.limit.unwrap_or(50).clamp(1, 1000);
    let all = state.store.rollouts(p.service.as_deref(), p.environment.as_deref(), limit).await?;
    Ok(Json(api::RolloutList { rollouts: all }).into_response())
}

pub async fn get_one(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let r =
        state.store.rollout(id).await?.ok_or_else(|| ApiError::not_found(format!("rollout {id} does not exist")))?;
    Ok(Json(api::RolloutOne { rollout: r }).into_response())
}

pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Response, ApiError> {
    let act = match action.as_str() {
        "approve" => ServiceAct::Approve,
        "promote" | "resume" => ServiceAct::Deploy,
        "pause" | "abort" => ServiceAct::Halt,
        other => {
            return Err(ApiError::not_found(format!(
                "{other:?} is not a rollout action; use approve, promote, pause, resume or abort"
            )));
        }
    };
    let rollout =
        state.store.rollout(id).await?.ok_or_else(|| ApiError::not_found(format!("rollout {id} does not exist")))?;
    caller.may(&state, act, &rollout.service, Some(&rollout.environment)).await?;
    let (a, now) = (actor(&caller), pave_model::clock::now_ms());
    let r = match action.as_str() {
        "approve" => commands::approve(&state.store, id, &a, now).await?,
        "promote" => commands::promote(&state.store, id, &a, now).await?,
        "abort" => commands::abort(&state.store, id, &a, now).await?,
        "pause" => commands::pause(&state.store, id, &a, now).await?,
        "resume" => commands::resume(&state.store, id, &a, now).await?,
        _ => unreachable!("the action was matched above"),
    };
    wake(&state);
    let mut resp = Json(api::RolloutOne { rollout: r }).into_response();
    resp.extensions_mut().insert(AuditDetail(json!({"rollout": id, "action": action})));
    Ok(resp)
}

pub async fn undo(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, env)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.may(&state, ServiceAct::Deploy, &service, Some(&env)).await?;
    let r = commands::undo(&state.store, &service, &env, &actor(&caller), pave_model::clock::now_ms()).await?;
    wake(&state);
    let detail = AuditDetail(json!({"rollout": r.id, "environment": env, "to": r.version}));
    let mut resp = (StatusCode::CREATED, Json(api::RolloutOne { rollout: r })).into_response();
    resp.extensions_mut().insert(detail);
    Ok(resp)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusParams {
    /// Minutes of golden signals to sum (default 5).
    minutes: Option<u64>,
}

/// Desired state, what the router does now, the replicas, the active rollout and the golden
/// signals per version.
pub async fn status(
    State(state): State<AppState>,
    Path((service, env)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<StatusParams>,
) -> Result<Response, ApiError> {
    let desired = commands::route(&state.store, &service, &env).await?;
    let active = commands::active(&state.store, &service, &env).await.ok();
    let since = SystemTime::now() - Duration::from_secs(60 * p.minutes.unwrap_or(5).clamp(1, 120));
    let (router, signals, replicas) = match &state.engine {
        Some(e) => (
            e.route_table(&service, &env).await,
            e.signals(&service, &env, since).await,
            e.replicas().into_iter().filter(|i| i.service == service && i.env == env).collect(),
        ),
        None => (None, None, Vec::new()),
    };
    let router = router.map(|t| api::deploy::RouterTable {
        sticky: t.sticky,
        versions: t
            .versions
            .into_iter()
            .map(|v| api::deploy::RoutedVersion {
                version: v.version,
                weight: v.weight,
                backends: v.backends.iter().map(ToString::to_string).collect(),
            })
            .collect(),
    });
    let replicas = replicas
        .into_iter()
        .map(|i: pave_runtime::Instance| api::deploy::Replica {
            id: i.id,
            service: i.service,
            env: i.env,
            version: i.version,
            replica: i.replica,
            endpoint: i.endpoint.to_string(),
            config_rev: i.config_rev,
            detail: i.detail,
        })
        .collect();
    let signals = signals.map(|all| {
        all.into_iter()
            .map(|s| api::deploy::VersionSignals {
                version: s.version,
                requests: s.requests,
                errors: s.errors,
                error_rate: s.error_rate,
                p50_ms: s.p50_ms,
                p95_ms: s.p95_ms,
                p99_ms: s.p99_ms,
            })
            .collect()
    });
    Ok(Json(api::DeployStatus {
        url: format!("http://127.0.0.1:{}/", desired.port),
        service,
        environment: env,
        desired,
        router,
        replicas,
        active_rollout: active,
        signals,
        served_here: state.engine.as_ref().is_some_and(|e| e.is_leader()),
    })
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    lines: Option<usize>,
    follow: Option<bool>,
}

/// A service's logs in an environment, every version and replica, each line prefixed with
/// `[version rN]`; `follow=true` keeps the response open and streams new lines.
pub async fn logs(
    State(state): State<AppState>,
    Path((service, env)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<LogParams>,
) -> Result<Response, ApiError> {
    // The names become path segments under the logs directory: only valid names get there.
    for (what, name) in [("service", &service), ("environment", &env)] {
        if let Err(e) = pave_model::name::validate(name) {
            return Err(ApiError::invalid(format!("{what} name {name:?}: {e}"), Vec::new()));
        }
    }
    let Some(delivery) = state.engine.clone() else {
        return Err(ApiError::not_found("this server runs no delivery engine, so it has no replica logs"));
    };
    let lines = p.lines.unwrap_or(100).min(10_000);
    // The runtime keeps the logs (files for the process runtime; another runtime, its own).
    let (sources, mut cursor) = delivery
        .logs(&service, &env, lines)
        .map_err(|e| ApiError::new(Problem::Internal, format!("cannot read logs: {e}")))?;
    if sources.is_empty() && state.store.route_state(&service, &env).await?.is_none() {
        return Err(ApiError::not_found(format!("{service} has never run in {env}")));
    }
    // Replicas print what they are given; whoever may read logs may not read secrets.
    let sealed = state.store.sealed_secrets(&service, &env).await?;
    let mut revision = sealed.revision;
    let mut secrets = open_secrets(&state, &service, &env, &sealed)?;
    let mut text = String::new();
    for l in &sources {
        prefixed(&mut text, &format!("[{}] ", l.label), &pave_runtime::scrub(&l.text, &secrets));
    }
    let plain = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    if !p.follow.unwrap_or(false) {
        return Ok((plain, text).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let _ = tx.try_send(Bytes::from(text));
    tokio::spawn(async move {
        // Follows for at most an hour; new replicas' files are picked up as they appear.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let chunks = delivery.logs_since(&service, &env, &mut cursor).unwrap_or_default();
            if chunks.is_empty() {
                if tx.is_closed() {
                    return;
                }
                continue;
            }
            // New lines may print a secret changed meanwhile: scrub the new value too, and keep
            // the old one (asked only when there is something to send).
            if let Ok(set) = state.store.sealed_secrets(&service, &env).await
                && set.revision != revision
                && let Ok(newer) = open_secrets(&state, &service, &env, &set)
            {
                revision = set.revision;
                // Named by revision, so each value set while following stays scrubbed.
                secrets.extend(newer.into_iter().map(|(k, v)| (format!("{k} (revision {})", set.revision), v)));
            }
            let mut out = String::new();
            for l in &chunks {
                prefixed(&mut out, &format!("[{}] ", l.label), &pave_runtime::scrub(&l.text, &secrets));
            }
            if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
                return;
            }
            if tx.is_closed() {
                return;
            }
        }
    });
    Ok((plain, Body::new(ChannelBody(rx))).into_response())
}

/// The opened values of a service's secrets in an environment, to scrub from what its
/// replicas printed. Logs are not served when they cannot be scrubbed.
fn open_secrets(
    state: &AppState,
    service: &str,
    env: &str,
    sealed: &pave_store::SecretSet,
) -> Result<std::collections::BTreeMap<String, pave_vault::SecretValue>, ApiError> {
    let mut out = std::collections::BTreeMap::new();
    if sealed.secrets.is_empty() {
        return Ok(out);
    }
    let key = state.master_key.as_ref().ok_or_else(|| {
        ApiError::new(Problem::Internal, "this control plane has no master key, so it cannot scrub secrets from logs")
    })?;
    for s in &sealed.secrets {
        let at = pave_vault::SecretRef { service, environment: env, name: &s.name, version: s.version };
        let value = key.open(&at, &s.sealed).map_err(|e| {
            ApiError::new(Problem::Internal, format!("cannot open secret {} to scrub it from logs: {e}", s.name))
        })?;
        out.insert(s.name.clone(), value);
    }
    Ok(out)
}

/// Appends each line of `text` to `out` behind `label`.
fn prefixed(out: &mut String, label: &str, text: &str) {
    for line in text.lines() {
        out.push_str(label);
        out.push_str(line);
        out.push('\n');
    }
}

/// A response body fed from a channel: chunks are sent as they come.
pub(crate) struct ChannelBody(pub(crate) tokio::sync::mpsc::Receiver<Bytes>);

impl axum::body::HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// `GET /api/v1/rollouts/{id}/events`: the rollout's events as server-sent events — every
/// step, route switch, measurement and judgement, from the start (or after `Last-Event-ID`),
/// then live until the rollout ends. Each is `id: N`, `event: KIND`, `data: {event JSON}`.
pub async fn events_stream(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let r =
        state.store.rollout(id).await?.ok_or_else(|| ApiError::not_found(format!("rollout {id} does not exist")))?;
    let after = match headers.get("last-event-id").map(|v| v.to_str().map(str::parse::<i64>)) {
        None => 0,
        Some(Ok(Ok(n))) if n >= 0 => n,
        Some(_) => return Err(ApiError::new(Problem::BadRequest, "Last-Event-ID must be an event id (a number)")),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let store = state.store.clone();
    tokio::spawn(async move {
        let subject = format!("service/{}", r.service);
        let mut after = after;
        // A rollout waiting for a person can wait long: the stream ends after a day anyway.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(24 * 3600);
        while tokio::time::Instant::now() < deadline {
            // Whether it had ended before this read: then these are its last events.
            let ended = matches!(store.rollout(id).await, Ok(Some(now)) if now.state.is_terminal());
            let q = pave_store::EventQuery { after, kinds: Vec::new(), subject: Some(subject.clone()), limit: 500 };
            let batch = match store.events(&q).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "rollout event stream cannot read events");
                    return;
                }
            };
            let mut out = String::new();
            for e in &batch {
                after = after.max(e.id);
                if e.data.get("rollout").and_then(serde_json::Value::as_i64) == Some(id) {
                    let data = serde_json::to_string(e).unwrap_or_default();
                    out.push_str(&format!("id: {}\nevent: {}\ndata: {data}\n\n", e.id, e.kind));
                }
            }
            if batch.len() as i64 == q.limit {
                // More are waiting: send these and read on at once.
                if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
                    return;
                }
                continue;
            }
            if ended {
                let _ = tx.send(Bytes::from(out + "event: end\ndata: {}\n\n")).await;
                return;
            }
            // A comment line keeps proxies from timing the stream out.
            let chunk = if out.is_empty() { ": waiting\n\n".to_owned() } else { out };
            if tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    Ok(([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], Body::new(ChannelBody(rx)))
        .into_response())
}
