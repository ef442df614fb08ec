//! `pave serve`: configuration (flags, then `PAVE_*` environment, then an optional TOML
//! file, then defaults), logging, first-start token, and the server's life until a signal.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Options of `pave serve`. Each may also come from its `PAVE_*` environment variable or
/// from the TOML file given by `--config` (keys in kebab-case, e.g. `database-url`); a flag
/// beats the environment, which beats the file.
#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:7700].
    #[arg(long, env = "PAVE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the embedded database and other state [default: ./.pave].
    #[arg(long, env = "PAVE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (`postgres://user@host/db`) to share state between replicas; without
    /// it, state lives in SQLite in the data directory. Put a password in PAVE_DATABASE_URL or
    /// ~/.pgpass rather than here: arguments show in the process list.
    #[arg(long, env = "PAVE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Optional TOML configuration file.
    #[arg(long, env = "PAVE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format [default: pretty].
    #[arg(long, env = "PAVE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter in `tracing` syntax (`info`, `pave_server=debug`) [default: info].
    #[arg(long, env = "PAVE_LOG")]
    pub log: Option<String>,
    /// Largest accepted request body in bytes [default: 16777216].
    #[arg(long, env = "PAVE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Most database connections in the pool [default: 8].
    #[arg(long, env = "PAVE_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<u32>,
    /// File holding the secret of the first admin token, instead of a random one (for
    /// automation); or the secret itself in PAVE_BOOTSTRAP_TOKEN. Only used when the database
    /// has no token yet. (Secrets are never taken as arguments: the process list shows those.)
    #[arg(long, env = "PAVE_BOOTSTRAP_TOKEN_FILE")]
    pub bootstrap_token_file: Option<PathBuf>,
    /// File holding the shared secret GitHub signs webhooks with (`/api/v1/webhooks/github`);
    /// or the secret itself in PAVE_GITHUB_WEBHOOK_SECRET.
    #[arg(long, env = "PAVE_GITHUB_WEBHOOK_SECRET_FILE")]
    pub github_webhook_secret_file: Option<PathBuf>,
    /// File holding the token GitLab sends with webhooks (`/api/v1/webhooks/gitlab`); or the
    /// token itself in PAVE_GITLAB_WEBHOOK_TOKEN.
    #[arg(long, env = "PAVE_GITLAB_WEBHOOK_TOKEN_FILE")]
    pub gitlab_webhook_token_file: Option<PathBuf>,
    /// Ports the router takes, one per service and environment, as FIRST-LAST
    /// [default: 7800-7999]. A route keeps its port across restarts.
    #[arg(long, env = "PAVE_ROUTER_PORTS", value_parser = parse_port_range)]
    pub router_ports: Option<(u16, u16)>,
    /// Where rollout events are POSTed, signed (repeat for several; `http://` URLs).
    #[arg(long = "webhook", env = "PAVE_WEBHOOKS", value_delimiter = ',')]
    pub webhooks: Vec<String>,
    /// File holding the shared secret that signs webhook deliveries (`X-Pave-Signature-256`);
    /// or the secret itself in PAVE_WEBHOOK_SECRET.
    #[arg(long, env = "PAVE_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Router worker threads, each a single-threaded runtime with its own backend
    /// connections [default: 0, one per core].
    #[arg(long, env = "PAVE_ROUTER_THREADS")]
    pub router_threads: Option<usize>,
    /// The control socket of a router run on its own (`pave router --socket PATH`). Without
    /// it, `pave serve` starts and supervises a router at DATA_DIR/router/control.sock. Either
    /// way the router is its own process and keeps serving while the control plane restarts.
    #[arg(long, env = "PAVE_ROUTER_SOCKET")]
    pub router_socket: Option<PathBuf>,
    /// Stop every replica when the server stops (by default replicas keep serving and the next
    /// start adopts them; this is for development and tests).
    #[arg(long, env = "PAVE_STOP_REPLICAS_ON_EXIT")]
    pub stop_replicas_on_exit: bool,
    /// File holding the master key that seals secrets, created (mode 0600) with a new random
    /// key when missing [default: DATA_DIR/master.key]. `PAVE_MASTER_KEY` (32 bytes as
    /// base64 or hex), when set, is used instead; set the same on every replica sharing a
    /// PostgreSQL database.
    #[arg(long, env = "PAVE_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// OSV records (a directory or a zip such as osv.dev's all.zip) that release scans audit
    /// dependencies against; without it, release scans leave the audit out.
    #[arg(long, env = "PAVE_OSV_DB")]
    pub osv_db: Option<PathBuf>,
    /// Secret rules in gitleaks' TOML format for release scans [default: the built-in rules].
    #[arg(long, env = "PAVE_SECRET_RULES")]
    pub secret_rules: Option<PathBuf>,
    /// How long a client may take to send a request's head (`30s`, `500ms`) before its
    /// connection is closed [default: 30s].
    #[arg(long, env = "PAVE_HEADER_READ_TIMEOUT", value_parser = parse_duration)]
    pub header_read_timeout: Option<std::time::Duration>,
}

