//! Releases: `POST /api/v1/services/{name}/releases?version=V[&commit=SHA]` with the
//! artifact as a tar body stores it by content and records the release.

use std::pin::Pin;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use pave_artifacts::{ArtifactError, ArtifactStore, Limits, Staged};
use pave_model::Timestamp;
use pave_model::release::{Release, validate_version};
use pave_store::WriteContext;
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

fn internal(what: &str) -> impl FnOnce(tokio::task::JoinError) -> ApiError + '_ {
    move |e| ApiError::new(Problem::Internal, format!("{what} failed: {e}"))
}

/// The tar stream's bytes beyond its content an upload may carry: end blocks, and per entry
/// a header, its padding and an extension header (a long name) with its own padding.
const TAR_OVERHEAD_BYTES: u64 = 1024 * 1024;
const TAR_OVERHEAD_PER_ENTRY: u64 = 4 * 512;

/// Hands a request body, chunk by chunk, to the blocking unpacker, so an upload is never whole
/// in memory. An empty chunk marks the end; the channel closing without it means the request
/// went away mid-upload, and the unpacker fails (and removes what it unpacked).
struct BodyReader {
    chunks: tokio::sync::mpsc::Receiver<Bytes>,
    chunk: Bytes,
    ended: bool,
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.chunks.blocking_recv() {
                Some(c) if c.is_empty() => self.ended = true,
                Some(c) => self.chunk = c,
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the upload stopped before its end",
                    ));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}

/// How sending a body to the unpacker ended.
enum Received {
    /// All of it, end mark included.
    Whole,
    /// The unpacker stopped reading: it failed, or the archive ended before the body.
    Stopped,
    /// Over the limit of `limit` bytes.
    TooLarge(u64),
    /// The body could not be read to its end (the client went away, say).
    Broken(String),
}

async fn send_body(mut body: Body, chunks: tokio::sync::mpsc::Sender<Bytes>, limit: u64) -> Received {
    let mut received = 0u64;
    loop {
        match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            None => {
                return if chunks.send(Bytes::new()).await.is_ok() { Received::Whole } else { Received::Stopped };
            }
            Some(Err(e)) => return Received::Broken(e.to_string()),
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else { continue };
                if data.is_empty() {
                    continue;
                }
                received += data.len() as u64;
                if received > limit {
                    return Received::TooLarge(limit);
                }
                if chunks.send(data).await.is_err() {
                    return Received::Stopped;
                }
            }
        }
    }
}

/// `POST …/releases`: the artifact is unpacked and hashed as it arrives, beside the artifact
/// store; it enters the store only for a release the store then records, so nothing of a
/// refused upload stays on disk.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(service): Path<String>,
    ApiQuery(p): ApiQuery<CreateParams>,
    headers: HeaderMap,
    body: Body,
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
    // Also the 404 of a service that does not exist.
    caller.may(&state, pave_model::auth::ServiceAct::PublishRelease, &service, None).await?;
    let limits = Limits { max_bytes: state.config.max_artifact_bytes, max_entries: state.config.max_artifact_entries };
    let raw_limit = limits
        .max_bytes
        .saturating_add(TAR_OVERHEAD_BYTES)
        .saturating_add(limits.max_entries.saturating_mul(TAR_OVERHEAD_PER_ENTRY));
    let too_large = |limit: u64| {
        ApiError::new(Problem::PayloadTooLarge, format!("the upload is over the {limit}-byte limit of a tar stream"))
    };
    let declared = headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > raw_limit) {
        return Err(too_large(raw_limit));
    }
    let artifacts = ArtifactStore::new(&state.config.artifacts_dir);
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let unpacker = artifacts.clone();
    let staging = tokio::task::spawn_blocking(move || {
        unpacker.stage_tar(BodyReader { chunks: rx, chunk: Bytes::new(), ended: false }, limits)
    });
    let received = send_body(body, tx, raw_limit).await;
    let staged = staging.await.map_err(internal("the artifact upload"))?;
    match received {
        Received::TooLarge(limit) => return Err(too_large(limit)),
        Received::Broken(e) => return Err(ApiError::new(Problem::BadRequest, format!("the upload broke off: {e}"))),
        Received::Whole | Received::Stopped => {}
    }
    let staged = staged.map_err(artifact_error)?;
    let release = Release {
        service,
        version: p.version,
        digest: staged.digest.clone(),
        commit: p.commit,
        files: staged.files,
        bytes: staged.bytes,
        created_at: Timestamp(0),
        created_by: String::new(),
    };
    // From here on the request's going away must not stop half-way: the rest runs on its own.
    let (release, created, artifact_new) =
        tokio::spawn(record(state.clone(), artifacts, staged, release, caller.write_context()))
            .await
            .map_err(internal("recording the release"))??;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let detail = AuditDetail(json!({"version": release.version, "digest": release.digest, "created": created}));
    let mut resp = (status, Json(pave_api::ReleaseUpload { release, created, artifact_new })).into_response();
    resp.extensions_mut().insert(detail);
    Ok(resp)
}

