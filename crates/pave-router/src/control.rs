//! How a control plane steers a router that runs as its own process.
//!
//! The router keeps serving its last tables while no control plane is there (a SIGKILL of
//! `pave serve`, an upgrade of the binary): the data plane must not depend on the process that
//! decides what it does. A control plane speaks to it over a Unix socket, one JSON request per
//! line and one JSON reply per line. A socket file, not a TCP port: its permissions (0600, in
//! the private data directory) are the access control, so no other local user can re-route
//! traffic.
//!
//! Every request is idempotent (listen on the port already served, set the table already in
//! force), so a control plane that is not sure a request landed sends it again. A router that
//! restarted says so by a new `boot` in its [`Hello`]; the control plane then pushes every
//! table again.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::sketch::Sketch;
use crate::{RouteTable, Summary};

/// The protocol's version; a router answers with its own in [`Hello`].
pub const PROTOCOL: u32 = 1;

/// Longest request or reply line (a table of a few thousand backends fits many times).
const MAX_LINE: usize = 4 << 20;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A request to the router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    Hello,
    /// Serve a route on `port` (kept if already served there).
    Listen {
        service: String,
        env: String,
        port: u16,
    },
    /// Switch a route's table.
    Set {
        service: String,
        env: String,
        table: RouteTable,
    },
    /// Stop accepting connections on a route and route nothing; requests in flight finish.
    Close {
        service: String,
        env: String,
    },
    /// Drop a route.
    Forget {
        service: String,
        env: String,
    },
    /// Answer once nothing is in flight to `addr` on the route, or after `timeout_ms`.
    Drain {
        service: String,
        env: String,
        addr: SocketAddr,
        #[serde(rename = "timeoutMs")]
        timeout_ms: u64,
    },
    /// Golden signals per version since `since_ms` (ms since the Unix epoch).
    Signals {
        service: String,
        env: String,
        #[serde(rename = "sinceMs")]
        since_ms: i64,
    },
    /// The table in force.
    Table {
        service: String,
        env: String,
    },
    /// Stop accepting, let requests in flight finish, exit.
    Shutdown,
}

/// One version's signals on the wire: the summary and its latency sketch, which the analysis
/// of a canary compares in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireSummary {
    pub summary: Summary,
    pub latency: Sketch,
}

/// Who answers on the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub pid: u32,
    /// Changes with every start of the router.
    pub boot: u64,
    /// The `pave` version the router runs (it may be older than the control plane's after an
    /// upgrade: the router is restarted on purpose, not by the upgrade).
    pub version: String,
    pub routes: usize,
}

/// A reply from the router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case")]
pub enum Reply {
    Done,
    Hello(Hello),
    Drained {
        drained: bool,
    },
    Signals {
        summaries: Option<Vec<WireSummary>>,
    },
    Table {
        table: Option<RouteTable>,
    },
    /// The request was understood and refused: a port that cannot be bound, a route it does
    /// not serve, a table that does not add up.
    Refused {
        message: String,
    },
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    /// The router did not answer: not running, restarting, or stuck. Worth trying again.
    #[error("the router at {path} does not answer: {reason}")]
    Unreachable { path: String, reason: String },
    /// The router answered no. Trying again changes nothing.
    #[error("{0}")]
    Refused(String),
    #[error("the router answered something this control plane does not understand: {0}")]
    Protocol(String),
    #[error("{0}")]
    State(String),
}

impl ControlError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ControlError::Unreachable { .. })
    }
}

/// Something that takes router requests: a router process behind its socket ([`Client`]), or
/// an in-process [`crate::hub::Hub`].
pub trait Control: Send + Sync + 'static {
    fn call(&self, req: Request) -> BoxFuture<'_, Result<Reply, ControlError>>;
}

/// The typed face of a [`Control`], what a delivery engine holds.
#[derive(Clone)]
pub struct RouterHandle(Arc<dyn Control>);

impl std::fmt::Debug for RouterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouterHandle")
    }
}