/// A duration as documents write them (`30s`, `500ms`), above zero.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    match pave_model::runtime::parse_duration(s)? {
        0 => Err(format!("{s:?} is no time at all")),
        ms => Ok(std::time::Duration::from_millis(ms)),
    }
}

pub fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s.split_once('-').ok_or_else(|| format!("{s:?} is not a port range such as 7800-7999"))?;
    let (a, b): (u16, u16) = (
        a.trim().parse().map_err(|_| format!("{a:?} is not a port"))?,
        b.trim().parse().map_err(|_| format!("{b:?} is not a port"))?,
    );
    if a == 0 || a > b {
        return Err(format!("{s:?} is not a range of ports from low to high"));
    }
    Ok((a, b))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    log_format: Option<LogFormat>,
    log: Option<String>,
    max_body_bytes: Option<usize>,
    db_max_connections: Option<u32>,
    github_webhook_secret: Option<String>,
    gitlab_webhook_token: Option<String>,
    router_ports: Option<String>,
    router_threads: Option<usize>,
    router_socket: Option<PathBuf>,
    webhooks: Option<Vec<String>>,
    webhook_secret: Option<String>,
    master_key_file: Option<PathBuf>,
    osv_db: Option<PathBuf>,
    secret_rules: Option<PathBuf>,
    header_read_timeout: Option<String>,
}

/// The settings in force after merging every source.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub log_format: LogFormat,
    pub log: String,
    pub max_body_bytes: usize,
    pub db_max_connections: u32,
    pub bootstrap_token: Option<String>,
    pub github_webhook_secret: Option<String>,
    pub gitlab_webhook_token: Option<String>,
    pub router_ports: (u16, u16),
    pub router_threads: usize,
    /// A router someone else runs; `None`: `pave serve` runs its own.
    pub router_socket: Option<PathBuf>,
    pub webhooks: Vec<pave_deploy::notify::Webhook>,
    /// The key itself is never a setting (settings are printable): it is read from
    /// `PAVE_MASTER_KEY` or this file when the server starts.
    pub master_key_file: PathBuf,
    pub osv_db: Option<PathBuf>,
    pub secret_rules: Option<PathBuf>,
    pub header_read_timeout: std::time::Duration,
}

