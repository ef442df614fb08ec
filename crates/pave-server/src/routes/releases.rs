//! Releases: `POST /api/v1/services/{name}/releases?version=V[&commit=SHA]` with the
//! artifact as a tar body stores it by content and records the release.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pave_artifacts::{ArtifactError, ArtifactStore};
use pave_model::Timestamp;
use pave_model::release::{Release, validate_version};
use serde::Deserialize;
use serde_json::json;

use super::Caller;
use crate::AppState;
use crate::auth::AuditDetail;
use crate::error::{ApiError, InvalidField, Problem};
use crate::extract::ApiQuery;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    version: String,
    commit: Option<String>,
}

fn artifact_error(e: ArtifactError) -> ApiError {
    match e {
        ArtifactError::TooLarge { .. } => ApiError::new(Problem::PayloadTooLarge, e.to_string()),
        ArtifactError::Io { .. } => {
            tracing::error!(error = %e, "artifact store failure");
            ApiError::new(Problem::Internal, "the artifact store failed; see the server log")
        }
        other => ApiError::invalid(other.to_string(), vec![]),
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(service): Path<String>,
    ApiQuery(p): ApiQuery<CreateParams>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Err(reason) = validate_version(&p.version) {
        return Err(ApiError::invalid(
            reason.clone(),
            vec![InvalidField { document: None, resource: None, field: "version".into(), reason }],
        ));
    }
    if let Some(c) = p.commit.as_deref().filter(|c| !pave_model::delivery::is_sha(c)) {
        return Err(ApiError::invalid(format!("commit {c:?} is not a commit hash (7-64 hex digits)"), vec![]));
    }
    if state.store.get(pave_model::Kind::Service, &service).await?.is_none() {
        return Err(ApiError::not_found(format!("service {service:?} does not exist")));
    }
    caller.may(&state, pave_model::auth::ServiceAct::PublishRelease, &service, None).await?;
    let store = ArtifactStore::new(&state.config.artifacts_dir);
    let limit = state.config.max_artifact_bytes;
    let stored = tokio::task::spawn_blocking(move || store.put_tar(body.as_ref(), limit))
        .await
        .map_err(|e| ApiError::new(Problem::Internal, format!("artifact upload failed: {e}")))?
        .map_err(artifact_error)?;
    let release = Release {
        service,
        version: p.version,
        digest: stored.digest.clone(),
        commit: p.commit,
        files: stored.files,
        bytes: stored.bytes,
        created_at: Timestamp(0),
        created_by: String::new(),
    };
    let (release, created) = state.store.create_release(&release, &caller.write_context()).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let mut resp =
        (status, Json(json!({ "release": release, "created": created, "artifactNew": stored.new }))).into_response();
    resp.extensions_mut()
        .insert(AuditDetail(json!({"version": release.version, "digest": release.digest, "created": created})));
    Ok(resp)
}

pub async fn list(State(state): State<AppState>, Path(service): Path<String>) -> Result<Response, ApiError> {
    if state.store.get(pave_model::Kind::Service, &service).await?.is_none() {
        return Err(ApiError::not_found(format!("service {service:?} does not exist")));
    }
    Ok(Json(json!({ "releases": state.store.releases(&service).await? })).into_response())
}

/// A release with the scans it carries and, for every environment with a release policy,
/// whether it may be deployed there and why.
pub async fn get_one(
    State(state): State<AppState>,
    Path((service, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let release = release_or_404(&state, &service, &version).await?;
    let scans = state.store.release_scans(&service, &version).await?;
    let mut policies = Vec::new();
    for env in state.store.list(pave_model::Kind::Environment, &Default::default()).await? {
        if let pave_model::Resource::Environment(e) = env.resource
            && let Some(policy) = e.spec.policy.as_ref().filter(|p| !p.require.is_empty())
        {
            let checks = pave_model::policy::evaluate(policy, &scans);
            policies.push(json!({
                "environment": e.metadata.name, "order": e.spec.order,
                "passed": checks.iter().all(|c| c.passed), "gates": checks,
            }));
        }
    }
    let mut doc = serde_json::to_value(&release).map_err(|e| ApiError::new(Problem::Internal, e.to_string()))?;
    doc["scans"] = serde_json::to_value(&scans).map_err(|e| ApiError::new(Problem::Internal, e.to_string()))?;
    doc["policy"] = json!(policies);
    Ok(Json(doc).into_response())
}

async fn release_or_404(state: &AppState, service: &str, version: &str) -> Result<Release, ApiError> {
    state
        .store
        .release(service, version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("service {service:?} has no release {version:?}")))
}

/// What the audit entry of an attached or made scan says: counts, never findings.
fn scans_audit(version: &str, scans: &pave_model::policy::ReleaseScans) -> AuditDetail {
    AuditDetail(json!({
        "version": version,
        "secrets": scans.secrets.as_ref().map(|s| s.findings.len()),
        "vulnerabilities": scans.deps.as_ref().map(|d| d.vulnerabilities.len()),
        "sbomComponents": scans.sbom.as_ref().map(|b| b.components),
    }))
}

/// `POST …/releases/{version}/scans`: attaches scan reports (Pave's JSON, gitleaks' JSON, a
/// CycloneDX SBOM) to a release. When `digest` is given it must be the release's artifact.
pub async fn attach(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, version)): Path<(String, String)>,
    crate::extract::JsonBody(upload): crate::extract::JsonBody<crate::scans::Upload>,
) -> Result<Response, ApiError> {
    let release = release_or_404(&state, &service, &version).await?;
    // Reports uploaded from elsewhere feed the release policy: only the owners' say counts.
    caller.may(&state, pave_model::auth::ServiceAct::PublishRelease, &service, None).await?;
    if let Some(d) = upload.digest.as_deref().filter(|d| *d != release.digest) {
        return Err(ApiError::new(
            Problem::Conflict,
            format!("the reports are of artifact {d}, but release {service} {version} is {}", release.digest),
        ));
    }
    let ctx = caller.write_context();
    let (scans, document) = crate::scans::read(&upload, &ctx.actor, ctx.now, crate::scans::Source::Upload)
        .map_err(|e| ApiError::invalid(e, vec![]))?;
    // A scan Pave made of the stored artifact is not replaced by a report from elsewhere.
    let existing = state.store.release_scans(&service, &version).await?;
    let made_here = [
        (
            "secret scan",
            scans.secrets.is_some() && existing.secrets.as_ref().is_some_and(|s| s.origin.source == "pave"),
        ),
        (
            "a dependency audit",
            scans.deps.is_some() && existing.deps.as_ref().is_some_and(|d| d.origin.source == "pave"),
        ),
        ("an SBOM", scans.sbom.is_some() && existing.sbom.as_ref().is_some_and(|b| b.origin.source == "pave")),
    ];
    if let Some((what, _)) = made_here.iter().find(|(_, clash)| *clash) {
        return Err(ApiError::new(
            Problem::Conflict,
            format!(
                "release {service} {version} carries {what} Pave made of its artifact; an uploaded report cannot \
                 replace it (run `pave release scan {service} {version}` to scan again)"
            ),
        ));
    }
    let stored = state.store.attach_scans(&service, &version, &scans, document.as_deref(), &ctx).await?;
    let mut resp = Json(json!({"release": release, "scans": stored})).into_response();
    resp.extensions_mut().insert(scans_audit(&version, &scans));
    Ok(resp)
}

