//! The routes one router process serves: a listener and a table per service and environment,
//! kept in a state file so a restarted router serves its last tables before any control plane
//! speaks to it.
//!
//! The hub is what the control protocol ([`crate::control`]) drives. It is also a
//! [`crate::control::Control`] itself, so a delivery engine can run against an in-process
//! hub in unit tests with no socket and no second process.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::control::{BoxFuture, Control, ControlError, Hello, PROTOCOL, Reply, Request, WireSummary};
use crate::{Listening, Route, RouteTable, RouterConfig, Workers};

type Key = (String, String);

/// One route as the state file keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SavedRoute {
    pub service: String,
    pub env: String,
    pub port: u16,
    pub table: RouteTable,
}

/// The state file: every route with its port and last table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedState {
    pub routes: Vec<SavedRoute>,
}

struct Held {
    listening: Listening,
    port: u16,
}

/// Every route of one router.
pub struct Hub {
    workers: Workers,
    config: RouterConfig,
    /// The address route listeners bind to.
    host: IpAddr,
    routes: Mutex<BTreeMap<Key, Held>>,
    /// Where the routes are saved after every change, when anywhere.
    state_file: Option<PathBuf>,
    /// Serialises saves, so the file always ends up with the newest state.
    saving: Mutex<()>,
    /// Random at start: a control plane that sees it change knows the router restarted.
    boot: u64,
    /// Requests handled, for the hello.
    calls: AtomicU64,
}

use pave_sync::lock;

fn key(service: &str, env: &str) -> Key {
    (service.to_owned(), env.to_owned())
}

fn boot_id() -> u64 {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    (t ^ (u64::from(std::process::id()) << 32)) ^ fastrand::u64(..)
}

impl Hub {
    /// Starts the router's worker threads; routes come with [`Hub::restore`] or [`Hub::listen`].
    pub fn new(config: RouterConfig, host: IpAddr, state_file: Option<PathBuf>) -> std::io::Result<Arc<Hub>> {
        Ok(Arc::new(Hub {
            workers: Workers::start(config.threads)?,
            config,
            host,
            routes: Mutex::new(BTreeMap::new()),
            state_file,
            saving: Mutex::new(()),
            boot: boot_id(),
            calls: AtomicU64::new(0),
        }))
    }

    /// Serves the routes of the state file again. A route whose port cannot be bound is left
    /// out (and said so); the control plane asks for it again.
    pub fn restore(&self) -> Result<usize, ControlError> {
        let Some(path) = &self.state_file else { return Ok(0) };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(ControlError::State(format!("cannot read {}: {e}", path.display()))),
        };
        let saved: SavedState = serde_json::from_str(&text)
            .map_err(|e| ControlError::State(format!("{} is not a router state file: {e}", path.display())))?;
        // A router that is exiting (the one this one replaces) may hold a port a moment longer:
        // ports that cannot be bound are tried again for a couple of seconds.
        let (mut pending, mut served) = (saved.routes, 0);
        for attempt in 0..20 {
            let mut failed = Vec::new();
            for r in pending {
                match self
                    .listen(&r.service, &r.env, r.port)
                    .and_then(|()| self.set(&r.service, &r.env, r.table.clone()))
                {
                    Ok(()) => served += 1,
                    Err(e) if attempt == 19 => {
                        tracing::error!(service = %r.service, env = %r.env, port = r.port, error = %e, "cannot serve a saved route")
                    }
                    Err(_) => failed.push(r),
                }
            }
            if failed.is_empty() {
                break;
            }
            pending = failed;
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(served)
    }