impl ServeArgs {
    pub fn settings(&self) -> Result<Settings> {
        let file = match &self.config {
            Some(path) => read_config(path)?,
            None => FileConfig::default(),
        };
        let data_dir = self.data_dir.clone().or(file.data_dir).unwrap_or_else(crate::default_data_dir);
        Ok(Settings {
            master_key_file: self
                .master_key_file
                .clone()
                .or(file.master_key_file)
                .unwrap_or_else(|| data_dir.join("master.key")),
            osv_db: self.osv_db.clone().or(file.osv_db),
            secret_rules: self.secret_rules.clone().or(file.secret_rules),
            listen: self.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7700))),
            data_dir,
            database_url: self.database_url.clone().or(file.database_url).filter(|u| !u.is_empty()),
            log_format: self.log_format.or(file.log_format).unwrap_or(LogFormat::Pretty),
            log: self.log.clone().or(file.log).unwrap_or_else(|| "info".into()),
            max_body_bytes: self.max_body_bytes.or(file.max_body_bytes).unwrap_or(16 * 1024 * 1024),
            db_max_connections: self.db_max_connections.or(file.db_max_connections).unwrap_or(8),
            bootstrap_token: secret_setting("PAVE_BOOTSTRAP_TOKEN", self.bootstrap_token_file.as_deref(), None)?,
            github_webhook_secret: secret_setting(
                "PAVE_GITHUB_WEBHOOK_SECRET",
                self.github_webhook_secret_file.as_deref(),
                file.github_webhook_secret,
            )?,
            gitlab_webhook_token: secret_setting(
                "PAVE_GITLAB_WEBHOOK_TOKEN",
                self.gitlab_webhook_token_file.as_deref(),
                file.gitlab_webhook_token,
            )?,
            router_ports: match (self.router_ports, file.router_ports.as_deref()) {
                (Some(r), _) => r,
                (None, Some(text)) => parse_port_range(text).map_err(|e| anyhow::anyhow!("router-ports: {e}"))?,
                (None, None) => (7800, 7999),
            },
            router_threads: self.router_threads.or(file.router_threads).unwrap_or(0),
            router_socket: self.router_socket.clone().or(file.router_socket),
            header_read_timeout: match (self.header_read_timeout, file.header_read_timeout.as_deref()) {
                (Some(t), _) => t,
                (None, Some(text)) => parse_duration(text).map_err(|e| anyhow::anyhow!("header-read-timeout: {e}"))?,
                (None, None) => pave_server::DEFAULT_HEADER_READ_TIMEOUT,
            },
            webhooks: {
                let urls =
                    if self.webhooks.is_empty() { file.webhooks.unwrap_or_default() } else { self.webhooks.clone() };
                let secret =
                    secret_setting("PAVE_WEBHOOK_SECRET", self.webhook_secret_file.as_deref(), file.webhook_secret)?;
                match (urls.is_empty(), secret) {
                    (true, _) => Vec::new(),
                    (false, None) => {
                        anyhow::bail!(
                            "webhooks need a secret to sign deliveries: PAVE_WEBHOOK_SECRET or --webhook-secret-file"
                        )
                    }
                    (false, Some(secret)) => {
                        for u in &urls {
                            if !u.starts_with("http://") || u.len() <= "http://".len() {
                                anyhow::bail!("webhook {u:?} is not an http:// URL");
                            }
                        }
                        urls.into_iter()
                            .map(|url| pave_deploy::notify::Webhook { url, secret: secret.clone() })
                            .collect()
                    }
                }
            },
        })
    }
}

/// Whether a database URL carries a password (`postgres://user:secret@host/db`).
fn url_has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else { return false };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// A secret setting: from its file (`--…-file`), else its environment variable, else the
/// config file. Never from an argument, which any user on the machine can read in the process
/// list. A file's trailing newline is not part of the secret; an empty secret is refused.
fn secret_setting(var: &str, file: Option<&Path>, config: Option<String>) -> Result<Option<String>> {
    let value = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            Some(text.strip_suffix('\r').unwrap_or(text).to_owned())
        }
        None => std::env::var(var).ok().or(config),
    };
    match value {
        Some(v) if v.is_empty() => anyhow::bail!("{var} is empty"),
        v => Ok(v),
    }
}

fn read_config(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

pub fn init_logging(format: LogFormat, filter: &str) -> Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).with_context(|| format!("invalid log filter {filter:?}"))?;
    // Colours only for a person at a terminal (and never with NO_COLOR): escape codes in a
    // redirected log or a CI transcript are noise.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let result = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