/// `POST …/releases/{version}/scan`: Pave scans the release's stored artifact (verified by
/// its digest first) with the platform's secret rules and, when the server has one, its OSV
/// database, and attaches the results as its own.
pub async fn scan(
    State(state): State<AppState>,
    caller: Caller,
    Path((service, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let release = release_or_404(&state, &service, &version).await?;
    let ctx = caller.write_context();
    let artifacts = ArtifactStore::new(&state.config.artifacts_dir);
    let (digest, name) = (release.digest.clone(), service.clone());
    let (rules, osv) = (state.config.secret_rules.clone(), state.config.osv_db.clone());
    let timestamp = Timestamp(ctx.now).to_string();
    let (upload, mut notes) = tokio::task::spawn_blocking(move || {
        let dir = artifacts.verify(&digest).map_err(|e| format!("the artifact {digest}: {e}"))?;
        crate::scans::scan_artifact(&dir, &name, rules.as_deref(), osv.as_deref(), &timestamp)
    })
    .await
    .map_err(|e| ApiError::new(Problem::Internal, format!("the scan failed: {e}")))?
    .map_err(|e| {
        tracing::error!(error = %e, "release scan failed");
        ApiError::new(Problem::Internal, format!("the scan could not run: {e}"))
    })?;
    let (scans, document) = crate::scans::read(&upload, &ctx.actor, ctx.now, crate::scans::Source::Pave)
        .map_err(|e| ApiError::new(Problem::Internal, e))?;
    let stored = state.store.attach_scans(&service, &version, &scans, document.as_deref(), &ctx).await?;
    if state.config.osv_db.is_none() {
        notes.push("dependencies not audited: this server has no OSV database (pave serve --osv-db)".to_owned());
    }
    let mut resp = Json(json!({"release": release, "scans": stored, "notes": notes})).into_response();
    resp.extensions_mut().insert(scans_audit(&version, &scans));
    Ok(resp)
}

/// `GET …/releases/{version}/sbom`: the SBOM attached to the release, as it was attached.
pub async fn sbom(
    State(state): State<AppState>,
    Path((service, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    match state.store.release_sbom(&service, &version).await? {
        Some(doc) => Ok(([(axum::http::header::CONTENT_TYPE, "application/vnd.cyclonedx+json")], doc).into_response()),
        None => Err(ApiError::not_found(format!(
            "release {service} {version} has no SBOM; attach one with `pave release attach {service} {version} --sbom FILE`"
        ))),
    }
}