/// Records a release of a staged upload: the upload enters the artifact store only when the
/// version is new, and leaves it again when the store refuses the release after all (another
/// request took the version meanwhile). Returns the release, whether it was created, and
/// whether its artifact was new to the store.
async fn record(
    state: AppState,
    artifacts: ArtifactStore,
    staged: Staged,
    release: Release,
    ctx: WriteContext,
) -> Result<(Release, bool, bool), ApiError> {
    let existing = state.store.release(&release.service, &release.version).await?;
    let stored = if existing.is_some() {
        // The store answers (unchanged, or refused as immutable); this copy is not needed.
        tokio::task::spawn_blocking(move || drop(staged)).await.map_err(internal("removing the upload"))?;
        None
    } else {
        let store = artifacts.clone();
        Some(
            tokio::task::spawn_blocking(move || store.commit(staged))
                .await
                .map_err(internal("storing the artifact"))?
                .map_err(artifact_error)?,
        )
    };
    match state.store.create_release(&release, &ctx).await {
        Ok((release, created)) => Ok((release, created, stored.is_some_and(|s| s.new))),
        Err(e) => {
            // Taken out again only when no release names it: another version of the same
            // content may have found it in the store and been recorded meanwhile. (A release
            // recorded between this check and the removal is the one window left.)
            let unused = match &stored {
                Some(s) if s.new => !state.store.artifact_in_use(&s.digest).await.unwrap_or(true),
                _ => false,
            };
            if let Some(s) = stored.filter(|s| s.new && unused) {
                let digest = s.digest.clone();
                let removed = tokio::task::spawn_blocking(move || artifacts.remove(&digest)).await;
                if let Err(e) = removed.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
                    tracing::warn!(digest = %s.digest, error = %e, "cannot remove the artifact of a refused release");
                }
            }
            Err(e.into())
        }
    }
}

pub async fn list(State(state): State<AppState>, Path(service): Path<String>) -> Result<Response, ApiError> {
    if state.store.get(pave_model::Kind::Service, &service).await?.is_none() {
        return Err(ApiError::not_found(format!("service {service:?} does not exist")));
    }
    Ok(Json(pave_api::ReleaseList { releases: state.store.releases(&service).await? }).into_response())
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
            let gates = checks
                .into_iter()
                .map(|c| {
                    let gate =
                        serde_json::to_value(c.gate).map_err(|e| ApiError::new(Problem::Internal, e.to_string()))?;
                    Ok(pave_api::releases::GateResult { gate, passed: c.passed, reason: c.reason })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            policies.push(pave_api::releases::PolicyResult {
                environment: e.metadata.name,
                order: e.spec.order,
                passed: gates.iter().all(|g| g.passed),
                gates,
            });
        }
    }
    Ok(Json(pave_api::ReleaseDetail { release, scans, policy: policies }).into_response())
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
    let mut resp = Json(pave_api::ReleaseScans { release, scans: stored, notes: None }).into_response();
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
    let mut resp = Json(pave_api::ReleaseScans { release, scans: stored, notes: Some(notes) }).into_response();
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
