//! The proxy's hot path: choose a version and a backend, forward, stream the answer back.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body_util::{Either, Empty, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::timer::{ConnTimer, within};
use crate::{Backend, Compiled, Route};

pub(crate) type UpstreamBody = Either<Incoming, Empty<Bytes>>;
/// One HTTP/1.1 connection to a backend, ready for its next request when idle.
pub(crate) type Conn = hyper::client::conn::http1::SendRequest<UpstreamBody>;
pub(crate) type ProxyBody = Either<Tracked, Full<Bytes>>;

/// Idle connections kept per backend at most.
const MAX_IDLE: usize = 512;

pub(crate) const VERSION_HEADER: &str = "x-pave-version";

/// Keeps a backend's in-flight count up while a response (or an upgraded connection) lives.
pub(crate) struct InflightGuard(pub(crate) Arc<Backend>);

impl InflightGuard {
    pub(crate) fn new(b: Arc<Backend>) -> Self {
        b.inflight.fetch_add(1, Ordering::AcqRel);
        InflightGuard(b)
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A backend's response body, streamed through; the backend counts as busy until it ends,
/// and the connection goes back to the backend's pool once the body was read to its end.
pub(crate) struct Tracked {
    inner: Incoming,
    conn: Option<Conn>,
    guard: InflightGuard,
}

impl Tracked {
    fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            give_back(&self.guard.0, conn);
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // Read to its end: the connection can carry another request. Otherwise (the client
        // went away mid-body) it is closed by dropping it.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.release();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Accepts connections and hands each to the next worker, where it is served to its end.
pub(crate) async fn serve(
    route: Arc<Route>,
    listener: TcpListener,
    workers: Vec<tokio::runtime::Handle>,
    next: Arc<std::sync::atomic::AtomicUsize>,
) {
    let limit = Arc::new(tokio::sync::Semaphore::new(route.config.max_connections));
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "router accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(service = %route.service, env = %route.env, "router connection limit reached; refusing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let worker = &workers[next.fetch_add(1, Ordering::Relaxed) % workers.len()];
        // The stream moves to the worker's own reactor.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand a router connection to a worker");
                continue;
            }
        };
        let route = route.clone();
        worker.spawn(async move {
            let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                return;
            };
            let ip = remote.ip().to_string();
            // The common request takes the lean path; the rest of a connection that sends
            // anything else is served by hyper, starting with the bytes already read.
            if let crate::h1::Served::Elsewhere(stream, read) = crate::h1::serve(&route, stream, &ip).await {
                serve_with_hyper(route, Prefixed { read, at: 0, stream }, client_ip(remote)).await;
            }
            drop(permit);
        });
    }
}

