//! A service's secrets: `PUT /api/v1/services/{name}/secrets/{secret}?environment=E` with the
//! value as the raw body (never JSON, whose parse errors would quote it), `DELETE` the same,
//! `GET /api/v1/services/{name}/secrets[?environment=E]` for names, versions, who and when.
//! The value is sealed here, before it reaches the store; no response, event, audit entry or
//! log line carries it.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use pave_model::auth::ServiceAct;
use pave_model::secrets::{validate_name, validate_value};
use pave_model::{Kind, Resource};
use pave_vault::{SecretRef, SecretValue};
use serde::Deserialize;
use serde_json::json;

use super::Caller;
use crate::AppState;
use crate::auth::AuditDetail;
use crate::error::{ApiError, InvalidField, Problem};
use crate::extract::{ApiQuery, RawBody};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvParam {
    environment: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    environment: Option<String>,
}

fn invalid(field: &str, reason: String) -> ApiError {
    ApiError::invalid(
        reason.clone(),
        vec![InvalidField { document: None, resource: None, field: field.into(), reason }],
    )
}

/// The service's port variable, which a secret must not shadow; also checks it exists.
async fn port_env(state: &AppState, service: &str) -> Result<Option<String>, ApiError> {
    match state.store.get(Kind::Service, service).await?.map(|s| s.resource) {
        Some(Resource::Service(s)) => Ok(s.spec.runtime.map(|r| r.port_env)),
        _ => Err(ApiError::not_found(format!("service {service:?} does not exist"))),
    }
}

/// Whether replicas of the service run in the environment (and will be rolled).
async fn running(state: &AppState, service: &str, env: &str) -> Result<bool, ApiError> {
    let route = state.store.route_state(service, env).await?;
    Ok(route.is_some_and(|r| r.versions.iter().any(|v| v.replicas > 0)))
}

pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, name)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<EnvParam>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let Some(key) = state.master_key.clone() else {
        return Err(ApiError::new(
            Problem::Unavailable,
            "this control plane has no master key, so it cannot store secrets",
        ));
    };
    let key_id = key.id().to_owned();
    let port_env = port_env(&state, &service).await?;
    caller.may(&state, ServiceAct::ChangeSecrets, &service, Some(&p.environment)).await?;
    validate_name(&name, port_env.as_deref()).map_err(|r| invalid("name", r))?;
    let value = SecretValue::new(validate_value(&body).map_err(|r| invalid("value", r))?.to_owned());
    drop(body);
    let (svc, env, n) = (service.clone(), p.environment.clone(), name.clone());
    let seal = move |version: i64| {
        key.seal(&SecretRef { service: &svc, environment: &env, name: &n, version }, &value).map_err(|e| e.to_string())
    };
    let info = state.store.set_secret(&service, &p.environment, &name, &key_id, &seal, &caller.write_context()).await?;
    let rolling = running(&state, &service, &p.environment).await?;
    if let Some(engine) = &state.engine {
        engine.wake();
    }
    let detail = AuditDetail(
        json!({"environment": info.environment, "name": info.name, "version": info.version, "keyId": info.key_id}),
    );
    let mut resp = Json(pave_api::SecretWrite { secret: info, removed: None, rolling }).into_response();
    resp.extensions_mut().insert(detail);
    Ok(resp)
}

pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, name)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<EnvParam>,
) -> Result<Response, ApiError> {
    port_env(&state, &service).await?;
    caller.may(&state, ServiceAct::ChangeSecrets, &service, Some(&p.environment)).await?;
    let info = state.store.remove_secret(&service, &p.environment, &name, &caller.write_context()).await?;
    let rolling = running(&state, &service, &p.environment).await?;
    if let Some(engine) = &state.engine {
        engine.wake();
    }
    let detail = AuditDetail(json!({"environment": info.environment, "name": info.name, "version": info.version}));
    let mut resp = Json(pave_api::SecretWrite { secret: info, removed: Some(true), rolling }).into_response();
    resp.extensions_mut().insert(detail);
    Ok(resp)
}

pub async fn list(
    State(state): State<AppState>,
    Path(service): Path<String>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    port_env(&state, &service).await?;
    let secrets = state.store.secrets(Some(&service), p.environment.as_deref()).await?;
    Ok(Json(pave_api::SecretList { secrets }).into_response())
}