fn unexpected(reply: Reply) -> ControlError {
    match reply {
        Reply::Refused { message } => ControlError::Refused(message),
        other => ControlError::Protocol(format!("{other:?}")),
    }
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl RouterHandle {
    pub fn new(control: Arc<dyn Control>) -> Self {
        RouterHandle(control)
    }

    async fn done(&self, req: Request) -> Result<(), ControlError> {
        match self.0.call(req).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub async fn hello(&self) -> Result<Hello, ControlError> {
        match self.0.call(Request::Hello).await? {
            Reply::Hello(h) => Ok(h),
            other => Err(unexpected(other)),
        }
    }

    pub async fn listen(&self, service: &str, env: &str, port: u16) -> Result<(), ControlError> {
        self.done(Request::Listen { service: service.into(), env: env.into(), port }).await
    }

    pub async fn set(&self, service: &str, env: &str, table: RouteTable) -> Result<(), ControlError> {
        self.done(Request::Set { service: service.into(), env: env.into(), table }).await
    }

    pub async fn close(&self, service: &str, env: &str) -> Result<(), ControlError> {
        self.done(Request::Close { service: service.into(), env: env.into() }).await
    }

    pub async fn forget(&self, service: &str, env: &str) -> Result<(), ControlError> {
        self.done(Request::Forget { service: service.into(), env: env.into() }).await
    }

    pub async fn shutdown(&self) -> Result<(), ControlError> {
        self.done(Request::Shutdown).await
    }

    pub async fn drain(
        &self,
        service: &str,
        env: &str,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<bool, ControlError> {
        let req =
            Request::Drain { service: service.into(), env: env.into(), addr, timeout_ms: timeout.as_millis() as u64 };
        match self.0.call(req).await? {
            Reply::Drained { drained } => Ok(drained),
            other => Err(unexpected(other)),
        }
    }

    pub async fn signals(
        &self,
        service: &str,
        env: &str,
        since: SystemTime,
    ) -> Result<Option<Vec<Summary>>, ControlError> {
        let req = Request::Signals { service: service.into(), env: env.into(), since_ms: millis(since) };
        match self.0.call(req).await? {
            Reply::Signals { summaries } => {
                Ok(summaries.map(|all| all.into_iter().map(|w| Summary { latency: w.latency, ..w.summary }).collect()))
            }
            other => Err(unexpected(other)),
        }
    }

    pub async fn table(&self, service: &str, env: &str) -> Result<Option<RouteTable>, ControlError> {
        match self.0.call(Request::Table { service: service.into(), env: env.into() }).await? {
            Reply::Table { table } => Ok(table),
            other => Err(unexpected(other)),
        }
    }
}

/// A router process, reached through its control socket: one connection per request, so a
/// long drain never holds up a table switch.
#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
    /// Longest wait for an answer (a drain adds its own timeout).
    timeout: Duration,
}

impl Client {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Client { path: path.into(), timeout: Duration::from_secs(5) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn exchange(&self, req: &Request) -> Result<Reply, ControlError> {
        let unreachable = |reason: String| ControlError::Unreachable { path: self.path.display().to_string(), reason };
        let mut line = serde_json::to_vec(req).map_err(|e| ControlError::Protocol(e.to_string()))?;
        line.push(b'\n');
        let stream = tokio::net::UnixStream::connect(&self.path).await.map_err(|e| unreachable(e.to_string()))?;
        let (read, mut write) = stream.into_split();
        write.write_all(&line).await.map_err(|e| unreachable(e.to_string()))?;
        let mut reader = BufReader::new(read).take(MAX_LINE as u64);
        let mut answer = Vec::new();
        reader.read_until(b'\n', &mut answer).await.map_err(|e| unreachable(e.to_string()))?;
        if answer.last() != Some(&b'\n') {
            return Err(unreachable("the connection closed before a whole reply".into()));
        }
        serde_json::from_slice(&answer).map_err(|e| ControlError::Protocol(e.to_string()))
    }
}

impl Control for Client {
    fn call(&self, req: Request) -> BoxFuture<'_, Result<Reply, ControlError>> {
        Box::pin(async move {
            let wait = match &req {
                Request::Drain { timeout_ms, .. } => self.timeout + Duration::from_millis(*timeout_ms),
                _ => self.timeout,
            };
            match tokio::time::timeout(wait, self.exchange(&req)).await {
                Ok(reply) => reply,
                Err(_) => Err(ControlError::Unreachable {
                    path: self.path.display().to_string(),
                    reason: format!("no answer within {wait:?}"),
                }),
            }
        })
    }
}

/// Serves control requests on `listener` with `hub` until a [`Request::Shutdown`] arrives
/// (answered first) or `stop` completes.
pub async fn serve(
    listener: tokio::net::UnixListener,
    hub: Arc<crate::hub::Hub>,
    stop: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            _ = shutdown_rx.changed() => return Ok(()),
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "control socket accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let hub = hub.clone();
                let shutdown = shutdown_tx.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &hub, &shutdown).await {
                        tracing::debug!(error = %e, "control connection ended");
                    }
                });
            }
        }
    }
}

