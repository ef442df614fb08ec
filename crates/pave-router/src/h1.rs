//! The lean HTTP/1.1 path: the common request — HTTP/1.1, origin-form target, no body or a
//! `Content-Length` body, no upgrade, no `Expect` — is forwarded without building a request or
//! response object. The client's head is parsed in place (httparse), rewritten straight into
//! the bytes sent to the backend, and the backend's head is rewritten the same way on its way
//! back; bodies are copied by their framing (length, chunked or until close) without being
//! decoded.
//!
//! Why: going through hyper's server and client meant two header maps, a request and a
//! response object and a dispatch channel per request, and measured about 6 µs of CPU per
//! request more than nginx (`bench/router.sh`). Anything this path does not handle — a chunked
//! or `Expect` request, an upgrade, HTTP/1.0, an absolute-form target — hands the connection,
//! with the bytes already read, to the hyper path in [`crate::proxy`] for the rest of its life.
//!
//! Backend connections of this path are plain sockets kept per backend per worker
//! ([`crate::Backend::raw`]). One the backend closed while idle is noticed before use (its
//! socket reads ready) or, at the latest, when it answers nothing: an idempotent request whose
//! body is all in hand then goes again on a new connection.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::proxy::{InflightGuard, VERSION_HEADER, choose, error_body};
use crate::timer::{ConnTimer, within};
use crate::{Backend, Route};

/// Largest request or response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Most header lines in a head (hyper's default too).
const MAX_HEADERS: usize = 100;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;
/// Idle raw connections kept per backend per worker at most.
const MAX_IDLE: usize = 512;

/// Request headers never forwarded (RFC 9110 §7.6.1), besides those `Connection` names.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
];

/// What the request head says, after it was rewritten into the upstream head.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RequestHead {
    /// Bytes of the head in the client buffer.
    pub(crate) len: usize,
    pub(crate) body: u64,
    /// GET, HEAD or OPTIONS: may be sent again after a failure.
    pub(crate) idempotent: bool,
    pub(crate) head: bool,
    /// The client asked to close after this response.
    pub(crate) close: bool,
    /// The chosen version (index in the table) and whether to set the sticky cookie.
    pub(crate) choice: Option<(usize, bool)>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// Not all of the head is here yet.
    Partial,
    /// Valid, but for the hyper path.
    Elsewhere,
    /// Answered with this status and closed.
    Bad(u16, &'static str),
}

fn offset_in(buf: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - buf.as_ptr() as usize
}

fn connection_tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|b| *b == b',').map(<[u8]>::trim_ascii).filter(|t| !t.is_empty())
}

