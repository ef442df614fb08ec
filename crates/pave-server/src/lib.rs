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
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};
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

/// One served operation: a method and a path template (`/api/v1/flags/{name}`), as axum
/// and the OpenAPI document spell them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Operation {
    pub method: Method,
    pub path: String,
}

/// A table of routes: each entry adds its handler to the router *and* its operation to the
/// list, so what [`operations`] reports is what [`app`] serves (the OpenAPI check reads it).
pub struct Routes {
    router: Router<AppState>,
    operations: Vec<Operation>,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    pub fn new() -> Self {
        Routes { router: Router::new(), operations: Vec::new() }
    }

    /// Serves `handler` for `method` on `path`.
    pub fn on<H, T>(self, method: Method, path: &str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.on_layered(method, path, handler, |m| m)
    }

    /// As [`Routes::on`], with a layer of this one operation (a body limit, say).
    pub fn on_layered<H, T>(
        mut self,
        method: Method,
        path: &str,
        handler: H,
        layer: impl FnOnce(MethodRouter<AppState>) -> MethodRouter<AppState>,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("routes use the methods axum filters on");
        self.router = self.router.route(path, layer(axum::routing::on(filter, handler)));
        self.operations.push(Operation { method, path: path.to_owned() });
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.operations.extend(other.operations);
        self
    }