async fn serve_with_hyper(route: Arc<Route>, io: Prefixed, ip: HeaderValue) {
    let header_timeout = route.config.header_timeout;
    let response_timer = ConnTimer::new();
    let service = hyper::service::service_fn(move |req| handle(route.clone(), ip.clone(), response_timer.clone(), req));
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(ConnTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}

/// A client connection handed over from the lean path: the bytes it already read come first.
struct Prefixed {
    read: Vec<u8>,
    at: usize,
    stream: tokio::net::TcpStream,
}

impl tokio::io::AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.read.len() {
            let n = buf.remaining().min(self.read.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.read[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Prefixed {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Returns a connection whose response was read to the end to its backend's pool.
fn give_back(backend: &Backend, conn: Conn) {
    if conn.is_closed() {
        return;
    }
    let mut idle = pave_sync::lock(&backend.idle[crate::worker_slot()]);
    if idle.len() < MAX_IDLE {
        idle.push(conn);
    }
}

/// An idle pooled connection ready for a request. One that is still finishing its last
/// response stays pooled for later; closed ones are dropped.
fn take_idle(backend: &Backend) -> Option<Conn> {
    let mut idle = pave_sync::lock(&backend.idle[crate::worker_slot()]);
    idle.retain(|c| !c.is_closed());
    let at = idle.iter().rposition(Conn::is_ready)?;
    Some(idle.swap_remove(at))
}

/// Why a request did not get a response from a backend.
enum Failure {
    /// No connection could be made: nothing was sent, any request may go elsewhere.
    Connect(String),
    /// The request may have reached the backend.
    Request(hyper::Error),
}

async fn connect(backend: &Backend, timeout: std::time::Duration) -> Result<Conn, Failure> {
    let stream = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(backend.addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Failure::Connect(e.to_string())),
        Err(_) => return Err(Failure::Connect(format!("no connection within {timeout:?}"))),
    };
    let _ = stream.set_nodelay(true);
    let (conn, driver) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Failure::Connect(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = driver.with_upgrades().await {
            tracing::debug!(error = %e, "backend connection ended");
        }
    });
    Ok(conn)
}

/// Sends on a pooled connection, or a new one. A pooled connection the backend closed
/// before the request was written hands the request back, and the next one is tried.
async fn send(
    backend: &Backend,
    mut req: Request<UpstreamBody>,
    connect_timeout: std::time::Duration,
) -> Result<(Response<Incoming>, Conn), Failure> {
    while let Some(mut conn) = take_idle(backend) {
        match conn.try_send_request(req).await {
            Ok(resp) => return Ok((resp, conn)),
            Err(mut e) => match e.take_message() {
                Some(back) => req = back,
                None => return Err(Failure::Request(e.into_error())),
            },
        }
    }
    let mut conn = connect(backend, connect_timeout).await?;
    let resp = conn.send_request(req).await.map_err(Failure::Request)?;
    Ok((resp, conn))
}

/// The JSON body of an error the router answers itself.
pub(crate) fn error_body(message: &str, route: &Route) -> String {
    format!(
        "{{\"error\":{message:?},\"service\":{:?},\"environment\":{:?},\"from\":\"pave-router\"}}\n",
        route.service, route.env
    )
}

fn error(status: StatusCode, message: &str, route: &Route) -> Response<ProxyBody> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(error_body(message, route)))));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The value of cookie `name` in one `Cookie` header value.
pub(crate) fn cookie_in<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    value.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// Picks a version: the one `pinned` by header, then the one `kept` by the sticky cookie,
/// then the weighted draw. The flag says whether to (re)set the sticky cookie.
pub(crate) fn choose(table: &Compiled, pinned: Option<&str>, kept: Option<&str>) -> Option<(usize, bool)> {
    let usable = |i: &usize| !table.versions[*i].backends.is_empty();
    if let Some(pinned) = pinned
        && let Some(i) = table.versions.iter().position(|v| v.version == pinned).filter(usable)
    {
        return Some((i, false));
    }
    if table.sticky
        && let Some(kept) = kept
        && let Some(i) = table.versions.iter().position(|v| v.version == kept && v.weight > 0).filter(usable)
    {
        return Some((i, false));
    }
    let weight = |v: &crate::CompiledVersion| if v.backends.is_empty() { 0 } else { u32::from(v.weight) };
    let total: u32 = table.versions.iter().map(weight).sum();
    if total == 0 {
        return None;
    }
    let mut draw = fastrand::u32(0..total);
    for (i, v) in table.versions.iter().enumerate() {
        let w = weight(v);
        if draw < w {
            return Some((i, table.sticky));
        }
        draw -= w;
    }
    None
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// Drops hop-by-hop headers (and those the `Connection` header names); an upgrade keeps the
/// two headers that carry it.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|n| !(upgrade && *n == header::UPGRADE))
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in [
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
    ] {
        headers.remove(n);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
}

/// The client's address as a header value, made once per connection.
fn client_ip(remote: SocketAddr) -> HeaderValue {
    HeaderValue::from_str(&remote.ip().to_string()).expect("an IP address is a header value")
}

fn forwarded(headers: &mut HeaderMap, ip: &HeaderValue) {
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) => HeaderValue::from_str(&format!("{prior}, {}", ip.to_str().unwrap_or_default())).ok(),
        None => Some(ip.clone()),
    };
    if let Some(v) = xff {
        headers.insert("x-forwarded-for", v);
    }
    if !headers.contains_key("x-forwarded-proto") {
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    }
    if !headers.contains_key("x-forwarded-host")
        && let Some(host) = headers.get(header::HOST).cloned()
    {
        headers.insert("x-forwarded-host", host);
    }
}