pub async fn run(args: ServeArgs) -> Result<std::process::ExitCode> {
    let settings = args.settings()?;
    let args_stop_replicas = args.stop_replicas_on_exit;
    init_logging(settings.log_format, &settings.log)?;
    crate::arenas::log_failure();
    if let Some(url) = &settings.database_url
        && url_has_password(url)
        && std::env::args().any(|a| a == "--database-url" || a.starts_with("--database-url="))
    {
        tracing::warn!(
            "the database password given with --database-url is visible in the process list; \
             set PAVE_DATABASE_URL or use ~/.pgpass instead"
        );
    }
    let started = std::time::Instant::now();
    let server = start(&settings, shutdown_signal()).await?;
    if let Some(secret) = &server.new_admin_token {
        print_new_admin_token(secret);
    }
    // One line on stdout that scripts and tests wait for.
    println!("pave: listening on http://{}", server.addr);
    tracing::info!(
        addr = %server.addr,
        database = server.backend,
        startup_ms = started.elapsed().as_secs_f64() * 1e3,
        "pave serving"
    );
    server.task.await.context("server task failed")?.context("server failed")?;
    // Replicas and the router keep serving through a control-plane restart; the next start
    // adopts them.
    server.router.release();
    server.engine.stop(args_stop_replicas).await;
    tracing::info!("pave stopped (replicas keep running; the next start adopts them)");
    Ok(std::process::ExitCode::SUCCESS)
}

pub fn print_new_admin_token(secret: &str) {
    println!(
        "Created the first admin token. It is shown only this once; store it safely:\n\n    export PAVE_TOKEN={secret}\n"
    );
}

/// The delivery engine over the built-in process runtime.
pub type ProcessEngine = pave_deploy::Engine<pave_runtime::ProcessRuntime>;

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub backend: &'static str,
    pub new_admin_token: Option<String>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    pub engine: std::sync::Arc<ProcessEngine>,
    pub router: crate::router::Supervisor,
}

/// Binds, opens the store, starts the engine, creates the first token if needed and serves until
/// `shutdown` completes.
pub async fn start(
    settings: &Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Running> {
    // Bind first: a port that is taken must stop the start before anything is stored (the
    // first admin token is shown once; created by a start that then fails, it would be lost).
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    private_data_dir(&settings.data_dir)?;
    let mut options = pave_store::StoreOptions::new(&settings.data_dir);
    options.database_url = settings.database_url.clone();
    options.max_connections = settings.db_max_connections;
    let store = pave_store::Store::open(&options).await.context("cannot open the store")?;
    let backend = store.backend_name();
    let config = pave_server::ServerConfig {
        max_body_bytes: settings.max_body_bytes,
        github_webhook_secret: settings.github_webhook_secret.clone(),
        gitlab_webhook_token: settings.gitlab_webhook_token.clone(),
        artifacts_dir: settings.data_dir.join("artifacts"),
        osv_db: settings.osv_db.clone(),
        secret_rules: settings.secret_rules.clone(),
        header_read_timeout: settings.header_read_timeout,
        ..Default::default()
    };
    let master_key = std::sync::Arc::new(load_keyring(&store, settings, backend).await?);
    let data_dir = std::fs::canonicalize(&settings.data_dir)?;
    let router = match &settings.router_socket {
        Some(socket) => crate::router::connect(socket, false, &data_dir, settings.router_threads).await?,
        None => {
            crate::router::connect(&crate::router::socket_of(&data_dir), true, &data_dir, settings.router_threads)
                .await?
        }
    };
    let engine = start_engine(&store, settings, master_key.clone(), router.handle.clone())?;
    // Last of all that can fail, so the token is created only by a start that then serves
    // and prints it.
    let new_admin_token = match pave_server::bootstrap_admin(&store, settings.bootstrap_token.as_deref()).await {
        Ok(token) => token,
        Err(e) => {
            router.release();
            engine.stop(false).await;
            return Err(anyhow::Error::new(e).context("cannot create the first admin token"));
        }
    };
    if let Err(e) = pave_server::report_unscoped_tokens(&store).await {
        tracing::warn!(error = %e, "cannot count unscoped tokens");
    }
    let halting = engine.clone();
    let shutdown = async move {
        shutdown.await;
        halting.halt();
    };
    let delivery: std::sync::Arc<dyn pave_deploy::Delivery> = engine.clone();
    let state = pave_server::AppState::new(store, config).with_engine(delivery).with_master_key(master_key);
    // Build the DORA read model in the background, so the first query does not pay for it.
    let warm = state.clone();
    tokio::spawn(async move {
        let t = std::time::Instant::now();
        match warm.facts.current(&warm.store).await {
            Ok(f) => tracing::info!(
                deployments = f.deployments.len(),
                elapsed_ms = t.elapsed().as_secs_f64() * 1e3,
                "delivery facts loaded for DORA queries"
            ),
            Err(e) => tracing::warn!(error = %e, "could not load delivery facts; DORA queries will retry"),
        }
    });
    let task = tokio::spawn(async move { pave_server::serve(listener, state, shutdown).await });
    Ok(Running { addr, backend, new_admin_token, task, engine, router })
}

/// The data directory holds the database, the master key, artifacts and replica logs: only
/// the user Pave runs as may enter it (0700; an existing one with wider permissions is
/// narrowed, and said so).
fn private_data_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make the data directory {} private", dir.display()))?;
        tracing::info!(dir = %dir.display(), was = format!("{:o}", mode & 0o777), "data directory made private (0700)");
    }
    Ok(())
}

