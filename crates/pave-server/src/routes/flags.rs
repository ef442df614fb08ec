//! Managing flags: `/api/v1/flags` (create, replace, toggle per environment, roll out,
//! archive, apply documents in bulk, list stale ones), `/api/v1/segments`, and SDK tokens
//! (`/api/v1/sdk-tokens`). Every write goes through the store's checks, is audited, appends
//! its events, and wakes the refresher so this replica's SDKs see it at once.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pave_model::FieldError;
use pave_model::flags::{Flag, FlagEnvironment, FlagType, Segment};
use pave_store::{FlagChange, SdkTokenKind, StoredFlag};
use serde::Deserialize;
use serde_json::{Value, json};

use pave_api as api;

use super::Caller;
use crate::AppState;
use crate::auth::AuditDetail;
use crate::error::ApiError;
use crate::extract::{ApiQuery, JsonBody};

fn with_detail(mut resp: Response, detail: Value) -> Response {
    resp.extensions_mut().insert(AuditDetail(detail));
    resp
}

fn flag_from(v: Value, document: Option<usize>) -> Result<Flag, ApiError> {
    let name = v.pointer("/metadata/name").and_then(Value::as_str).map(|n| format!("flag/{n}"));
    Flag::from_value(v).map_err(|errs| ApiError::from_fields(name, document, errs))
}

fn segment_from(v: Value, document: Option<usize>) -> Result<Segment, ApiError> {
    let name = v.pointer("/metadata/name").and_then(Value::as_str).map(|n| format!("segment/{n}"));
    Segment::from_value(v).map_err(|errs| ApiError::from_fields(name, document, errs))
}

async fn flag_value(state: &AppState, f: &StoredFlag) -> Result<Value, ApiError> {
    let mut v = f.to_value();
    let usage = state.store.flag_usage(Some(f.flag.name())).await?;
    v["status"]["usage"] = json!(usage.get(f.flag.name()).cloned().unwrap_or_default());
    v["status"]["warnings"] = json!(operator_warnings(state, &f.flag).await?);
    Ok(v)
}

/// What operator warnings are judged against: the segments (by name) and the SDKs registered
/// per environment. Read once per request, however many flags it checks.
struct WarningFacts {
    segments: BTreeMap<String, Segment>,
    clients: Vec<(String, String)>,
}

impl WarningFacts {
    async fn load(state: &AppState) -> Result<WarningFacts, ApiError> {
        Ok(WarningFacts {
            segments: state.store.segments().await?.into_iter().map(|(_, s)| (s.name().to_owned(), s)).collect(),
            clients: state.store.sdk_clients().await?.into_iter().map(|c| (c.environment, c.sdk)).collect(),
        })
    }

    /// Where `flag` uses an operator that SDKs registered in that environment may not
    /// evaluate (`pave_model::flags::RECENT_OPERATORS`).
    fn of(&self, flag: &Flag) -> Vec<pave_model::flags::OperatorWarning> {
        flag.operator_warnings(&|n| self.segments.get(n).map(|s| s.spec.constraints.clone()), &self.clients)
    }
}

/// [`WarningFacts::of`] for one flag, reading nothing when it can have no warning.
async fn operator_warnings(state: &AppState, flag: &Flag) -> Result<Vec<pave_model::flags::OperatorWarning>, ApiError> {
    if flag.spec.environments.keys().all(|env| flag.recent_operators(env, &|_| None).is_empty())
        && flag.segment_names().is_empty()
    {
        return Ok(Vec::new());
    }
    Ok(WarningFacts::load(state).await?.of(flag))
}