    fn save(&self) {
        let Some(path) = &self.state_file else { return };
        let _one_at_a_time = lock(&self.saving);
        let state = SavedState {
            routes: lock(&self.routes)
                .iter()
                .map(|((service, env), h)| SavedRoute {
                    service: service.clone(),
                    env: env.clone(),
                    port: h.port,
                    table: h.listening.route.table(),
                })
                .collect(),
        };
        let tmp = path.with_extension("tmp");
        let written = serde_json::to_vec_pretty(&state)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            tracing::error!(path = %path.display(), error = %e, "cannot save the router's routes");
        }
    }

    /// Serves a route on `port` (a route already served there is kept as it is).
    pub fn listen(&self, service: &str, env: &str, port: u16) -> Result<(), ControlError> {
        {
            let mut routes = lock(&self.routes);
            if let Some(held) = routes.get(&key(service, env)) {
                if held.port == port {
                    return Ok(());
                }
                return Err(ControlError::Refused(format!(
                    "{service} in {env} is served on port {}, not {port}",
                    held.port
                )));
            }
            let listener = std::net::TcpListener::bind(SocketAddr::new(self.host, port)).map_err(|e| {
                ControlError::Refused(format!("cannot listen on {}:{port} for {service} in {env}: {e}", self.host))
            })?;
            let route = Route::new(service, env, self.config.clone());
            let listening = self
                .workers
                .listen(route, listener)
                .map_err(|e| ControlError::Refused(format!("cannot serve port {port}: {e}")))?;
            tracing::info!(service, env, addr = %listening.addr, "router listening");
            routes.insert(key(service, env), Held { listening, port });
        }
        self.save();
        Ok(())
    }

    fn route(&self, service: &str, env: &str) -> Option<Arc<Route>> {
        lock(&self.routes).get(&key(service, env)).map(|h| h.listening.route.clone())
    }

    fn known(&self, service: &str, env: &str) -> Result<Arc<Route>, ControlError> {
        self.route(service, env).ok_or_else(|| ControlError::Refused(format!("no route for {service} in {env}")))
    }

    /// Switches a route's whole table at once.
    pub fn set(&self, service: &str, env: &str, table: RouteTable) -> Result<(), ControlError> {
        let route = self.known(service, env)?;
        if route.table() == table {
            return Ok(());
        }
        route.set(table).map_err(|e| ControlError::Refused(e.to_string()))?;
        self.save();
        Ok(())
    }

    /// Stops accepting connections on a route and sends it nowhere; requests in flight finish
    /// (wait for them with [`Hub::drain`]) and the route is kept until [`Hub::forget`].
    pub fn close(&self, service: &str, env: &str) {
        if let Some(h) = lock(&self.routes).get(&key(service, env)) {
            h.listening.close();
            let _ = h.listening.route.set(RouteTable::default());
        }
        self.save();
    }

    /// Drops a route altogether.
    pub fn forget(&self, service: &str, env: &str) {
        lock(&self.routes).remove(&key(service, env));
        self.save();
    }

    /// Waits until nothing is in flight to `addr` on a route (see [`Route::drain`]).
    pub async fn drain(&self, service: &str, env: &str, addr: SocketAddr, timeout: Duration) -> bool {
        match self.route(service, env) {
            Some(route) => route.drain(addr, timeout).await,
            None => true,
        }
    }

    /// The golden signals of a route per version since `since`.
    pub fn signals(&self, service: &str, env: &str, since: SystemTime) -> Option<Vec<crate::Summary>> {
        self.route(service, env).map(|r| r.signals.summary(since))
    }

    /// The table a route uses now.
    pub fn table(&self, service: &str, env: &str) -> Option<RouteTable> {
        self.route(service, env).map(|r| r.table())
    }

    /// Every route and its port.
    pub fn routes(&self) -> Vec<(String, String, u16)> {
        lock(&self.routes).iter().map(|((s, e), h)| (s.clone(), e.clone(), h.port)).collect()
    }

    pub fn boot(&self) -> u64 {
        self.boot
    }

    /// Stops accepting on every route (open connections finish their requests).
    pub fn close_all(&self) {
        for h in lock(&self.routes).values() {
            h.listening.close();
        }
    }

    /// Waits, up to `timeout`, until no request is in flight on any route.
    pub async fn drain_all(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let busy = lock(&self.routes).values().any(|h| h.listening.route.busy());
            if !busy {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Answers one control request.
    pub async fn handle(&self, req: Request) -> Reply {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let done = |r: Result<(), ControlError>| match r {
            Ok(()) => Reply::Done,
            Err(e) => Reply::Refused { message: e.to_string() },
        };
        match req {
            Request::Hello => Reply::Hello(Hello {
                protocol: PROTOCOL,
                pid: std::process::id(),
                boot: self.boot,
                version: env!("CARGO_PKG_VERSION").to_owned(),
                routes: lock(&self.routes).len(),
            }),
            Request::Listen { service, env, port } => done(self.listen(&service, &env, port)),
            Request::Set { service, env, table } => done(self.set(&service, &env, table)),
            Request::Close { service, env } => {
                self.close(&service, &env);
                Reply::Done
            }
            Request::Forget { service, env } => {
                self.forget(&service, &env);
                Reply::Done
            }
            Request::Drain { service, env, addr, timeout_ms } => {
                Reply::Drained { drained: self.drain(&service, &env, addr, Duration::from_millis(timeout_ms)).await }
            }
            Request::Signals { service, env, since_ms } => {
                let since = UNIX_EPOCH + Duration::from_millis(since_ms.max(0) as u64);
                Reply::Signals {
                    summaries: self.signals(&service, &env, since).map(|all| {
                        all.into_iter().map(|s| WireSummary { latency: s.latency.clone(), summary: s }).collect()
                    }),
                }
            }
            Request::Table { service, env } => Reply::Table { table: self.table(&service, &env) },
            // The process that serves the control socket acts on it; an in-process hub has
            // nothing to shut down but its listeners.
            Request::Shutdown => {
                self.close_all();
                Reply::Done
            }
        }
    }
}

impl Control for Hub {
    fn call(&self, req: Request) -> BoxFuture<'_, Result<Reply, ControlError>> {
        Box::pin(async move { Ok(self.handle(req).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VersionRoute;

    #[tokio::test]
    async fn a_restarted_hub_serves_its_saved_routes() {
        let dir = std::env::temp_dir().join(format!("pave-hub-{}-{}", std::process::id(), fastrand::u32(..)));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("routes.json");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let table = RouteTable {
            sticky: false,
            versions: vec![VersionRoute {
                version: "1.0".into(),
                weight: 100,
                backends: vec!["127.0.0.1:9".parse().expect("addr")],
            }],
        };
        let config = RouterConfig { threads: 1, ..RouterConfig::default() };
        {
            let hub = Hub::new(config.clone(), "127.0.0.1".parse().expect("ip"), Some(file.clone())).expect("hub");
            hub.listen("shop", "dev", port).expect("listen");
            hub.set("shop", "dev", table.clone()).expect("set");
            assert!(matches!(hub.set("shop", "prod", table.clone()), Err(ControlError::Refused(_))));
            let moved = hub.listen("shop", "dev", port.wrapping_add(1));
            assert!(matches!(moved, Err(ControlError::Refused(m)) if m.contains("served on port")));
        }
        let hub = Hub::new(config, "127.0.0.1".parse().expect("ip"), Some(file)).expect("hub");
        assert_eq!(hub.restore().expect("restore"), 1);
        assert_eq!(hub.table("shop", "dev"), Some(table));
        assert_eq!(hub.routes(), vec![("shop".to_owned(), "dev".to_owned(), port)]);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