/// The master key and any earlier ones (`PAVE_MASTER_KEY_PREVIOUS`). A key the stored secrets
/// need and the ring lacks is refused here, before the engine starts: the engine could not
/// rebuild the replicas of every service with secrets, and would stop them. Secrets sealed
/// under an earlier key are sealed again under the current one (a rotation).
async fn load_keyring(store: &pave_store::Store, settings: &Settings, backend: &str) -> Result<pave_vault::Keyring> {
    let current = load_master_key(settings, backend)?;
    let previous = match std::env::var("PAVE_MASTER_KEY_PREVIOUS") {
        Ok(text) => pave_vault::parse_previous_keys(&text).context("cannot read PAVE_MASTER_KEY_PREVIOUS")?,
        Err(_) => Vec::new(),
    };
    let ring = pave_vault::Keyring::new(current, previous);
    let now = pave_model::clock::now_ms();
    let recorded = store.claim_master_key(ring.id(), now).await.context("cannot record the master key's id")?;
    if !ring.knows(&recorded) {
        anyhow::bail!(
            "this database's secrets are sealed under master key {recorded}, but this server's master key is {}: \
             every control plane sharing the database needs the same key (PAVE_MASTER_KEY, or --master-key-file {}); \
             to rotate keys, give the old one in PAVE_MASTER_KEY_PREVIOUS",
            ring.id(),
            settings.master_key_file.display()
        );
    }
    let stored = store.secrets(None, None).await.context("cannot read the stored secrets")?;
    let mut foreign: Vec<&str> = stored.iter().map(|s| s.key_id.as_str()).filter(|id| !ring.knows(id)).collect();
    foreign.sort_unstable();
    foreign.dedup();
    if !foreign.is_empty() {
        anyhow::bail!(
            "stored secrets are sealed under master key {}, but this server's master key is {}: start it with the \
             key they were written under (PAVE_MASTER_KEY, or --master-key-file {}); to rotate keys, give the old one \
             in PAVE_MASTER_KEY_PREVIOUS",
            foreign.join(", "),
            ring.id(),
            settings.master_key_file.display()
        );
    }
    if stored.iter().any(|s| s.key_id != ring.id()) {
        let reseal = |service: &str, environment: &str, name: &str, version: i64, sealed: &str| {
            let at = pave_vault::SecretRef { service, environment, name, version };
            let value = ring.open(&at, sealed).map_err(|e| e.to_string())?;
            ring.seal(&at, &value).map_err(|e| e.to_string())
        };
        let ctx = pave_store::WriteContext { actor: "pave".into(), request_id: None, now: pave_model::clock::now_ms() };
        let n = store
            .reseal_secrets(ring.id(), &reseal, &ctx)
            .await
            .context("cannot seal the secrets under the new key")?;
        tracing::info!(secrets = n, key = ring.id(), "secrets sealed again under the current master key");
    }
    if recorded != ring.id() {
        store.set_master_key(ring.id(), now).await.context("cannot record the master key's id")?;
    }
    Ok(ring)
}

