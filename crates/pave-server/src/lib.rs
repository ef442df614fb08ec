//! Pave's control plane: the HTTP API over the store, with authentication, the audit trail,
//! request ids, metrics and graceful shutdown. Handlers hold no state the database does not
//! have, so several replicas on one PostgreSQL serve together.

pub mod auth;
pub mod error;
pub mod extract;
pub mod facts;
pub mod flags;
pub mod metrics;
pub mod openapi;
pub mod request_id;
pub mod routes;
pub mod scans;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use pave_model::{Kind, Role};
use pave_store::{Store, WriteContext};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::routes::{admin, catalog, delivery, health};

/// What every handler can reach. One `Arc` inside, so the clone axum makes for each layer
/// and handler of every request is one reference count, not one per part.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The parts of [`AppState`].
pub struct Shared {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub config: Arc<ServerConfig>,
    /// This replica's copy of the delivery facts, checked against the store on every use.
    pub facts: Arc<facts::FactsCache>,
    /// The delivery engine, when this process runs one (it acts only while it holds the lease).
    pub engine: Option<Arc<dyn pave_deploy::Delivery>>,
    /// What the flag SDK endpoints serve, kept current by a refresher `serve` runs.
    pub flags: Arc<flags::FlagServing>,
    /// Seals secrets as they arrive; `None` refuses them (the store cannot open them anyway).
    pub master_key: Option<Arc<pave_vault::Keyring>>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(store: Store, config: ServerConfig) -> Self {
        Self(Arc::new(Shared {
            store,
            metrics: Arc::default(),
            config: Arc::new(config),
            facts: Arc::default(),
            engine: None,
            flags: Arc::default(),
            master_key: None,
        }))
    }

    /// Adds the master key secrets are sealed under; call before the state is shared.
    pub fn with_master_key(mut self, key: Arc<pave_vault::Keyring>) -> Self {
        Arc::get_mut(&mut self.0).expect("with_master_key is called before the state is cloned").master_key = Some(key);
        self
    }

    /// Adds the delivery engine; call before the state is shared.
    pub fn with_engine(mut self, engine: Arc<dyn pave_deploy::Delivery>) -> Self {
        Arc::get_mut(&mut self.0).expect("with_engine is called before the state is cloned").engine = Some(engine);
        self
    }
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Shared secret of GitHub webhooks (`X-Hub-Signature-256`); without it they are refused.
    pub github_webhook_secret: Option<String>,
    /// Token GitLab webhooks must send (`X-Gitlab-Token`); without it they are refused.
    pub gitlab_webhook_token: Option<String>,
    /// Where release artifacts are stored by content. Replicas need it on shared storage.
    pub artifacts_dir: std::path::PathBuf,
    /// Largest accepted artifact upload, in bytes of content.
    pub max_artifact_bytes: u64,
    /// Most entries (files and directories) one artifact upload may hold.
    pub max_artifact_entries: u64,
    /// How long a connection may take to send a request's head; one that takes longer is
    /// closed, so half-open connections cannot pile up.
    pub header_read_timeout: std::time::Duration,
    /// Secret rules (gitleaks' TOML format) the server scans releases with; the built-in
    /// rules without it.
    pub secret_rules: Option<std::path::PathBuf>,
    /// OSV records (a directory or zip) the server audits releases' dependencies against.
    pub osv_db: Option<std::path::PathBuf>,
}