/// Parses the request head at the start of `buf`, chooses a version from `table` and writes
/// the head to send upstream into `out` (cleared first).
pub(crate) fn prepare_request(
    buf: &[u8],
    table: &crate::Compiled,
    cookie: &str,
    ip: &str,
    out: &mut Vec<u8>,
) -> Result<RequestHead, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(HeadError::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::Bad(431, "too many request header fields")),
        Err(_) => return Err(HeadError::Bad(400, "malformed request head")),
    };
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Elsewhere);
    };
    if !target.starts_with('/') {
        return Err(HeadError::Elsewhere);
    }
    let mut body = 0u64;
    let mut lengths = 0;
    let mut close = false;
    let mut named: [&[u8]; 8] = [&[]; 8];
    let mut n_named = 0;
    let (mut pinned, mut kept, mut host, mut xff) = (None, None, None, None);
    let (mut has_proto, mut has_fwd_host) = (false, false);
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            body = std::str::from_utf8(h.value)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse().ok())
                .ok_or(HeadError::Bad(400, "invalid Content-Length"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("expect")
        {
            return Err(HeadError::Elsewhere);
        } else if name.eq_ignore_ascii_case("connection") {
            for t in connection_tokens(h.value) {
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if !t.eq_ignore_ascii_case(b"keep-alive") {
                    if n_named == named.len() {
                        return Err(HeadError::Elsewhere);
                    }
                    named[n_named] = t;
                    n_named += 1;
                }
            }
        } else if name.eq_ignore_ascii_case(VERSION_HEADER) {
            pinned = std::str::from_utf8(h.value).ok();
        } else if name.eq_ignore_ascii_case("cookie") {
            if kept.is_none() {
                kept = std::str::from_utf8(h.value).ok().and_then(|v| crate::proxy::cookie_in(v, cookie));
            }
        } else if name.eq_ignore_ascii_case("host") {
            host = Some(h.value);
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            xff = Some(h.value);
        } else if name.eq_ignore_ascii_case("x-forwarded-proto") {
            has_proto = true;
        } else if name.eq_ignore_ascii_case("x-forwarded-host") {
            has_fwd_host = true;
        }
    }
    if lengths > 1 {
        return Err(HeadError::Bad(400, "more than one Content-Length"));
    }
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    copy_headers(buf, req.headers, &HOP_BY_HOP, &named[..n_named], b"x-forwarded-for", out);
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(prior) = xff {
        out.extend_from_slice(prior);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(ip.as_bytes());
    out.extend_from_slice(b"\r\n");
    if !has_proto {
        out.extend_from_slice(b"x-forwarded-proto: http\r\n");
    }
    if let (false, Some(host)) = (has_fwd_host, host) {
        out.extend_from_slice(b"x-forwarded-host: ");
        out.extend_from_slice(host);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(RequestHead {
        len,
        body,
        idempotent: matches!(method, "GET" | "HEAD" | "OPTIONS"),
        head: method == "HEAD",
        close,
        choice: choose(table, pinned, kept),
    })
}

/// Copies the header lines of a head in `buf` to `out` as they came (name to end of value),
/// except hop-by-hop ones, those `Connection` named, and `replaced` (which the router sets).
fn copy_headers(
    buf: &[u8],
    headers: &[httparse::Header<'_>],
    hop_by_hop: &[&str],
    named: &[&[u8]],
    replaced: &[u8],
    out: &mut Vec<u8>,
) {
    for h in headers {
        let name = h.name.as_bytes();
        if hop_by_hop.iter().any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
            || named.iter().any(|n| name.eq_ignore_ascii_case(n))
            || name.eq_ignore_ascii_case(replaced)
        {
            continue;
        }
        let start = offset_in(buf, name);
        let end = offset_in(buf, h.value) + h.value.len();
        out.extend_from_slice(&buf[start..end]);
        out.extend_from_slice(b"\r\n");
    }
}

/// How a response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    pub(crate) len: usize,
    pub(crate) status: u16,
    pub(crate) framing: Framing,
    /// The backend will close its side: its connection is not reused.
    pub(crate) close: bool,
}

/// Response headers never forwarded; `transfer-encoding` is kept, as the body is passed on in
/// the framing the backend chose.
const RESPONSE_HOP_BY_HOP: [&str; 6] = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"];

/// The parts of the client's response the router adds.
pub(crate) struct Additions<'a> {
    pub(crate) version: &'a [u8],
    pub(crate) set_cookie: Option<&'a [u8]>,
    /// Tell the client the connection ends after this response.
    pub(crate) close: bool,
    /// The request was a HEAD: whatever the head says, no body follows.
    pub(crate) head_request: bool,
}

/// Why a backend's response head cannot be passed on (yet).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ResponseError {
    /// Not all of the head is here yet.
    Partial,
    /// The backend broke HTTP: the request fails with a 502.
    Bad(&'static str),
}

/// Parses the backend's response head at the start of `buf` and writes the head for the
/// client into `out` (cleared first). A 1xx interim head is written as it came.
pub(crate) fn prepare_response(
    buf: &[u8],
    add: &Additions<'_>,
    out: &mut Vec<u8>,
) -> Result<ResponseHead, ResponseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(ResponseError::Partial),
        Err(_) => return Err(ResponseError::Bad("the backend sent a malformed response head")),
    };
    let status = resp.code.unwrap_or(0);
    out.clear();
    if (100..200).contains(&status) {
        if status == 101 {
            return Err(ResponseError::Bad("the backend switched protocols unasked"));
        }
        out.extend_from_slice(&buf[..len]);
        return Ok(ResponseHead { len, status, framing: Framing::Empty, close: false });
    }
    let mut framing = if resp.version == Some(0) { Framing::UntilClose } else { Framing::Empty };
    let mut length = None;
    let mut close = resp.version == Some(0);
    let mut named: [&[u8]; 8] = [&[]; 8];
    let mut n_named = 0;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|b| *b == b',').next().map(<[u8]>::trim_ascii);
            framing = if last.is_some_and(|t| t.eq_ignore_ascii_case(b"chunked")) {
                Framing::Chunked
            } else {
                Framing::UntilClose
            };
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(ResponseError::Bad("the backend sent an invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(ResponseError::Bad("the backend sent conflicting Content-Lengths"));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("connection") {
            for t in connection_tokens(h.value) {
                if t.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    if resp.version == Some(0) {
                        close = false;
                    }
                } else if n_named < named.len() {
                    named[n_named] = t;
                    n_named += 1;
                }
            }
        }
    }
    if framing != Framing::Chunked
        && let Some(n) = length
    {
        framing = Framing::Length(n);
    }
    if add.head_request || status == 204 || status == 304 {
        framing = Framing::Empty;
    } else if framing == Framing::Empty {
        // HTTP/1.1 without length or chunking: the body runs until the backend closes.
        framing = Framing::UntilClose;
    }
    if framing == Framing::UntilClose {
        close = true;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    // A three-digit code (httparse checks), written without formatting.
    out.extend_from_slice(&[b'0' + (status / 100) as u8, b'0' + (status / 10 % 10) as u8, b'0' + (status % 10) as u8]);
    out.push(b' ');
    out.extend_from_slice(resp.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    copy_headers(buf, resp.headers, &RESPONSE_HOP_BY_HOP, &named[..n_named], VERSION_HEADER.as_bytes(), out);
    out.extend_from_slice(b"x-pave-version: ");
    out.extend_from_slice(add.version);
    out.extend_from_slice(b"\r\n");
    if let Some(c) = add.set_cookie {
        out.extend_from_slice(b"set-cookie: ");
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    if add.close || framing == Framing::UntilClose {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(ResponseHead { len, status, framing, close })
}

/// Follows chunked framing over the bytes of a body as they pass, to find where it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunks {
    /// Reading a chunk-size line (its hex digits so far).
    Size(u64),
    /// Past the size, up to the line's end (extensions); the size read.
    SizeLine(u64),
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines; whether the current line has any byte yet.
    Trailer(bool),
    Done,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadChunk;

impl Chunks {
    /// Moves over `bytes`; returns how many of them belong to the body (all, or up to its end).
    pub(crate) fn advance(&mut self, bytes: &[u8]) -> Result<usize, BadChunk> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            *self = match *self {
                Chunks::Done => return Ok(i),
                Chunks::Size(n) => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                        Chunks::Size(n.checked_mul(16).and_then(|n| n.checked_add(d)).ok_or(BadChunk)?)
                    }
                    b';' | b' ' | b'\t' | b'\r' => Chunks::SizeLine(n),
                    _ => return Err(BadChunk),
                },
                Chunks::SizeLine(n) => match b {
                    b'\n' if n == 0 => Chunks::Trailer(false),
                    b'\n' => Chunks::Data(n),
                    _ => Chunks::SizeLine(n),
                },
                Chunks::Data(n) => {
                    let take = (bytes.len() - i).min(usize::try_from(n).unwrap_or(usize::MAX));
                    i += take;
                    let left = n - take as u64;
                    *self = if left == 0 { Chunks::DataEnd } else { Chunks::Data(left) };
                    continue;
                }
                Chunks::DataEnd => match b {
                    b'\r' => Chunks::DataEnd,
                    b'\n' => Chunks::Size(0),
                    _ => return Err(BadChunk),
                },
                Chunks::Trailer(any) => match b {
                    b'\n' if !any => Chunks::Done,
                    b'\n' => Chunks::Trailer(false),
                    b'\r' => Chunks::Trailer(any),
                    _ => Chunks::Trailer(true),
                },
            };
            i += 1;
        }
        Ok(i)
    }
}

