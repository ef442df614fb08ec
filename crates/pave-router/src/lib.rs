//! The router: one reverse proxy listener per service and environment (a port each — simple to
//! reason about, no `Host` games on loopback), the stable address clients use while versions
//! come and go behind it.
//!
//! - **Which version:** an `x-pave-version` header names one outright (testers reach a
//!   blue-green preview or a canary this way, even at weight 0); else a sticky cookie keeps a
//!   user on the version they first got, while it still takes traffic; else a weighted draw in
//!   1 % steps. The chosen version is set as a cookie when the route is sticky.
//! - **Which replica:** round robin over the version's healthy backends. A request without a
//!   body is retried on the next replica when the connection is refused, and — for GET, HEAD
//!   and OPTIONS, as nginx does — when the replica fails before answering.
//! - **Switching** swaps the whole table at once ([`Route::set`]); requests already in flight
//!   finish where they started, and [`Route::drain`] waits for them before a replica stops.
//! - **Signals:** requests, 5xx and a latency sketch per version per minute ([`Signals`]).
//! - **Passing through:** bodies stream both ways; `Upgrade` (WebSockets) is spliced once the
//!   backend answers 101; `X-Forwarded-For/-Proto/-Host` are set; hop-by-hop headers dropped.
//! - **Limits:** a cap on open connections, a header read timeout, a connect timeout and a
//!   response-head timeout (502/504 with a JSON body that says which).
//! - **Threads:** the proxy runs on its own [`Workers`], one single-threaded runtime per core
//!   as nginx runs a worker process per core. A route's listener deals accepted connections
//!   round robin to the workers, and each worker keeps its own keep-alive connections to the
//!   backends, so a request and the backend connection it uses are driven on one thread with
//!   no cross-thread wake-up or work stealing (this cut the proxy's CPU per request by a
//!   fifth against one shared multi-threaded runtime; `bench/router.sh` prints it).
//! - **Two HTTP/1.1 paths:** the common request takes a lean path that rewrites heads in place
//!   and copies bodies by their framing ([`h1`]); anything else (chunked or `Expect` requests,
//!   upgrades, HTTP/1.0) hands its connection to hyper ([`proxy`]). Both behave the same to
//!   clients and backends; the lean one spends about a fifth less CPU per request than nginx.

pub mod control;
#[cfg(feature = "fake")]
pub mod fake;
mod h1;
pub mod hub;
mod proxy;
pub mod signals;
pub mod sketch;
mod timer;

use std::cell::Cell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

pub use signals::{Signals, Summary};

/// One version's share of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRoute {
    pub version: String,
    /// Percent of the traffic not pinned by header or cookie.
    pub weight: u8,
    /// Healthy replicas of this version.
    pub backends: Vec<SocketAddr>,
}

/// Where a route sends traffic. Weights add up to 100, or to 0 when nothing takes traffic. A
/// version whose replicas are all down keeps its weight but gets no traffic: the draw runs over
/// the versions that have a backend, so a crashed canary's share goes to the stable version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTable {
    pub versions: Vec<VersionRoute>,
    pub sticky: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TableError {
    #[error("weights add up to {0}%, not 100% (or 0% for no traffic)")]
    Weights(u32),
    #[error("version {0} appears twice")]
    Duplicate(String),
    #[error("version {0:?} cannot be a header or cookie value (use visible ASCII without ;,\"\\ or spaces)")]
    Version(String),
}

impl RouteTable {
    pub fn validate(&self) -> Result<(), TableError> {
        let total: u32 = self.versions.iter().map(|v| u32::from(v.weight)).sum();
        if total != 100 && total != 0 {
            return Err(TableError::Weights(total));
        }
        for (i, v) in self.versions.iter().enumerate() {
            let bad = |c: char| !c.is_ascii_graphic() || matches!(c, ';' | ',' | '"' | '\\');
            if v.version.is_empty() || v.version.chars().any(bad) {
                return Err(TableError::Version(v.version.clone()));
            }
            if self.versions[..i].iter().any(|o| o.version == v.version) {
                return Err(TableError::Duplicate(v.version.clone()));
            }
        }
        Ok(())
    }
}