/// What [`ServerConfig::header_read_timeout`] is unless configured.
pub const DEFAULT_HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024 * 1024,
            github_webhook_secret: None,
            gitlab_webhook_token: None,
            artifacts_dir: std::path::PathBuf::from(".pave/artifacts"),
            max_artifact_bytes: 1024 * 1024 * 1024,
            max_artifact_entries: pave_artifacts::DEFAULT_MAX_ENTRIES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            secret_rules: None,
            osv_db: None,
        }
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let api = Router::new()
        .merge(Kind::ALL.into_iter().fold(Router::new(), |r, kind| r.merge(catalog::routes(kind))))
        // The upload route reads its body as a stream and limits it itself.
        .route("/api/v1/services/{name}/releases", get(routes::releases::list).post(routes::releases::create))
        .route("/api/v1/services/{name}/releases/{version}", get(routes::releases::get_one))
        .route("/api/v1/services/{name}/releases/{version}/scans", post(routes::releases::attach))
        .route("/api/v1/services/{name}/releases/{version}/scan", post(routes::releases::scan))
        .route("/api/v1/services/{name}/releases/{version}/sbom", get(routes::releases::sbom))
        .route("/api/v1/services/{name}/secrets", get(routes::secrets::list))
        .route(
            "/api/v1/services/{name}/secrets/{secret}",
            axum::routing::put(routes::secrets::put)
                .delete(routes::secrets::remove)
                // A value is at most 64 KiB (and a newline): refused before a larger one is read.
                .layer(DefaultBodyLimit::max(pave_model::secrets::MAX_VALUE_BYTES + 2)),
        )
        .route("/api/v1/deployments", post(routes::deploy::deploy))
        .route("/api/v1/rollouts", get(routes::deploy::list))
        .route("/api/v1/rollouts/{id}", get(routes::deploy::get_one))
        .route("/api/v1/rollouts/{id}/events", get(routes::deploy::events_stream))
        .route("/api/v1/rollouts/{id}/{action}", post(routes::deploy::act))
        .route("/api/v1/services/{name}/environments/{env}/status", get(routes::deploy::status))
        .route("/api/v1/services/{name}/environments/{env}/logs", get(routes::deploy::logs))
        .route("/api/v1/services/{name}/environments/{env}/undo", post(routes::deploy::undo))
        .route("/api/v1/flags", get(routes::flags::list).post(routes::flags::create))
        .route("/api/v1/flags/apply", post(routes::flags::apply))
        .route("/api/v1/flags/stale", get(routes::flags::stale))
        .route("/api/v1/flags/{name}", get(routes::flags::get_one).put(routes::flags::put))
        .route("/api/v1/flags/{name}/{action}", post(routes::flags::archive_action))
        .route("/api/v1/flags/{name}/environments/{env}/{action}", post(routes::flags::environment_action))
        .route("/api/v1/segments", get(routes::flags::segments))
        .route("/api/v1/sdk-tokens", get(routes::flags::list_sdk_tokens).post(routes::flags::create_sdk_token))
        .route("/api/v1/sdk-tokens/{id}", delete(routes::flags::revoke_sdk_token))
        .route("/api/v1/sdk-clients", get(routes::flags::sdk_clients))
        .route("/api/v1/apply", post(catalog::apply))
        .route("/api/v1/events", get(admin::events).post(delivery::report))
        .route("/api/v1/dora", get(delivery::dora_get).post(delivery::dora_post))
        .route("/api/v1/timeline", get(delivery::timeline))
        .route("/api/v1/audit", get(admin::audit))
        .route("/api/v1/tokens", get(admin::list_tokens).post(admin::create_token))
        .route("/api/v1/tokens/{id}", delete(admin::revoke_token))
        .route("/api/v1/whoami", get(admin::whoami))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::guard));
    // Webhooks authenticate by signature, not by token; they are audited all the same.
    let hooks = Router::new()
        .route("/api/v1/webhooks/github", post(routes::hooks::github))
        .route("/api/v1/webhooks/gitlab", post(routes::hooks::gitlab))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::audit_only));
    // Flag SDKs authenticate with SDK tokens and speak their own protocols.
    let sdk_report_limit = DefaultBodyLimit::max(routes::sdk::MAX_REPORT_BYTES);
    let sdk = Router::new()
        .route("/api/client/features", get(routes::sdk::client_features))
        .route("/api/client/streaming", get(routes::sdk::client_streaming))
        .route("/api/client/register", post(routes::sdk::client_register).layer(sdk_report_limit))
        .route("/api/client/metrics", post(routes::sdk::client_metrics).layer(sdk_report_limit))
        .route("/api/frontend", get(routes::sdk::frontend).post(routes::sdk::frontend))
        .route("/api/frontend/client/register", post(routes::sdk::client_register).layer(sdk_report_limit))
        .route("/api/frontend/client/metrics", post(routes::sdk::client_metrics).layer(sdk_report_limit))
        .route("/ofrep/v1/evaluate/flags", post(routes::sdk::ofrep_bulk))
        .route("/ofrep/v1/evaluate/flags/{key}", post(routes::sdk::ofrep_one));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        // The API's description holds no data, and SDK authors read it before they have a token.
        .route("/api/v1/openapi.json", get(admin::openapi))
        .merge(api)
        .merge(hooks)
        .merge(sdk)
        .fallback(|uri: axum::http::Uri| async move { ApiError::not_found(format!("no route for {}", uri.path())) })
        .method_not_allowed_fallback(|method: axum::http::Method, uri: axum::http::Uri| async move {
            ApiError::new(error::Problem::MethodNotAllowed, format!("{method} is not allowed on {}", uri.path()))
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::observe))
        .layer(axum::middleware::from_fn(request_id::layer))
        .with_state(state)
}