/// What became of a connection served here.
pub(crate) enum Served {
    /// It ended (closed by either side, timed out, or answered an error and closed).
    Closed,
    /// A request this path does not handle: the connection and the bytes already read go to
    /// the hyper path.
    Elsewhere(TcpStream, Vec<u8>),
}

/// Why an exchange with a backend failed.
enum Failure {
    /// No connection: nothing was sent.
    Connect(String),
    /// The request may have reached the backend.
    Request(String),
}

/// Why sending on one connection failed.
enum Unsent {
    /// Nothing came back and the whole request is still in hand: it may go again.
    Nothing(String),
    /// Part of the answer came, or the body's remainder was taken from the client.
    Partly(String),
}

async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    buf.reserve(READ_CHUNK);
    s.read_buf(buf).await
}

/// Answers with a router error; false when the connection is done for (closed, or `close`).
async fn reply_error(client: &mut TcpStream, status: u16, message: &str, route: &Route, close: bool) -> bool {
    let body = error_body(message, route);
    let reason = hyper::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n",
        body.len(),
        if close { "connection: close\r\n" } else { "" }
    );
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    client.write_all(&bytes).await.is_ok() && !close
}

/// Per-connection buffers, reused request after request.
struct Buffers {
    /// Bytes from the client not yet consumed: the next request head, maybe more.
    client: Vec<u8>,
    /// The request as it goes upstream: the rewritten head and the body bytes in hand.
    up: Vec<u8>,
    /// Bytes from the backend: the response head and what came with it.
    backend: Vec<u8>,
    /// The response head for the client and the body bytes that go with it.
    down: Vec<u8>,
}