/// The master key secrets are sealed under: `PAVE_MASTER_KEY`, else the key file (created on
/// the first start).
fn load_master_key(settings: &Settings, backend: &str) -> Result<pave_vault::MasterKey> {
    let from_env = std::env::var("PAVE_MASTER_KEY").ok().filter(|v| !v.trim().is_empty());
    let (key, origin) = pave_vault::load_master_key(from_env.as_deref(), &settings.master_key_file)
        .context("cannot load the master key that seals secrets")?;
    match origin {
        pave_vault::KeyOrigin::Created(path) => {
            // Said on stdout once, like the first admin token: an operator must act on it.
            println!(
                "Created the master key that seals secrets ({}) in {}. Back it up: secrets stored under it cannot be opened without it.",
                key.id(),
                path.display()
            );
            tracing::info!(path = %path.display(), key = key.id(), "created a new master key for secrets");
            if backend == "postgres" {
                tracing::warn!(
                    "this key file is local to this machine: every control plane sharing the PostgreSQL database needs the same key (set PAVE_MASTER_KEY on each)"
                );
            }
        }
        pave_vault::KeyOrigin::File(path) => {
            tracing::info!(path = %path.display(), key = key.id(), "master key loaded")
        }
        pave_vault::KeyOrigin::Environment => tracing::info!(key = key.id(), "master key from PAVE_MASTER_KEY"),
    }
    Ok(key)
}