/// A replica as the router sees it: an address and the requests now in flight to it.
#[derive(Debug)]
pub(crate) struct Backend {
    pub(crate) addr: SocketAddr,
    /// `addr` as a URI authority, built once rather than per request.
    pub(crate) authority: hyper::http::uri::Authority,
    pub(crate) inflight: AtomicUsize,
    /// Idle keep-alive connections to it, one pool per worker thread (see [`worker_slot`]):
    /// a connection's driver runs on the worker that opened it, so it is only reused there.
    pub(crate) idle: [Mutex<Vec<proxy::Conn>>; POOL_SLOTS],
    /// Idle keep-alive sockets of the lean path ([`h1`]), one pool per worker: a socket is
    /// registered with the reactor of the worker that opened it.
    pub(crate) raw: [Mutex<Vec<tokio::net::TcpStream>>; POOL_SLOTS],
}

/// Backend connection pools per backend; workers beyond this share slots.
const POOL_SLOTS: usize = 16;

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The pool slot of the thread running now: its worker index (workers beyond [`POOL_SLOTS`],
/// and threads that are no worker, share slots).
pub(crate) fn worker_slot() -> usize {
    WORKER.with(Cell::get) % POOL_SLOTS
}

/// The raw socket pool slot of the thread running now, if it has one of its own.
pub(crate) fn raw_slot() -> Option<usize> {
    Some(WORKER.with(Cell::get)).filter(|w| *w < POOL_SLOTS)
}

#[derive(Debug)]
pub(crate) struct CompiledVersion {
    pub(crate) version: String,
    /// `version` as the `x-pave-version` response header, built once per table.
    pub(crate) header: hyper::header::HeaderValue,
    /// The `Set-Cookie` value that keeps a user on this version, built once per table.
    pub(crate) set_cookie: hyper::header::HeaderValue,
    pub(crate) signals: Arc<signals::VersionSignals>,
    pub(crate) weight: u8,
    pub(crate) backends: Vec<Arc<Backend>>,
    pub(crate) next: AtomicUsize,
}

/// The table in the form the hot path reads.
#[derive(Debug, Default)]
pub(crate) struct Compiled {
    pub(crate) versions: Vec<CompiledVersion>,
    pub(crate) sticky: bool,
    pub(crate) source: RouteTable,
}

/// How long [`Route::drain`] waits before its first look at the in-flight count.
const DRAIN_GRACE: Duration = Duration::from_millis(50);

/// Router settings.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    pub connect_timeout: Duration,
    /// Time for a backend to send its response head.
    pub response_timeout: Duration,
    /// Time for a client to send its request head.
    pub header_timeout: Duration,
    pub max_connections: usize,
    /// Minutes of signals kept per version.
    pub keep_minutes: usize,
    /// Proxy worker threads (see [`Workers`]); 0 means one per core.
    pub threads: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            keep_minutes: 120,
            threads: 0,
        }
    }
}

/// The route of one service in one environment.
pub struct Route {
    pub service: String,
    pub env: String,
    pub(crate) cookie: String,
    pub(crate) table: ArcSwap<Compiled>,
    /// Every backend the route has known, so in-flight counts survive table swaps.
    known: Mutex<HashMap<SocketAddr, Arc<Backend>>>,
    pub signals: Signals,
    pub(crate) config: RouterConfig,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route").field("service", &self.service).field("env", &self.env).finish()
    }
}

impl Route {
    pub fn new(service: &str, env: &str, config: RouterConfig) -> Arc<Route> {
        Arc::new(Route {
            service: service.to_owned(),
            env: env.to_owned(),
            cookie: format!("pave-version-{service}-{env}"),
            table: ArcSwap::from_pointee(Compiled::default()),
            known: Mutex::new(HashMap::new()),
            signals: Signals::new(config.keep_minutes),
            config,
        })
    }

    /// Switches the whole table at once.
    pub fn set(&self, table: RouteTable) -> Result<(), TableError> {
        table.validate()?;
        let mut known = pave_sync::lock(&self.known);
        let versions = table
            .versions
            .iter()
            .map(|v| CompiledVersion {
                version: v.version.clone(),
                header: hyper::header::HeaderValue::from_str(&v.version).expect("validated: a header value"),
                set_cookie: hyper::header::HeaderValue::from_str(&format!(
                    "{}={}; Path=/; HttpOnly; SameSite=Lax",
                    self.cookie, v.version
                ))
                .expect("validated: a cookie value"),
                signals: self.signals.series(&v.version),
                weight: v.weight,
                backends: v
                    .backends
                    .iter()
                    .map(|a| {
                        known
                            .entry(*a)
                            .or_insert_with(|| {
                                Arc::new(Backend {
                                    addr: *a,
                                    authority: a.to_string().parse().expect("a socket address is an authority"),
                                    inflight: AtomicUsize::new(0),
                                    idle: std::array::from_fn(|_| Mutex::new(Vec::new())),
                                    raw: std::array::from_fn(|_| Mutex::new(Vec::new())),
                                })
                            })
                            .clone()
                    })
                    .collect(),
                next: AtomicUsize::new(0),
            })
            .collect();
        // Forget backends no table uses once nothing is in flight to them.
        known.retain(|a, b| {
            table.versions.iter().any(|v| v.backends.contains(a)) || b.inflight.load(Ordering::Acquire) > 0
        });
        self.table.store(Arc::new(Compiled { versions, sticky: table.sticky, source: table }));
        Ok(())
    }