/// Serves requests on `client` until it closes or sends one for the hyper path.
pub(crate) async fn serve(route: &Route, mut client: TcpStream, ip: &str) -> Served {
    let timer = ConnTimer::new();
    let mut b = Buffers {
        client: Vec::with_capacity(READ_CHUNK),
        up: Vec::with_capacity(1024),
        backend: Vec::with_capacity(READ_CHUNK),
        down: Vec::with_capacity(1024),
    };
    loop {
        let (req, table) = loop {
            if !b.client.is_empty() {
                // The table in force when the request came, not when the connection went idle.
                let table = route.table.load_full();
                match prepare_request(&b.client, &table, &route.cookie, ip, &mut b.up) {
                    Ok(r) => break (r, table),
                    Err(HeadError::Partial) if b.client.len() < MAX_HEAD => {}
                    Err(HeadError::Partial) => {
                        reply_error(&mut client, 431, "request head too large", route, true).await;
                        return Served::Closed;
                    }
                    Err(HeadError::Elsewhere) => return Served::Elsewhere(client, b.client),
                    Err(HeadError::Bad(status, why)) => {
                        reply_error(&mut client, status, why, route, true).await;
                        return Served::Closed;
                    }
                }
            }
            match within(timer.deadline(route.config.header_timeout), read_more(&mut client, &mut b.client)).await {
                Some(Ok(n)) if n > 0 => {}
                _ => return Served::Closed,
            }
        };
        // The body bytes already read go in the same write as the head.
        let in_hand = usize::try_from(req.body).unwrap_or(usize::MAX).min(b.client.len() - req.len);
        b.up.extend_from_slice(&b.client[req.len..req.len + in_hand]);
        b.client.drain(..req.len + in_hand);
        let mut to_stream = req.body - in_hand as u64;
        let Some((vi, set_cookie)) = req.choice else {
            // Answered without reading the body: the connection can carry on only if it was
            // all here.
            let keep = to_stream == 0 && !req.close;
            if !reply_error(&mut client, 503, "no version takes traffic", route, !keep).await {
                return Served::Closed;
            }
            continue;
        };
        let version = &table.versions[vi];
        let add = Additions {
            version: version.header.as_bytes(),
            set_cookie: set_cookie.then(|| version.set_cookie.as_bytes()),
            close: req.close,
            head_request: req.head,
        };
        let started = Instant::now();
        let record = |status: u16| {
            let minute = crate::signals::minute_of(std::time::SystemTime::now());
            version.signals.record(minute, status, started.elapsed().as_micros() as u64);
        };
        let n = version.backends.len();
        let first = version.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // With the whole request in hand it can go to another replica.
        let attempts = if to_stream == 0 { n.min(3) } else { 1 };
        let mut answered = None;
        for attempt in 0..attempts {
            let guard = InflightGuard::new(version.backends[(first + attempt) % n].clone());
            let exchange = exchange(
                &guard.0,
                route.config.connect_timeout,
                &mut client,
                &mut to_stream,
                &mut b,
                &add,
                req.idempotent,
            );
            let last = attempt + 1 == attempts;
            let message = match within(timer.deadline(route.config.response_timeout), exchange).await {
                Some(Ok((conn, head))) => {
                    record(head.status);
                    answered = Some((conn, head, guard));
                    break;
                }
                None => {
                    record(504);
                    // The request may be half sent: this connection cannot go on.
                    reply_error(&mut client, 504, "the backend did not answer in time", route, true).await;
                    return Served::Closed;
                }
                Some(Err(Failure::Connect(e))) if !last => {
                    tracing::debug!(backend = %guard.0.addr, error = %e, "backend refused; trying the next one");
                    continue;
                }
                Some(Err(Failure::Request(e))) if req.idempotent && !last => {
                    tracing::debug!(backend = %guard.0.addr, error = %e, "backend failed; trying the next one");
                    continue;
                }
                Some(Err(Failure::Connect(e))) => {
                    tracing::warn!(service = %route.service, backend = %guard.0.addr, error = %e, "backend refused");
                    "every backend refused the connection"
                }
                Some(Err(Failure::Request(e))) => {
                    tracing::warn!(service = %route.service, backend = %guard.0.addr, error = %e, "backend failed");
                    "the backend failed to answer"
                }
            };
            record(502);
            let keep = to_stream == 0 && !req.close;
            if !reply_error(&mut client, 502, message, route, !keep).await {
                return Served::Closed;
            }
            break;
        }
        let Some((mut conn, head, guard)) = answered else {
            continue;
        };
        let reusable = match relay_body(&mut conn, &mut client, &mut b, head.len, head.framing).await {
            Ok(clean) => clean && !head.close,
            Err(()) => return Served::Closed,
        };
        if reusable {
            give_back(&guard.0, conn);
        }
        drop(guard);
        if req.close || head.framing == Framing::UntilClose {
            let _ = client.shutdown().await;
            return Served::Closed;
        }
    }
}