/// Creates the first admin token if the store has none. Returns the secret when this call
/// created it (it is shown once and never stored), `None` when a token already existed.
/// `preset` lets automation choose the secret (`PAVE_BOOTSTRAP_TOKEN`).
pub async fn bootstrap_admin(store: &Store, preset: Option<&str>) -> Result<Option<String>, pave_store::StoreError> {
    let (mut secret, mut token) = auth::generate_token("admin", Role::Admin, pave_model::auth::Scope::Unscoped);
    if let Some(p) = preset {
        secret = p.to_owned();
        token.hash = auth::hash_secret(p);
    }
    let created = store.bootstrap_token(&token, &WriteContext::system(pave_model::clock::now_ms())).await?;
    Ok(created.then_some(secret))
}

/// Logs how many live developer tokens are unscoped (made before tokens named a user or a
/// team), and what that means, so an operator knows what to scope. Returns the count.
pub async fn report_unscoped_tokens(store: &Store) -> Result<usize, pave_store::StoreError> {
    let tokens = store.list_tokens().await?;
    let unscoped = tokens.iter().filter(|t| t.note.is_some()).count();
    if unscoped > 0 {
        tracing::warn!(
            unscoped,
            "{unscoped} developer token(s) are unscoped: they may change, release, deploy and set secrets of every \
             team's service; `pave token list` names them, and `pave token create --user EMAIL` or `--team TEAM` \
             makes tokens limited to a team's services"
        );
    }
    Ok(unscoped)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish.
/// Each connection is HTTP/1.1 with [`ServerConfig::header_read_timeout`] for every request
/// head. Before the first request, what interrupted artifact uploads left is removed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = state.store.clone();
    let artifacts = pave_artifacts::ArtifactStore::new(&state.config.artifacts_dir);
    match tokio::task::spawn_blocking(move || artifacts.sweep()).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(removed = n, "removed what interrupted artifact uploads left"),
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot remove what interrupted artifact uploads left"),
        Err(e) => tracing::warn!(error = %e, "the sweep of interrupted artifact uploads failed"),
    }
    if let Err(e) = state.flags.refresh(&store, true).await {
        tracing::warn!(error = %e, "cannot load flags; SDK endpoints will answer once they load");
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let refresher = tokio::spawn(state.flags.clone().run(store.clone(), stopped));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(state.config.header_read_timeout);
    let app = app(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = graceful.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    graceful.shutdown().await;
    let _ = refresher.await;
    store.close().await;
    Ok(())
}

/// A failed accept: a connection that went away before it was taken is nothing; anything else
/// (out of file descriptors, say) is logged and waited out instead of spinning.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
}
