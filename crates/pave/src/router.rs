//! `pave router`: the data plane as its own process, and how `pave serve` starts, finds and
//! supervises it.
//!
//! The router outlives the control plane: a SIGKILL or an upgrade of `pave serve` leaves it
//! serving its last tables to the replicas, which outlive the control plane too. The next
//! `pave serve` finds it on its control socket and takes over steering it. Only one router
//! serves a data directory (an exclusive lock on `router/lock`), so two control planes
//! starting at once cannot start two.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use pave_router::RouterConfig;
use pave_router::control::{Client, RouterHandle};

/// The variable that marks a router process with the data directory it serves, as
/// `PAVE_OWNER` marks replicas (tests and operators find it by it; replicas' orphan reaping
/// never matches it).
pub const MARKER: &str = "PAVE_ROUTER_OF";

#[derive(Debug, Args)]
pub struct RouterArgs {
    /// The control socket to serve (a Unix socket; made 0600).
    #[arg(long)]
    pub socket: PathBuf,
    /// Where the routes and their last tables are kept, so a restarted router serves them at
    /// once [default: routes.json beside the socket].
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The address route listeners bind to.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Proxy worker threads [default: 0, one per core].
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Longest wait, on SIGTERM, for requests in flight to finish.
    #[arg(long, default_value = "10s", value_parser = crate::serve::parse_duration)]
    pub drain: Duration,
    /// Log filter (as PAVE_LOG).
    #[arg(long, env = "PAVE_LOG", default_value = "info")]
    pub log: String,
}

/// The files of the router that serves a data directory.
pub fn socket_of(data_dir: &Path) -> PathBuf {
    data_dir.join("router").join("control.sock")
}

pub async fn run(args: RouterArgs) -> Result<std::process::ExitCode> {
    crate::serve::init_logging(crate::serve::LogFormat::Pretty, &args.log)?;
    let dir = args.socket.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    private_dir(&dir)?;
    // One router per socket: the lock is held for the life of the process.
    let lock_path = args.socket.with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        println!("pave router: another router already serves {}", args.socket.display());
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let state = args.state.clone().unwrap_or_else(|| dir.join("routes.json"));
    let config = RouterConfig { threads: args.threads, ..RouterConfig::default() };
    let hub =
        pave_router::hub::Hub::new(config, args.host, Some(state)).context("cannot start the router's threads")?;
    let restored = hub.restore()?;
    // The lock is ours: a socket file left there is a dead router's.
    let _ = std::fs::remove_file(&args.socket);
    let listener = tokio::net::UnixListener::bind(&args.socket)
        .with_context(|| format!("cannot listen on {}", args.socket.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&args.socket, std::fs::Permissions::from_mode(0o600))?;
    }
    let socket_id = inode(&args.socket);
    std::fs::write(dir.join("pid"), format!("{}\n", std::process::id()))?;
    println!("pave router: serving {} routes; control socket {}", restored, args.socket.display());
    tracing::info!(routes = restored, socket = %args.socket.display(), pid = std::process::id(), "router started");
    let gone = socket_gone(args.socket.clone(), socket_id);
    let stop = async {
        tokio::select! {
            () = crate::serve::shutdown_signal() => {}
            () = gone => tracing::warn!("the control socket was removed; nobody can steer this router, so it stops"),
        }
    };
    pave_router::control::serve(listener, hub.clone(), stop).await?;
    // No new connections; requests already in flight finish.
    hub.close_all();
    if !hub.drain_all(args.drain).await {
        tracing::warn!(timeout = ?args.drain, "requests still in flight at the drain timeout");
    }
    if inode(&args.socket) == socket_id {
        let _ = std::fs::remove_file(&args.socket);
    }
    let _ = std::fs::remove_file(dir.join("pid"));
    tracing::info!("router stopped");
    drop(lock);
    Ok(std::process::ExitCode::SUCCESS)
}

fn inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Completes when the control socket is deleted or replaced (its data directory removed, say).
async fn socket_gone(path: PathBuf, id: Option<u64>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if inode(&path) != id {
            return;
        }
    }
}

fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// How `pave serve` reaches its router.
pub struct Supervisor {
    pub handle: RouterHandle,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Supervisor {
    /// Stops starting routers again (the router itself keeps running).
    pub fn release(&self) {
        let _ = self.stop.send(true);
    }
}

/// Finds the router on `socket`, or, when `spawn`, starts one and keeps one running: a router
/// that exits is started again (it restores its saved tables; the engine sees its new boot
/// id and pushes every table). With `spawn` false the router is someone else's to run.
pub async fn connect(socket: &Path, spawn: bool, data_dir: &Path, threads: usize) -> Result<Supervisor> {
    let client = Client::new(socket);
    let handle = RouterHandle::new(std::sync::Arc::new(client));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    if !spawn {
        match handle.hello().await {
            Ok(h) => tracing::info!(pid = h.pid, version = %h.version, "using the router at {}", socket.display()),
            Err(e) => tracing::warn!(error = %e, "the router is not there yet; the engine waits for it"),
        }
        return Ok(Supervisor { handle, stop });
    }
    let launch = Launch { socket: socket.to_owned(), data_dir: data_dir.to_owned(), threads };
    match handle.hello().await {
        Ok(h) => {
            tracing::info!(pid = h.pid, version = %h.version, routes = h.routes, "found the running router");
        }
        Err(_) => {
            let mut child = launch.start()?;
            wait_ready(&handle, &mut child).await?;
            tokio::spawn(reap(child));
        }
    }
    tokio::spawn(supervise(handle.clone(), launch, stopped));
    Ok(Supervisor { handle, stop })
}

struct Launch {
    socket: PathBuf,
    data_dir: PathBuf,
    threads: usize,
}

impl Launch {
    /// Starts `pave router` in its own process group (a Ctrl-C of the terminal or a kill of
    /// the control plane's group must not reach it), with none of the control plane's
    /// secrets in its environment.
    fn start(&self) -> Result<tokio::process::Child> {
        let exe = current_exe()?;
        let dir = self.socket.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        private_dir(&dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("router.log"))
            .with_context(|| format!("cannot open {}", dir.join("router.log").display()))?;
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.arg("router").arg("--socket").arg(&self.socket).arg("--threads").arg(self.threads.to_string());
        // Not `MALLOC_ARENA_MAX`, which `pave serve` caps for its own memory (see `arenas`):
        // the router's workers each keep their arena, for throughput.
        cmd.env_clear().env(MARKER, &self.data_dir);
        for keep in ["PATH", "PAVE_LOG", "TZ"] {
            if let Some(v) = std::env::var_os(keep) {
                cmd.env(keep, v);
            }
        }
        cmd.stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(false);
        let child = cmd.spawn().with_context(|| format!("cannot start the router ({})", exe.display()))?;
        tracing::info!(pid = child.id(), "router started");
        Ok(child)
    }
}

/// This program, even after an upgrade replaced its file (`/proc/self/exe` then ends in
/// " (deleted)"; the new binary at the same path starts the new router).
fn current_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let text = exe.to_string_lossy();
    Ok(match text.strip_suffix(" (deleted)") {
        Some(p) => PathBuf::from(p),
        None => exe,
    })
}

async fn wait_ready(handle: &RouterHandle, child: &mut tokio::process::Child) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if handle.hello().await.is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Another router took the lock first (two control planes starting at once): use it.
            if status.success() && handle.hello().await.is_ok() {
                return Ok(());
            }
            if !status.success() {
                anyhow::bail!("the router exited with {status} before it answered; see its log (router/router.log)");
            }
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("the router did not answer within 15 s; see its log (router/router.log)");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for a router this control plane started, so it leaves no zombie.
async fn reap(mut child: tokio::process::Child) {
    if let Ok(status) = child.wait().await
        && !status.success()
    {
        tracing::warn!(%status, "the router exited");
    }
}

/// Looks for the router every half second and starts it again when it does not answer twice
/// in a row (a crash; a router that stopped on purpose is started again too, since the
/// control plane still needs one).
async fn supervise(handle: RouterHandle, launch: Launch, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut misses = 0;
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if *stopped.borrow() {
            return;
        }
        if handle.hello().await.is_ok() {
            misses = 0;
            continue;
        }
        misses += 1;
        if misses < 2 {
            continue;
        }
        tracing::warn!("the router does not answer; starting it again");
        match launch.start() {
            Ok(mut child) => match wait_ready(&handle, &mut child).await {
                Ok(()) => {
                    misses = 0;
                    tokio::spawn(reap(child));
                }
                Err(e) => tracing::error!(error = %e, "the router did not come back"),
            },
            Err(e) => tracing::error!(error = %e, "cannot start the router"),
        }
    }
}