fn give_back(backend: &Backend, conn: TcpStream) {
    let Some(slot) = crate::raw_slot() else {
        return;
    };
    let mut idle = pave_sync::lock(&backend.raw[slot]);
    if idle.len() < MAX_IDLE {
        idle.push(conn);
    }
}

/// An idle connection to `backend` that still looks open: one whose socket reads ready holds
/// either the backend's close or bytes nobody asked for, and is dropped.
fn take_idle(backend: &Backend) -> Option<TcpStream> {
    let slot = crate::raw_slot()?;
    let mut idle = pave_sync::lock(&backend.raw[slot]);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    while let Some(conn) = idle.pop() {
        if conn.poll_read_ready(&mut cx).is_pending() {
            return Some(conn);
        }
    }
    None
}

async fn connect(backend: &Backend, timeout: std::time::Duration) -> Result<TcpStream, Failure> {
    match tokio::time::timeout(timeout, TcpStream::connect(backend.addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(Failure::Connect(e.to_string())),
        Err(_) => Err(Failure::Connect(format!("no connection within {timeout:?}"))),
    }
}

/// Sends the request to `backend` on a kept connection or a new one and reads the response
/// head. A kept connection that answers nothing (the backend closed it while idle) is replaced
/// by a new one when the request can safely go again.
async fn exchange(
    backend: &Backend,
    connect_timeout: std::time::Duration,
    client: &mut TcpStream,
    to_stream: &mut u64,
    b: &mut Buffers,
    add: &Additions<'_>,
    idempotent: bool,
) -> Result<(TcpStream, ResponseHead), Failure> {
    let mut kept = take_idle(backend);
    loop {
        let reused = kept.is_some();
        let mut conn = match kept.take() {
            Some(c) => c,
            None => connect(backend, connect_timeout).await?,
        };
        match send(&mut conn, client, to_stream, b, add).await {
            Ok(head) => return Ok((conn, head)),
            // Sent again only when that is safe whether or not the backend saw it (as Go's
            // HTTP client does): the kept connection failed before any answer, the method is
            // idempotent and the whole body is still in hand.
            Err(Unsent::Nothing(e)) if reused && idempotent => {
                tracing::debug!(backend = %backend.addr, error = %e, "kept connection was closed; sending on a new one");
            }
            Err(Unsent::Nothing(e) | Unsent::Partly(e)) => return Err(Failure::Request(e)),
        }
    }
}

/// One try of [`exchange`] on one connection. 1xx interim answers are passed to the client.
async fn send(
    conn: &mut TcpStream,
    client: &mut TcpStream,
    to_stream: &mut u64,
    b: &mut Buffers,
    add: &Additions<'_>,
) -> Result<ResponseHead, Unsent> {
    conn.write_all(&b.up).await.map_err(|e| Unsent::Nothing(e.to_string()))?;
    let streamed = *to_stream > 0;
    // The body's remainder, straight from the client; what the client sends past it is the
    // next request and stays in `b.client`.
    while *to_stream > 0 {
        if b.client.is_empty() {
            match read_more(client, &mut b.client).await {
                Ok(n) if n > 0 => {}
                _ => return Err(Unsent::Partly("the client went away mid-body".into())),
            }
        }
        let take = b.client.len().min(usize::try_from(*to_stream).unwrap_or(usize::MAX));
        conn.write_all(&b.client[..take]).await.map_err(|e| Unsent::Partly(e.to_string()))?;
        b.client.drain(..take);
        *to_stream -= take as u64;
    }
    b.backend.clear();
    loop {
        let head = loop {
            if !b.backend.is_empty() {
                match prepare_response(&b.backend, add, &mut b.down) {
                    Ok(h) => break h,
                    Err(ResponseError::Partial) if b.backend.len() < MAX_HEAD => {}
                    Err(ResponseError::Partial) => return Err(Unsent::Partly("response head too large".into())),
                    Err(ResponseError::Bad(why)) => return Err(Unsent::Partly(why.into())),
                }
            }
            let read = read_more(conn, &mut b.backend).await;
            let nothing = b.backend.is_empty() && !streamed;
            match read {
                Ok(n) if n > 0 => {}
                Ok(_) if nothing => return Err(Unsent::Nothing("the backend closed the connection".into())),
                Err(e) if nothing => return Err(Unsent::Nothing(e.to_string())),
                Ok(_) => return Err(Unsent::Partly("the backend closed the connection mid-answer".into())),
                Err(e) => return Err(Unsent::Partly(e.to_string())),
            }
        };
        if (100..200).contains(&head.status) {
            client.write_all(&b.down).await.map_err(|e| Unsent::Partly(e.to_string()))?;
            b.backend.drain(..head.len);
            continue;
        }
        return Ok(head);
    }
}

/// Sends the client the response head (in `b.down`) and the body by its framing, starting
/// with the bytes that came after the head. Ok(true) when the backend connection ended exactly
/// at the body's end and can carry another request; Err when the client connection is done
/// for (it went away, or the backend failed mid-body and the client must see the cut).
async fn relay_body(
    conn: &mut TcpStream,
    client: &mut TcpStream,
    b: &mut Buffers,
    head_len: usize,
    framing: Framing,
) -> Result<bool, ()> {
    let mut chunks = Chunks::Size(0);
    // Body bytes still to come (chunked and until-close: unknown until they end).
    let mut left = match framing {
        Framing::Empty => 0,
        Framing::Length(n) => n,
        Framing::Chunked | Framing::UntilClose => u64::MAX,
    };
    // How many of `bytes` belong to the body; None when the body framing is broken.
    let mut take = |bytes: &[u8], left: &mut u64| -> Option<usize> {
        match framing {
            Framing::Empty => Some(0),
            Framing::Length(_) => {
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(bytes.len());
                *left -= n as u64;
                Some(n)
            }
            Framing::Chunked => {
                let n = chunks.advance(bytes).ok()?;
                if chunks == Chunks::Done {
                    *left = 0;
                }
                Some(n)
            }
            Framing::UntilClose => Some(bytes.len()),
        }
    };
    let first = take(&b.backend[head_len..], &mut left).ok_or(())?;
    b.down.extend_from_slice(&b.backend[head_len..head_len + first]);
    let mut extra = b.backend.len() > head_len + first;
    client.write_all(&b.down).await.map_err(drop)?;
    while left > 0 {
        b.backend.clear();
        match read_more(conn, &mut b.backend).await {
            Ok(n) if n > 0 => {}
            Ok(_) if framing == Framing::UntilClose => return Ok(false),
            _ => return Err(()),
        }
        let n = take(&b.backend, &mut left).ok_or(())?;
        extra |= b.backend.len() > n;
        client.write_all(&b.backend[..n]).await.map_err(drop)?;
    }
    Ok(!extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(sticky: bool) -> std::sync::Arc<crate::Compiled> {
        let route = crate::Route::new("shop", "prod", crate::RouterConfig::default());
        let addr: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
        route
            .set(crate::RouteTable {
                versions: vec![
                    crate::VersionRoute { version: "v1".into(), weight: 100, backends: vec![addr] },
                    crate::VersionRoute { version: "v2".into(), weight: 0, backends: vec![addr] },
                ],
                sticky,
            })
            .unwrap();
        route.table.load_full()
    }

    fn prepare(head: &str, sticky: bool) -> Result<(RequestHead, String), HeadError> {
        let mut out = Vec::new();
        let r = prepare_request(head.as_bytes(), &table(sticky), "pave-version-shop-prod", "10.1.2.3", &mut out)?;
        Ok((r, String::from_utf8(out).unwrap()))
    }

    #[test]
    fn a_request_head_is_rewritten_in_place_for_the_backend() {
        // Lines are copied as they came (the double space too); hop-by-hop ones are dropped.
        let head = "POST /a?b=1 HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\n\
             Keep-Alive: timeout=5\r\nX-Forwarded-For: 10.0.0.9\r\nContent-Length: 3\r\nAccept:  */*\r\n\r\n";
        let (r, up) = prepare(&format!("{head}abcGET"), false).unwrap();
        assert_eq!(
            up,
            "POST /a?b=1 HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 3\r\nAccept:  */*\r\n\
             x-forwarded-for: 10.0.0.9, 10.1.2.3\r\nx-forwarded-proto: http\r\nx-forwarded-host: shop.example\r\n\r\n"
        );
        assert_eq!((r.body, r.idempotent, r.head, r.close, r.choice), (3, false, false, false, Some((0, false))));
        assert_eq!(r.len, head.len());
    }

    #[test]
    fn pins_cookies_and_close_are_read_from_the_head() {
        let (r, _) = prepare("HEAD / HTTP/1.1\r\nx-pave-version: v2\r\nConnection: close\r\n\r\n", true).unwrap();
        assert_eq!((r.head, r.idempotent, r.close, r.choice), (true, true, true, Some((1, false))));
        let (r, _) = prepare("GET / HTTP/1.1\r\nCookie: a=b; pave-version-shop-prod=v1\r\n\r\n", true).unwrap();
        assert_eq!(r.choice, Some((0, false)), "kept by the cookie, no new cookie");
        let (r, _) = prepare("GET / HTTP/1.1\r\n\r\n", true).unwrap();
        assert_eq!(r.choice, Some((0, true)), "drawn, and the cookie is set");
    }

    #[test]
    fn what_the_lean_path_does_not_handle_goes_elsewhere_and_bad_heads_are_named() {
        for head in [
            "GET / HTTP/1.0\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n",
        ] {
            assert_eq!(prepare(head, false).unwrap_err(), HeadError::Elsewhere, "{head}");
        }
        assert_eq!(prepare("GET / HTTP/1.1\r\nHost: a\r\n", false).unwrap_err(), HeadError::Partial);
        assert_eq!(prepare("GARBAGE\r\n\r\n", false).unwrap_err(), HeadError::Bad(400, "malformed request head"));
        assert_eq!(
            prepare("POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", false).unwrap_err(),
            HeadError::Bad(400, "invalid Content-Length")
        );
        assert_eq!(
            prepare("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", false).unwrap_err(),
            HeadError::Bad(400, "more than one Content-Length")
        );
    }

    fn respond(head: &str, add: &Additions<'_>) -> (ResponseHead, String) {
        let mut out = Vec::new();
        let r = prepare_response(head.as_bytes(), add, &mut out).unwrap();
        (r, String::from_utf8(out).unwrap())
    }

    const PLAIN: Additions<'static> = Additions { version: b"v1", set_cookie: None, close: false, head_request: false };

    #[test]
    fn a_response_head_gets_the_version_and_keeps_its_framing() {
        let add = Additions { set_cookie: Some(b"c=v1; Path=/"), ..PLAIN };
        let (r, down) = respond(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nx-pave-version: forged\r\n\r\nhello",
            &add,
        );
        assert_eq!(
            down,
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nx-pave-version: v1\r\nset-cookie: c=v1; Path=/\r\n\r\n"
        );
        assert_eq!((r.status, r.framing, r.close), (200, Framing::Length(5), false));
        let (r, down) = respond("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n", &PLAIN);
        assert_eq!(r.framing, Framing::Chunked, "chunked wins over a length");
        assert!(down.contains("Transfer-Encoding: chunked\r\n"), "{down}");
        let (r, down) = respond("HTTP/1.1 200 OK\r\n\r\n", &PLAIN);
        assert_eq!((r.framing, r.close), (Framing::UntilClose, true));
        assert!(down.ends_with("connection: close\r\n\r\n"), "{down}");
        let (r, _) = respond("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", &PLAIN);
        assert_eq!((r.framing, r.close), (Framing::Length(2), true), "HTTP/1.0 closes unless kept alive");
        let (r, _) =
            respond("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", &Additions { head_request: true, ..PLAIN });
        assert_eq!(r.framing, Framing::Empty, "no body after HEAD");
        let (r, _) = respond("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", &PLAIN);
        assert_eq!(r.framing, Framing::Empty);
        let (r, down) = respond("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n", &PLAIN);
        assert_eq!((r.status, down.as_str()), (103, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"));
        let mut out = Vec::new();
        assert_eq!(
            prepare_response(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &PLAIN, &mut out),
            Err(ResponseError::Bad("the backend sent conflicting Content-Lengths"))
        );
    }

    #[test]
    fn chunked_framing_is_followed_across_any_split() {
        let body = b"5\r\nhello\r\n6;name=v\r\n world\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n";
        let mut whole = Chunks::Size(0);
        let mut with_next = body.to_vec();
        with_next.extend_from_slice(b"HTTP/1.1 200 OK");
        assert_eq!(whole.advance(&with_next), Ok(body.len()), "ends where the body ends");
        assert_eq!(whole, Chunks::Done);
        for split in 1..body.len() {
            let mut c = Chunks::Size(0);
            assert_eq!(c.advance(&body[..split]), Ok(split));
            assert_ne!(c, Chunks::Done, "not done after {split} bytes");
            assert_eq!(c.advance(&body[split..]), Ok(body.len() - split));
            assert_eq!(c, Chunks::Done, "split at {split}");
        }
        let mut c = Chunks::Size(0);
        assert_eq!(c.advance(b"0\r\n\r\n"), Ok(5));
        assert_eq!(c, Chunks::Done);
        assert_eq!(Chunks::Size(0).advance(b"zz\r\n"), Err(BadChunk));
        assert_eq!(Chunks::Size(0).advance(b"ffffffffffffffffff\r\n"), Err(BadChunk), "overflow");
        assert_eq!(Chunks::Size(0).advance(b"1\r\nab"), Err(BadChunk), "data longer than its size");
    }
}