/// Logs each warning of a flag just written (its response carries them too).
fn log_warnings(name: &str, v: &Value) {
    for w in v["status"]["warnings"].as_array().into_iter().flatten() {
        tracing::warn!(flag = name, environment = %w["environment"], "{}", w["message"].as_str().unwrap_or_default());
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    project: Option<String>,
    #[serde(default)]
    archived: bool,
}

/// `GET /api/v1/flags`: flags with their exposure per environment and when each was last
/// evaluated.
pub async fn list(State(state): State<AppState>, ApiQuery(p): ApiQuery<ListParams>) -> Result<Response, ApiError> {
    let flags = state.store.flags(p.project.as_deref(), p.archived).await?;
    let usage = state.store.flag_usage(None).await?;
    let items: Vec<Value> = flags
        .iter()
        .map(|f| {
            let mut v = f.to_value();
            let last_seen = usage.get(f.flag.name()).and_then(|u| u.iter().map(|u| u.last_seen).max());
            v["status"]["lastSeen"] = json!(last_seen);
            v
        })
        .collect();
    Ok(Json(json!({ "flags": items })).into_response())
}

/// `POST /api/v1/flags`: creates a flag; an existing name is a conflict.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(v): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let flag = flag_from(v, None)?;
    caller.may_write_flags(&state, std::slice::from_ref(&flag)).await?;
    let changes = vec![state.store.create_flag(&flag, &caller.write_context()).await?];
    state.flags.written(&state.store).await;
    let stored = state.store.flag(flag.name()).await?.ok_or_else(|| ApiError::not_found("flag vanished"))?;
    let v = flag_value(&state, &stored).await?;
    log_warnings(flag.name(), &v);
    let resp = (StatusCode::CREATED, Json(v)).into_response();
    Ok(with_detail(resp, json!({"flag": flag.name(), "changes": changes})))
}

/// `PUT /api/v1/flags/{name}`: creates or replaces a flag with the document.
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(v): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let flag = flag_from(v, None)?;
    if flag.name() != name {
        return Err(ApiError::invalid(
            format!("metadata.name is {:?} but the URL names {name:?}", flag.name()),
            vec![],
        ));
    }
    caller.may_write_flags(&state, std::slice::from_ref(&flag)).await?;
    let changes = state.store.apply_flags(&[], std::slice::from_ref(&flag), &caller.write_context(), false).await?;
    state.flags.written(&state.store).await;
    let stored = state.store.flag(&name).await?.ok_or_else(|| ApiError::not_found("flag vanished"))?;
    let status = if changes.iter().any(|c| c.action == "create") { StatusCode::CREATED } else { StatusCode::OK };
    let v = flag_value(&state, &stored).await?;
    log_warnings(&name, &v);
    let resp = (status, Json(v)).into_response();
    Ok(with_detail(resp, json!({"flag": name, "changes": changes})))
}