async fn answer(
    stream: tokio::net::UnixStream,
    hub: &crate::hub::Hub,
    shutdown: &tokio::sync::watch::Sender<bool>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = Vec::new();
        let n = (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Ok(());
        }
        let (reply, stop) = match serde_json::from_slice::<Request>(&line) {
            Ok(req) => {
                let stop = req == Request::Shutdown;
                (hub.handle(req).await, stop)
            }
            Err(e) => (Reply::Refused { message: format!("not a router request: {e}") }, false),
        };
        let mut out = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
        out.push(b'\n');
        write.write_all(&out).await?;
        if stop {
            let _ = shutdown.send(true);
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_back_and_unknown_fields_are_refused() {
        let req = Request::Drain {
            service: "s".into(),
            env: "e".into(),
            addr: "127.0.0.1:1".parse().expect("addr"),
            timeout_ms: 5,
        };
        let text = serde_json::to_string(&req).expect("json");
        assert_eq!(text, r#"{"op":"drain","service":"s","env":"e","addr":"127.0.0.1:1","timeoutMs":5}"#);
        assert_eq!(serde_json::from_str::<Request>(&text).expect("back"), req);
        assert!(serde_json::from_str::<Request>(r#"{"op":"table","service":"s","env":"e","extra":1}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"reroute"}"#).is_err());
    }

    #[tokio::test]
    async fn a_client_steers_a_hub_over_its_socket() {
        let dir = std::env::temp_dir().join(format!("pave-ctl-{}-{}", std::process::id(), fastrand::u32(..)));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("control.sock");
        let hub = crate::hub::Hub::new(
            crate::RouterConfig { threads: 1, ..Default::default() },
            "127.0.0.1".parse().expect("ip"),
            None,
        )
        .expect("hub");
        let listener = tokio::net::UnixListener::bind(&path).expect("bind");
        let server = tokio::spawn(serve(listener, hub.clone(), std::future::pending()));
        let router = RouterHandle::new(Arc::new(Client::new(&path)));
        let hello = router.hello().await.expect("hello");
        assert_eq!((hello.protocol, hello.boot, hello.routes), (PROTOCOL, hub.boot(), 0));
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        router.listen("shop", "dev", port).await.expect("listen");
        let refused = router.set("shop", "prod", RouteTable::default()).await;
        assert!(matches!(refused, Err(ControlError::Refused(m)) if m.contains("no route")));
        assert_eq!(router.table("shop", "dev").await.expect("table"), Some(RouteTable::default()));
        assert!(
            router
                .drain("shop", "dev", "127.0.0.1:9".parse().expect("addr"), Duration::from_millis(10))
                .await
                .expect("drain")
        );
        assert_eq!(router.signals("shop", "dev", UNIX_EPOCH).await.expect("signals"), Some(vec![]));
        router.shutdown().await.expect("shutdown");
        server.await.expect("join").expect("served");
        let gone = router.hello().await;
        assert!(gone.as_ref().is_err_and(ControlError::is_transient), "{gone:?}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