async fn handle(
    route: Arc<Route>,
    ip: HeaderValue,
    timer: ConnTimer,
    mut req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let table = route.table.load_full();
    let pinned = req.headers().get(VERSION_HEADER).and_then(|v| v.to_str().ok());
    let kept = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie_in(v, &route.cookie));
    let Some((vi, set_cookie)) = choose(&table, pinned, kept) else {
        return Ok(error(StatusCode::SERVICE_UNAVAILABLE, "no version takes traffic", &route));
    };
    let version = &table.versions[vi];
    let upgrade = is_upgrade(req.headers());
    let client_side = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers, upgrade);
    forwarded(&mut headers, &ip);
    let bodyless = !headers.contains_key(header::TRANSFER_ENCODING)
        && headers.get(header::CONTENT_LENGTH).is_none_or(|v| v.as_bytes() == b"0")
        && !upgrade;
    let path_and_query =
        parts.uri.path_and_query().cloned().unwrap_or_else(|| hyper::http::uri::PathAndQuery::from_static("/"));
    let idempotent = matches!(parts.method, hyper::Method::GET | hyper::Method::HEAD | hyper::Method::OPTIONS);
    let n = version.backends.len();
    let first = version.next.fetch_add(1, Ordering::Relaxed);
    let attempts = if bodyless { n.min(3) } else { 1 };
    let mut body = Some(body);
    // Headers are needed again only if a retry is possible.
    let mut headers = Some(headers);
    let record = |status: StatusCode| {
        let minute = crate::signals::minute_of(std::time::SystemTime::now());
        version.signals.record(minute, status.as_u16(), started.elapsed().as_micros() as u64);
    };
    for attempt in 0..attempts {
        let backend = version.backends[(first + attempt) % n].clone();
        let guard = InflightGuard::new(backend.clone());
        let mut upstream = Request::new(match body.take() {
            Some(b) => Either::Left(b),
            None => Either::Right(Empty::new()),
        });
        *upstream.method_mut() = parts.method.clone();
        *upstream.headers_mut() = if attempt + 1 < attempts {
            headers.clone().unwrap_or_default()
        } else {
            headers.take().unwrap_or_default()
        };
        let mut uri = hyper::http::uri::Parts::default();
        uri.scheme = Some(hyper::http::uri::Scheme::HTTP);
        uri.authority = Some(backend.authority.clone());
        uri.path_and_query = Some(path_and_query.clone());
        *upstream.uri_mut() = match hyper::Uri::from_parts(uri) {
            Ok(u) => u,
            Err(_) => return Ok(error(StatusCode::BAD_REQUEST, "request target cannot be forwarded", &route)),
        };
        let answer = within(
            timer.deadline(route.config.response_timeout),
            send(&backend, upstream, route.config.connect_timeout),
        )
        .await;
        let (mut resp, conn) = match answer {
            None => {
                record(StatusCode::GATEWAY_TIMEOUT);
                return Ok(error(StatusCode::GATEWAY_TIMEOUT, "the backend did not answer in time", &route));
            }
            // Refused connections are safe to retry for any bodyless request; other failures
            // before a response (a replica dying mid-request) only for idempotent methods.
            Some(Err(Failure::Connect(e))) if attempt + 1 < attempts => {
                tracing::debug!(backend = %backend.addr, error = %e, "backend refused; trying the next one");
                continue;
            }
            Some(Err(Failure::Request(e))) if idempotent && attempt + 1 < attempts => {
                tracing::debug!(backend = %backend.addr, error = %e, "backend failed; trying the next one");
                continue;
            }
            Some(Err(e)) => {
                let e = match e {
                    Failure::Connect(e) => e,
                    Failure::Request(e) => e.to_string(),
                };
                tracing::warn!(service = %route.service, backend = %backend.addr, error = %e, "backend failed");
                record(StatusCode::BAD_GATEWAY);
                return Ok(error(StatusCode::BAD_GATEWAY, "the backend failed to answer", &route));
            }
            Some(Ok(r)) => r,
        };
        record(resp.status());
        let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
        if switching && let Some(client_side) = client_side {
            // The connection now belongs to the upgraded stream; it never returns to the pool.
            drop(conn);
            let backend_side = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                let _guard = guard;
                if let (Ok(c), Ok(b)) = tokio::join!(client_side, backend_side) {
                    let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(c), &mut TokioIo::new(b)).await;
                }
            });
            let (parts, _) = resp.into_parts();
            return Ok(Response::from_parts(parts, Either::Right(Full::new(Bytes::new()))));
        }
        strip_hop_by_hop(resp.headers_mut(), false);
        resp.headers_mut().insert(VERSION_HEADER, version.header.clone());
        if set_cookie {
            resp.headers_mut().append(header::SET_COOKIE, version.set_cookie.clone());
        }
        return Ok(resp.map(|b| Either::Left(Tracked { inner: b, conn: Some(conn), guard })));
    }
    record(StatusCode::BAD_GATEWAY);
    Ok(error(StatusCode::BAD_GATEWAY, "every backend refused the connection", &route))
}