    /// The operations of this table, in the order they were added.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// Applies `f` to the router (a route layer over every operation added so far).
    fn map_router(mut self, f: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Self {
        self.router = f(self.router);
        self
    }
}

/// Routes under `/api/v1` that need a bearer token.
fn api_routes() -> Routes {
    use Method as M;
    use routes::{deploy, flags, releases, secrets};
    let secret_limit = || DefaultBodyLimit::max(pave_model::secrets::MAX_VALUE_BYTES + 2);
    Routes::new()
        .merge(Kind::ALL.into_iter().fold(Routes::new(), |r, kind| r.merge(catalog::routes(kind))))
        // The upload route reads its body as a stream and limits it itself.
        .on(M::GET, "/api/v1/services/{name}/releases", releases::list)
        .on(M::POST, "/api/v1/services/{name}/releases", releases::create)
        .on(M::GET, "/api/v1/services/{name}/releases/{version}", releases::get_one)
        .on(M::POST, "/api/v1/services/{name}/releases/{version}/scans", releases::attach)
        .on(M::POST, "/api/v1/services/{name}/releases/{version}/scan", releases::scan)
        .on(M::GET, "/api/v1/services/{name}/releases/{version}/sbom", releases::sbom)
        .on(M::GET, "/api/v1/services/{name}/secrets", secrets::list)
        // A value is at most 64 KiB (and a newline): refused before a larger one is read.
        .on_layered(M::PUT, "/api/v1/services/{name}/secrets/{secret}", secrets::put, |m| m.layer(secret_limit()))
        .on_layered(M::DELETE, "/api/v1/services/{name}/secrets/{secret}", secrets::remove, |m| m.layer(secret_limit()))
        .on(M::POST, "/api/v1/deployments", deploy::deploy)
        .on(M::GET, "/api/v1/rollouts", deploy::list)
        .on(M::GET, "/api/v1/rollouts/{id}", deploy::get_one)
        .on(M::GET, "/api/v1/rollouts/{id}/events", deploy::events_stream)
        .on(M::POST, "/api/v1/rollouts/{id}/{action}", deploy::act)
        .on(M::GET, "/api/v1/services/{name}/environments/{env}/status", deploy::status)
        .on(M::GET, "/api/v1/services/{name}/environments/{env}/logs", deploy::logs)
        .on(M::POST, "/api/v1/services/{name}/environments/{env}/undo", deploy::undo)
        .on(M::GET, "/api/v1/flags", flags::list)
        .on(M::POST, "/api/v1/flags", flags::create)
        .on(M::POST, "/api/v1/flags/apply", flags::apply)
        .on(M::GET, "/api/v1/flags/stale", flags::stale)
        .on(M::GET, "/api/v1/flags/{name}", flags::get_one)
        .on(M::PUT, "/api/v1/flags/{name}", flags::put)
        .on(M::POST, "/api/v1/flags/{name}/{action}", flags::archive_action)
        .on(M::POST, "/api/v1/flags/{name}/environments/{env}/{action}", flags::environment_action)
        .on(M::GET, "/api/v1/segments", flags::segments)
        .on(M::GET, "/api/v1/sdk-tokens", flags::list_sdk_tokens)
        .on(M::POST, "/api/v1/sdk-tokens", flags::create_sdk_token)
        .on(M::DELETE, "/api/v1/sdk-tokens/{id}", flags::revoke_sdk_token)
        .on(M::GET, "/api/v1/sdk-clients", flags::sdk_clients)
        .on(M::POST, "/api/v1/apply", catalog::apply)
        .on(M::GET, "/api/v1/events", admin::events)
        .on(M::POST, "/api/v1/events", delivery::report)
        .on(M::GET, "/api/v1/dora", delivery::dora_get)
        .on(M::POST, "/api/v1/dora", delivery::dora_post)
        .on(M::GET, "/api/v1/timeline", delivery::timeline)
        .on(M::GET, "/api/v1/audit", admin::audit)
        .on(M::GET, "/api/v1/tokens", admin::list_tokens)
        .on(M::POST, "/api/v1/tokens", admin::create_token)
        .on(M::DELETE, "/api/v1/tokens/{id}", admin::revoke_token)
        .on(M::GET, "/api/v1/whoami", admin::whoami)
}

/// Webhooks authenticate by signature, not by token; they are audited all the same.
fn hook_routes() -> Routes {
    Routes::new().on(Method::POST, "/api/v1/webhooks/github", routes::hooks::github).on(
        Method::POST,
        "/api/v1/webhooks/gitlab",
        routes::hooks::gitlab,
    )
}

/// Flag SDKs authenticate with SDK tokens and speak their own protocols.
fn sdk_routes() -> Routes {
    use Method as M;
    use routes::sdk;
    let limit = |m: MethodRouter<AppState>| m.layer(DefaultBodyLimit::max(sdk::MAX_REPORT_BYTES));
    Routes::new()
        .on(M::GET, "/api/client/features", sdk::client_features)
        .on(M::GET, "/api/client/streaming", sdk::client_streaming)
        .on_layered(M::POST, "/api/client/register", sdk::client_register, limit)
        .on_layered(M::POST, "/api/client/metrics", sdk::client_metrics, limit)
        .on(M::GET, "/api/frontend", sdk::frontend)
        .on(M::POST, "/api/frontend", sdk::frontend)
        .on_layered(M::POST, "/api/frontend/client/register", sdk::client_register, limit)
        .on_layered(M::POST, "/api/frontend/client/metrics", sdk::client_metrics, limit)
        .on(M::POST, "/ofrep/v1/evaluate/flags", sdk::ofrep_bulk)
        .on(M::POST, "/ofrep/v1/evaluate/flags/{key}", sdk::ofrep_one)
}

/// Routes anyone may read: health, metrics, and the API's description (it holds no data, and
/// SDK authors read it before they have a token).
fn open_routes() -> Routes {
    Routes::new()
        .on(Method::GET, "/healthz", health::healthz)
        .on(Method::GET, "/readyz", health::readyz)
        .on(Method::GET, "/metrics", health::metrics)
        .on(Method::GET, "/api/v1/openapi.json", admin::openapi)
}

/// Every operation [`app`] serves, from the same table it is built from.
pub fn operations() -> Vec<Operation> {
    [open_routes(), api_routes(), hook_routes(), sdk_routes()]
        .iter()
        .flat_map(|r| r.operations().iter().cloned())
        .collect()
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let guard = axum::middleware::from_fn_with_state(state.clone(), auth::guard);
    let api = api_routes().map_router(|r| r.route_layer(guard));
    let audit_only = axum::middleware::from_fn_with_state(state.clone(), auth::audit_only);
    let hooks = hook_routes().map_router(|r| r.route_layer(audit_only));
    open_routes()
        .merge(api)
        .merge(hooks)
        .merge(sdk_routes())
        .router
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