    /// The table now in force.
    pub fn table(&self) -> RouteTable {
        self.table.load().source.clone()
    }

    /// Whether any request is in flight on this route.
    pub fn busy(&self) -> bool {
        let known = pave_sync::lock(&self.known);
        known.values().any(|b| b.inflight.load(Ordering::Acquire) > 0)
    }

    /// Requests in flight to `addr` now.
    pub fn inflight(&self, addr: SocketAddr) -> usize {
        let known = pave_sync::lock(&self.known);
        known.get(&addr).map_or(0, |b| b.inflight.load(Ordering::Acquire))
    }

    /// Waits until nothing is in flight to `addr` (call after a table without it was set), up
    /// to `timeout`. Returns whether it drained.
    pub async fn drain(&self, addr: SocketAddr, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        // A request that read the previous table a moment before the switch may not have
        // counted itself in flight yet: give it that moment before trusting a zero.
        tokio::time::sleep(DRAIN_GRACE.min(timeout)).await;
        loop {
            if self.inflight(addr) == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A running listener of a route.
#[derive(Debug)]
pub struct Listening {
    pub route: Arc<Route>,
    pub addr: SocketAddr,
    accept: tokio::task::AbortHandle,
}

impl Listening {
    /// Stops accepting connections (open ones finish their requests).
    pub fn close(&self) {
        self.accept.abort();
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The proxy's threads: each runs a single-threaded tokio runtime until the `Workers` are
/// dropped. Routes are served with [`Workers::listen`].
#[derive(Debug)]
pub struct Workers {
    handles: Vec<tokio::runtime::Handle>,
    /// Dropping these ends the workers' runtimes (and every connection on them).
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    next: Arc<AtomicUsize>,
}

impl Workers {
    /// Starts `threads` workers (0: one per core).
    pub fn start(threads: usize) -> std::io::Result<Workers> {
        let threads = if threads == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { threads };
        let mut handles = Vec::with_capacity(threads);
        let mut stops = Vec::with_capacity(threads);
        for index in 0..threads {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(rt.handle().clone());
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            stops.push(stop);
            std::thread::Builder::new().name(format!("pave-router-{index}")).spawn(move || {
                WORKER.with(|w| w.set(index));
                let _ = rt.block_on(stopped);
            })?;
        }
        Ok(Workers { handles, stops, next: Arc::new(AtomicUsize::new(0)) })
    }

    pub fn threads(&self) -> usize {
        self.handles.len()
    }

    /// Starts serving `route` on `listener`: one worker accepts, and each connection goes to
    /// the next worker in turn.
    pub fn listen(&self, route: Arc<Route>, listener: std::net::TcpListener) -> std::io::Result<Listening> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let acceptor = &self.handles[0];
        let listener = {
            let _entered = acceptor.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let task = acceptor.spawn(proxy::serve(route.clone(), listener, self.handles.clone(), self.next.clone()));
        Ok(Listening { route, addr, accept: task.abort_handle() })
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(version: &str) -> RouteTable {
        RouteTable {
            versions: vec![VersionRoute { version: version.into(), weight: 100, backends: vec![] }],
            sticky: true,
        }
    }

    #[test]
    fn versions_must_be_usable_as_header_and_cookie_values() {
        assert_eq!(one("1.2.3-rc.1+build").validate(), Ok(()));
        for bad in ["", "v 1", "a;b", "a,b", "\"a\"", "é"] {
            assert_eq!(one(bad).validate(), Err(TableError::Version(bad.into())), "{bad:?}");
        }
        let route = Route::new("shop", "prod", RouterConfig::default());
        assert!(route.set(one("a;b")).is_err());
        assert_eq!(route.table(), RouteTable::default(), "a refused table changes nothing");
    }
}