pub async fn get_one(State(state): State<AppState>, Path(name): Path<String>) -> Result<Response, ApiError> {
    match state.store.flag(&name).await? {
        Some(f) => Ok(Json(flag_value(&state, &f).await?).into_response()),
        None => Err(ApiError::not_found(format!("flag {name:?} does not exist"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutBody {
    percent: u32,
}

/// `POST /api/v1/flags/{name}/environments/{env}/{action}` with action `enable`, `disable`
/// or `rollout` (body `{"percent": N}`).
pub async fn environment_action(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env, action)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let percent = match action.as_str() {
        "enable" | "disable" => None,
        "rollout" => {
            let JsonBody(b) = crate::extract::parse_json::<RolloutBody>(&body).map(JsonBody)?;
            if b.percent > 100 {
                return Err(ApiError::invalid(format!("percent: {} is more than 100", b.percent), vec![]));
            }
            Some(b.percent)
        }
        other => {
            return Err(ApiError::not_found(format!("no flag action {other:?}; use enable, disable or rollout")));
        }
    };
    let enabled = match action.as_str() {
        "enable" => Some(true),
        "disable" => Some(false),
        _ => None,
    };
    caller.may_change_stored_flag(&state, &name).await?;
    let env2 = env.clone();
    let (stored, change) = state
        .store
        .modify_flag(&name, &caller.write_context(), move |f| {
            let cfg = f.spec.environments.entry(env2).or_insert_with(FlagEnvironment::default);
            if let Some(e) = enabled {
                cfg.enabled = e;
            }
            if let Some(p) = percent {
                cfg.set_rollout(p);
            }
            Ok(())
        })
        .await?;
    state.flags.written(&state.store).await;
    let resp = Json(flag_value(&state, &stored).await?).into_response();
    Ok(with_detail(
        resp,
        json!({"flag": name, "environment": env, "action": action, "percent": percent, "change": change}),
    ))
}

/// `POST /api/v1/flags/{name}/archive` and `/revive`.
pub async fn archive_action(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let archived = match action.as_str() {
        "archive" => true,
        "revive" => false,
        other => return Err(ApiError::not_found(format!("no flag action {other:?}; use archive or revive"))),
    };
    caller.may_change_stored_flag(&state, &name).await?;
    let stored = state.store.set_flag_archived(&name, archived, &caller.write_context()).await?;
    state.flags.written(&state.store).await;
    let resp = Json(flag_value(&state, &stored).await?).into_response();
    Ok(with_detail(resp, json!({"flag": name, "action": action})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApplyBody {
    /// Flag and Segment documents, in any order.
    documents: Vec<Value>,
    #[serde(default)]
    dry_run: bool,
}

/// What an apply of `flags` (beside `segments`) should warn of: judged with the request's own
/// segments too (a dry run has not stored them).
pub(crate) async fn warnings_of(
    state: &AppState,
    segments: &[Segment],
    flags: &[Flag],
) -> Result<Vec<api::flags::FlagWarning>, ApiError> {
    let mut warnings = Vec::new();
    if flags.is_empty() {
        return Ok(warnings);
    }
    let mut facts = WarningFacts::load(state).await?;
    facts.segments.extend(segments.iter().map(|s| (s.name().to_owned(), s.clone())));
    for f in flags {
        for w in facts.of(f) {
            tracing::warn!(flag = f.name(), environment = %w.environment, "{}", w.message);
            warnings.push(api::flags::FlagWarning {
                flag: f.name().to_owned(),
                environment: w.environment,
                message: w.message,
            });
        }
    }
    Ok(warnings)
}

/// `POST /api/v1/flags/apply`: creates or replaces flag and segment documents in one
/// transaction (all or nothing), or shows what that would do.
pub async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<ApplyBody>,
) -> Result<Response, ApiError> {
    let (mut flags, mut segments, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for (i, doc) in b.documents.into_iter().enumerate() {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
        let parsed = match kind.as_str() {
            "Flag" => flag_from(doc, Some(i)).map(|f| flags.push(f)),
            "Segment" => segment_from(doc, Some(i)).map(|s| segments.push(s)),
            other => Err(ApiError::from_fields(
                None,
                Some(i),
                vec![FieldError::new("kind", format!("expected Flag or Segment, found {other:?}"))],
            )),
        };
        if let Err(e) = parsed {
            errors.extend(e.errors);
        }
    }
    if !errors.is_empty() {
        let detail = errors
            .iter()
            .map(|e| format!("document {}: {}: {}", e.document.unwrap_or(0), e.field, e.reason))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ApiError::invalid(detail, errors));
    }
    caller.may_write_flags(&state, &flags).await?;
    let changes: Vec<FlagChange> =
        state.store.apply_flags(&segments, &flags, &caller.write_context(), b.dry_run).await?;
    if !b.dry_run {
        state.flags.written(&state.store).await;
    }
    let count = |a: &str| changes.iter().filter(|c| c.action == a).count();
    let summary = api::flags::FlagApplySummary {
        created: count("create"),
        updated: count("update"),
        unchanged: count("unchanged"),
    };
    let warnings = warnings_of(&state, &segments, &flags).await?;
    let changes = changes
        .into_iter()
        .map(|c| api::flags::FlagWrite {
            kind: c.kind.to_owned(),
            name: c.name,
            action: c.action.to_owned(),
            fields: c
                .fields
                .into_iter()
                .map(|f| api::catalog::FieldChange { path: f.path, old: f.old, new: f.new })
                .collect(),
        })
        .collect();
    let resp = Json(api::flags::FlagApplyResult { dry_run: b.dry_run, changes, summary, warnings }).into_response();
    Ok(with_detail(resp, json!({"dryRun": b.dry_run, "summary": summary})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StaleParams {
    /// Overrides every type's expected lifetime, in days.
    days: Option<i64>,
    project: Option<String>,
}

/// `GET /api/v1/flags/stale`: flag debt — flags fully on or off everywhere, or unevaluated,
/// for longer than their type's expected lifetime (or `days`).
pub async fn stale(State(state): State<AppState>, ApiQuery(p): ApiQuery<StaleParams>) -> Result<Response, ApiError> {
    if p.days.is_some_and(|d| d < 0) {
        return Err(ApiError::invalid("days: must not be negative", vec![]));
    }
    let now = pave_model::clock::now_ms();
    let flags = state.store.flags(p.project.as_deref(), false).await?;
    let usage = state.store.flag_usage(None).await?;
    let mut out = Vec::new();
    for f in &flags {
        let last_seen = usage.get(f.flag.name()).and_then(|u| u.iter().map(|u| u.last_seen.0).max());
        let facts = pave_model::flags::FlagFacts {
            flag: &f.flag,
            created_at: f.created_at.0,
            exposure: f.exposure.iter().map(|(e, (x, since))| (e.as_str(), (*x, since.0))).collect(),
            last_seen,
        };
        if let Some(s) = pave_model::flags::staleness(&facts, now, p.days) {
            out.push(api::flags::StaleFlag {
                name: f.flag.name().to_owned(),
                project: f.flag.spec.project.clone(),
                flag_type: f.flag.spec.flag_type.as_str().to_owned(),
                owner: f.flag.spec.owner.clone(),
                reason: s.reason,
                since: pave_model::Timestamp(s.since),
                days: (now - s.since) / 86_400_000,
                last_seen: last_seen.map(pave_model::Timestamp),
            });
        }
    }
    let lifetimes = FlagType::ALL.iter().map(|t| (t.as_str().to_owned(), t.expected_lifetime_days())).collect();
    Ok(Json(api::StaleFlags { stale: out, lifetimes }).into_response())
}

pub async fn segments(State(state): State<AppState>) -> Result<Response, ApiError> {
    let segments = state
        .store
        .segments()
        .await?
        .into_iter()
        .map(|(id, s)| api::flags::SegmentDocument {
            kind: "Segment".into(),
            metadata: s.metadata,
            spec: s.spec,
            status: api::flags::SegmentStatus { id },
        })
        .collect();
    Ok(Json(api::flags::SegmentList { segments }).into_response())
}

/// A stored SDK token as the API shows it (never its hash).
fn sdk_token(t: pave_store::SdkToken, secret: Option<String>) -> api::SdkToken {
    api::SdkToken {
        id: t.id,
        name: t.name,
        kind: t.kind.as_str().to_owned(),
        project: t.project,
        environment: t.environment,
        created_at: t.created_at,
        created_by: t.created_by,
        revoked_at: t.revoked_at,
        secret,
    }
}

/// `POST /api/v1/sdk-tokens`: a new SDK token; its secret is in this answer only.
pub async fn create_sdk_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(b): JsonBody<api::flags::NewSdkToken>,
) -> Result<Response, ApiError> {
    let kind = SdkTokenKind::parse(&b.kind).ok_or_else(|| {
        ApiError::invalid(format!("kind: {:?} is not an SDK token kind; use client or frontend", b.kind), vec![])
    })?;
    if b.name.trim().is_empty() || b.name.len() > 100 {
        return Err(ApiError::invalid("name: must be 1-100 characters", vec![]));
    }
    if b.project != "*" {
        pave_model::name::validate(&b.project).map_err(|e| ApiError::invalid(format!("project: {e}"), vec![]))?;
    }
    pave_model::name::validate(&b.environment).map_err(|e| ApiError::invalid(format!("environment: {e}"), vec![]))?;
    let (secret, token) = crate::flags::generate_sdk_token(&b.name, kind, &b.project, &b.environment);
    let stored = state.store.create_sdk_token(&token, &caller.write_context()).await?;
    state.flags.written(&state.store).await;
    let detail = json!({"id": stored.id, "name": stored.name, "kind": kind, "project": stored.project,
        "environment": stored.environment});
    let resp = (StatusCode::CREATED, Json(sdk_token(stored, Some(secret)))).into_response();
    Ok(with_detail(resp, detail))
}

pub async fn list_sdk_tokens(State(state): State<AppState>) -> Result<Response, ApiError> {
    let tokens = state.store.sdk_tokens().await?.into_iter().map(|t| sdk_token(t, None)).collect();
    Ok(Json(api::SdkTokenList { tokens }).into_response())
}

pub async fn revoke_sdk_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let t = state.store.revoke_sdk_token(&id, &caller.write_context()).await?;
    state.flags.written(&state.store).await;
    Ok(with_detail(Json(sdk_token(t, None)).into_response(), json!({"id": id})))
}

pub async fn sdk_clients(State(state): State<AppState>) -> Result<Response, ApiError> {
    let clients = state
        .store
        .sdk_clients()
        .await?
        .into_iter()
        .map(|c| api::flags::SdkClient {
            app_name: c.app_name,
            instance_id: c.instance_id,
            environment: c.environment,
            sdk: c.sdk,
            started_at: c.started_at,
            interval_ms: c.interval_ms,
            first_seen: c.first_seen,
            last_seen: c.last_seen,
        })
        .collect();
    Ok(Json(api::flags::SdkClientList { clients }).into_response())
}