/// The delivery engine over the process runtime. Replicas are marked with this data
/// directory, so a restarted control plane finds its own and never another's.
fn start_engine(
    store: &pave_store::Store,
    settings: &Settings,
    master_key: std::sync::Arc<pave_vault::Keyring>,
    router: pave_router::control::RouterHandle,
) -> Result<std::sync::Arc<ProcessEngine>> {
    // `start` made the data directory (private) before opening the store in it.
    let data_dir = std::fs::canonicalize(&settings.data_dir)?;
    let mut runtime = pave_runtime::ProcessConfig::new(data_dir.join("logs"));
    runtime.owner = data_dir.display().to_string();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().replace('/', "_");
    // The start time tells this process from a later one that reuses its pid, so a successor
    // takes the lease of a dead control plane at once (see `holder_is_dead`).
    let pid = std::process::id();
    let start = pave_runtime::process_start(pid).unwrap_or(0);
    let holder = format!("{host}/{pid}/{start}/{:08x}", rand::random::<u32>());
    let mut config = pave_deploy::EngineConfig::new(data_dir.join("artifacts"), holder);
    config.router_ports = settings.router_ports.0..=settings.router_ports.1;
    config.webhooks = settings.webhooks.clone();
    config.master_key = Some(master_key);
    let engine = pave_deploy::Engine::new(store.clone(), pave_runtime::ProcessRuntime::new(runtime), router, config);
    engine.start();
    Ok(engine)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is called,
/// not when the future is first polled: a signal that arrives while the server is still
/// starting (the engine restoring replicas, say) must shut it down cleanly, not kill it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let int = signal(SignalKind::interrupt());
    let term = signal(SignalKind::terminate());
    async move {
        let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(int) => {}
            () = wait(term) => {}
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_which_beats_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pave.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\ndata-dir = \"/from/file\"\nlog-format = \"json\"\n")
            .expect("write");
        let args = ServeArgs { config: Some(path.clone()), data_dir: Some("/from/flag".into()), ..Default::default() };
        let s = args.settings().expect("settings");
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.max_body_bytes, 16 * 1024 * 1024);
        std::fs::write(&path, "lissen = 1\n").expect("write");
        let err = ServeArgs { config: Some(path), ..Default::default() }.settings().expect_err("unknown key");
        assert!(format!("{err:#}").contains("unknown field `lissen`"), "{err:#}");
    }

    #[test]
    fn database_urls_with_passwords_are_told_apart() {
        // Assembled, so this file holds no credential-shaped URL for secret scanners to flag.
        assert!(url_has_password(&["postgres://pave", ":s3cret@db:5432/pave"].concat()));
        assert!(!url_has_password("postgres://pave@db/pave"));
        assert!(!url_has_password("postgres://db/pave?user=a:b@c"));
        assert!(!url_has_password("sqlite:///tmp/x.db"));
    }

    #[test]
    fn secrets_come_from_files_or_the_environment_never_arguments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s");
        std::fs::write(&path, "hunter2\r\n").expect("write");
        let var = "PAVE_TEST_SECRET_SETTING_UNSET";
        assert_eq!(secret_setting(var, Some(&path), None).expect("file").as_deref(), Some("hunter2"));
        assert_eq!(
            secret_setting(var, None, Some("from-config".into())).expect("config").as_deref(),
            Some("from-config")
        );
        assert_eq!(secret_setting(var, None, None).expect("none"), None);
        std::fs::write(&path, "\n").expect("write");
        let err = secret_setting(var, Some(&path), None).expect_err("empty");
        assert!(err.to_string().contains("is empty"), "{err}");
        let err = secret_setting(var, Some(&dir.path().join("missing")), None).expect_err("missing");
        assert!(format!("{err:#}").contains("cannot read"), "{err:#}");
        // No option of `pave serve` takes a secret's value.
        use clap::CommandFactory;
        let help = crate::Cli::command().find_subcommand_mut("serve").expect("serve").render_long_help().to_string();
        for flag in ["--github-webhook-secret ", "--gitlab-webhook-token ", "--webhook-secret ", "--bootstrap-token "] {
            assert!(!help.contains(flag), "{flag} takes a secret as an argument");
        }
        assert!(help.contains("--github-webhook-secret-file") && help.contains("PAVE_GITHUB_WEBHOOK_SECRET"), "{help}");
    }

    #[test]
    fn durations_read_as_seconds_or_milliseconds() {
        assert_eq!(parse_duration("30s"), Ok(std::time::Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(std::time::Duration::from_millis(500)));
        for bad in ["", "0s", "-1s", "soon", "2"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        let s = ServeArgs::default().settings().expect("settings");
        assert_eq!(s.header_read_timeout, pave_server::DEFAULT_HEADER_READ_TIMEOUT);
    }

    #[test]
    fn webhooks_need_a_secret_and_an_http_url() {
        let hooks = |urls: &[&str], secret: Option<&str>| {
            ServeArgs {
                webhooks: urls.iter().map(|u| u.to_string()).collect(),
                webhook_secret_file: secret.map(|s| {
                    let path = std::env::temp_dir().join(format!("pave-test-secret-{}", std::process::id()));
                    std::fs::write(&path, format!("{s}\n")).expect("write");
                    path
                }),
                ..Default::default()
            }
            .settings()
        };
        let err = hooks(&["http://127.0.0.1:9/h"], None).expect_err("no secret");
        assert!(format!("{err:#}").contains("--webhook-secret-file"), "{err:#}");
        let err = hooks(&["https://example.com/h"], Some("s")).expect_err("not http");
        assert!(format!("{err:#}").contains("not an http:// URL"), "{err:#}");
        let ok = hooks(&["http://127.0.0.1:9/h"], Some("s")).expect("settings");
        assert_eq!(ok.webhooks.len(), 1);
        assert!(hooks(&[], None).expect("none").webhooks.is_empty());
    }
}
