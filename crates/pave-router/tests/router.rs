//! The router against real backends on loopback: weights, header pins, sticky cookies,
//! forwarded headers, streaming, upgrades, draining, retries and signals.

// Test helpers may unwrap: clippy counts only `#[test]` functions of a test crate as tests.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pave_router::{Listening, Route, RouteTable, RouterConfig, VersionRoute, Workers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Body = BoxBody<Bytes, hyper::Error>;

fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).map_err(|never| match never {}).boxed()
}

/// A backend that names itself in every answer.
async fn backend(name: &'static str) -> SocketAddr {
    counting_backend(name).await.0
}

/// A backend that also counts the connections it accepted.
async fn counting_backend(name: &'static str) -> (SocketAddr, Arc<AtomicU64>) {
    accepting(move |stream| async move {
        let svc = hyper::service::service_fn(move |req| answer(name, req));
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), svc)
            .with_upgrades()
            .await;
    })
    .await
}

/// Listens on loopback and serves each connection with `serve`; counts the connections.
async fn accepting<F, Fut>(serve: F) -> (SocketAddr, Arc<AtomicU64>)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(serve(stream));
        }
    });
    (addr, accepted)
}

async fn answer(name: &'static str, mut req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let mut resp = match path.as_str() {
        "/headers" => {
            let h = |n: &str| req.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
            let body = serde_json::json!({
                "xff": h("x-forwarded-for"), "proto": h("x-forwarded-proto"), "host": h("x-forwarded-host"),
                "connection": h("connection"), "secret": h("x-secret"),
            });
            Response::new(full(body.to_string()))
        }
        "/echo" => Response::new(req.into_body().boxed()),
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(400)).await;
            Response::new(full("slow"))
        }
        "/fail" => {
            let mut r = Response::new(full("boom"));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
        "/ws" if req.headers().get("upgrade").is_some() => {
            let on = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let mut io = TokioIo::new(on.await.unwrap());
                let mut buf = [0u8; 64];
                loop {
                    let n = io.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    io.write_all(&buf[..n]).await.unwrap();
                }
            });
            let mut r = Response::new(full(""));
            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            r.headers_mut().insert("upgrade", "echo".parse().unwrap());
            r.headers_mut().insert("connection", "upgrade".parse().unwrap());
            r
        }
        _ => Response::new(full(name)),
    };
    resp.headers_mut().insert("x-backend", name.parse().unwrap());
    Ok(resp)
}

fn table(sticky: bool, versions: &[(&str, u8, &[SocketAddr])]) -> RouteTable {
    RouteTable {
        versions: versions
            .iter()
            .map(|(v, w, b)| VersionRoute { version: v.to_string(), weight: *w, backends: b.to_vec() })
            .collect(),
        sticky,
    }
}

/// Two proxy workers shared by the tests, as `pave serve` runs them: connections are dealt
/// to both, so every test also crosses from the accepting worker to another.
fn workers() -> &'static Workers {
    static WORKERS: std::sync::OnceLock<Workers> = std::sync::OnceLock::new();
    WORKERS.get_or_init(|| Workers::start(2).unwrap())
}

async fn router(t: RouteTable) -> Listening {
    router_with(RouterConfig::default(), t)
}

fn router_with(config: RouterConfig, t: RouteTable) -> Listening {
    let route = Route::new("shop", "prod", config);
    route.set(t).unwrap();
    workers().listen(route, std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap()
}

fn client() -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

async fn send(c: &Client<HttpConnector, Body>, req: Request<Body>) -> (StatusCode, hyper::HeaderMap, String) {
    let resp = c.request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, String::from_utf8_lossy(&bytes).into_owned())
}

fn get(at: SocketAddr, path: &str) -> hyper::http::request::Builder {
    Request::get(format!("http://{at}{path}"))
}

#[tokio::test]
async fn weights_split_traffic_and_a_header_pins_a_version() {
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    let r = router(table(false, &[("v1", 90, &[a]), ("v2", 10, &[b]), ("preview", 0, &[c])])).await;
    let cl = client();
    let mut counts = std::collections::HashMap::new();
    for _ in 0..2000 {
        let (s, h, body) = send(&cl, get(r.addr, "/").body(full("")).unwrap()).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["x-pave-version"], if body == "a" { "v1" } else { "v2" });
        *counts.entry(body).or_insert(0) += 1;
    }
    let b_share = counts.get("b").copied().unwrap_or(0) as f64 / 2000.0;
    assert!((0.07..0.13).contains(&b_share), "v2 got {b_share} of the traffic, expected ~0.10");
    assert!(!counts.contains_key("c"), "a weight-0 version gets no unpinned traffic");
    let (_, _, body) = send(&cl, get(r.addr, "/").header("x-pave-version", "preview").body(full("")).unwrap()).await;
    assert_eq!(body, "c");
    // A pin to a version the route does not have falls back to the weights.
    let (s, _, _) = send(&cl, get(r.addr, "/").header("x-pave-version", "nope").body(full("")).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    // Weights must add up.
    let err = r.route.set(table(false, &[("v1", 50, &[a]), ("v2", 40, &[b])])).unwrap_err();
    assert_eq!(err.to_string(), "weights add up to 90%, not 100% (or 0% for no traffic)");
    assert_eq!(r.route.table().versions.len(), 3, "a rejected table changes nothing");
}

#[tokio::test]
async fn a_sticky_cookie_keeps_a_user_on_one_version_while_it_takes_traffic() {
    let (a, b) = (backend("a").await, backend("b").await);
    let r = router(table(true, &[("v1", 50, &[a]), ("v2", 50, &[b])])).await;
    let cl = client();
    let (_, h, first) = send(&cl, get(r.addr, "/").body(full("")).unwrap()).await;
    let cookie = h["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("pave-version-shop-prod="), "{cookie}");
    for _ in 0..50 {
        let (_, h, body) = send(&cl, get(r.addr, "/").header("cookie", &cookie).body(full("")).unwrap()).await;
        assert_eq!(body, first);
        assert!(h.get("set-cookie").is_none());
    }
    // Once that version takes no traffic, the cookie no longer holds the user there.
    let (kept, other) = if first == "a" { ("v1", b) } else { ("v2", a) };
    let other_v = if kept == "v1" { "v2" } else { "v1" };
    r.route.set(table(true, &[(other_v, 100, &[other])])).unwrap();
    let (_, h, body) = send(&cl, get(r.addr, "/").header("cookie", &cookie).body(full("")).unwrap()).await;
    assert_ne!(body, first);
    assert!(h["set-cookie"].to_str().unwrap().contains(other_v));
}

#[tokio::test]
async fn forwarded_headers_are_set_and_hop_by_hop_ones_dropped() {
    let a = backend("a").await;
    let r = router(table(false, &[("v1", 100, &[a])])).await;
    let req = get(r.addr, "/headers")
        .header("host", "shop.example")
        .header("x-forwarded-for", "10.0.0.9")
        .header("connection", "keep-alive, x-secret")
        .header("x-secret", "drop me")
        .body(full(""))
        .unwrap();
    let (_, _, body) = send(&client(), req).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["xff"], "10.0.0.9, 127.0.0.1");
    assert_eq!(v["proto"], "http");
    assert_eq!(v["host"], "shop.example");
    assert_eq!(v["secret"], serde_json::Value::Null, "a header named in Connection is hop-by-hop");
}

#[tokio::test]
async fn bodies_stream_through_both_ways() {
    let a = backend("a").await;
    let r = router(table(false, &[("v1", 100, &[a])])).await;
    let payload: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, hyper::Error>>(4);
    let chunks = payload.clone();
    tokio::spawn(async move {
        for c in chunks.chunks(64 * 1024) {
            tx.send(Ok(hyper::body::Frame::data(Bytes::copy_from_slice(c)))).await.unwrap();
        }
    });
    let body = Channel(rx).boxed();
    let resp = client().request(Request::post(format!("http://{}/echo", r.addr)).body(body).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(got.len(), payload.len());
    assert!(got.as_ref() == payload.as_slice());
}

/// A request body fed chunk by chunk from a channel, so it is really streamed.
struct Channel(tokio::sync::mpsc::Receiver<Result<hyper::body::Frame<Bytes>, hyper::Error>>);

impl hyper::body::Body for Channel {
    type Data = Bytes;
    type Error = hyper::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
        self.0.poll_recv(cx)
    }
}

#[tokio::test]
async fn upgrades_are_spliced_through() {
    let a = backend("a").await;
    let r = router(table(false, &[("v1", 100, &[a])])).await;
    let mut s = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n").await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(r.route.inflight(a), 1, "an open upgraded connection counts as in flight");
    s.write_all(b"hello through the router").await.unwrap();
    let mut buf = [0u8; 24];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello through the router");
    drop(s);
}

#[tokio::test]
async fn switching_under_load_drops_nothing_and_drain_waits_for_requests_in_flight() {
    let (a, b) = (backend("a").await, backend("b").await);
    let r = router(table(false, &[("v1", 100, &[a])])).await;
    let failures = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (addr, failures, done) = (r.addr, failures.clone(), done.clone());
        load.push(tokio::spawn(async move {
            let cl = client();
            for _ in 0..150 {
                match cl.request(get(addr, "/").body(full("")).unwrap()).await {
                    Ok(resp) if resp.status() == StatusCode::OK => {}
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for i in 0..40 {
        let t = if i % 2 == 0 { table(false, &[("v2", 100, &[b])]) } else { table(false, &[("v1", 100, &[a])]) };
        r.route.set(t).unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for l in load {
        l.await.unwrap();
    }
    assert_eq!(done.load(Ordering::Relaxed), 1200);
    assert_eq!(failures.load(Ordering::Relaxed), 0);

    // A slow request keeps its backend busy after the switch; drain waits for it.
    r.route.set(table(false, &[("v1", 100, &[a])])).unwrap();
    let addr = r.addr;
    let slow = tokio::spawn(async move { send(&client(), get(addr, "/slow").body(full("")).unwrap()).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    r.route.set(table(false, &[("v2", 100, &[b])])).unwrap();
    assert_eq!(r.route.inflight(a), 1);
    assert!(!r.route.drain(a, Duration::from_millis(50)).await, "still busy");
    assert!(r.route.drain(a, Duration::from_secs(2)).await);
    assert_eq!(slow.await.unwrap().2, "slow");
}

#[tokio::test]
async fn dead_backends_are_skipped_and_errors_are_clear() {
    let a = backend("a").await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let r = router(table(false, &[("v1", 100, &[dead, a])])).await;
    let cl = client();
    for _ in 0..10 {
        let (s, _, body) = send(&cl, get(r.addr, "/").body(full("")).unwrap()).await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "a"), "a refused connection is retried on the next replica");
    }
    r.route.set(table(false, &[("v1", 100, &[dead])])).unwrap();
    let (s, _, body) = send(&cl, get(r.addr, "/").body(full("")).unwrap()).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    assert!(body.contains("\"service\":\"shop\""), "{body}");
    r.route.set(RouteTable::default()).unwrap();
    let (s, _, body) = send(&cl, get(r.addr, "/").body(full("")).unwrap()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("no version takes traffic"), "{body}");
}

#[tokio::test]
async fn a_backend_that_never_answers_gets_a_504_and_a_client_that_never_finishes_its_head_is_cut_off() {
    // Accepts and reads, never answers.
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_addr = mute.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = mute.accept().await {
            held.push(s);
        }
    });
    let a = backend("a").await;
    let config = RouterConfig {
        response_timeout: Duration::from_millis(300),
        header_timeout: Duration::from_millis(300),
        ..RouterConfig::default()
    };
    let r = router_with(config, table(false, &[("v1", 100, &[a]), ("mute", 0, &[mute_addr])]));
    let cl = client();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let req = get(r.addr, "/").header("x-pave-version", "mute").body(full("")).unwrap();
        let (s, _, body) = tokio::time::timeout(Duration::from_secs(5), send(&cl, req)).await.expect("an answer");
        let took = started.elapsed();
        assert_eq!(s, StatusCode::GATEWAY_TIMEOUT, "{body}");
        assert!(body.contains("did not answer in time"), "{body}");
        assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(1500), "{took:?}");
        // The same connections still serve a backend that answers, past the old deadline.
        let (s, _, body) = send(&cl, get(r.addr, "/").body(full("")).unwrap()).await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "a"));
    }

    // Half a request head, then silence: the router closes the connection.
    let mut c = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(3), c.read(&mut buf)).await.expect("closed in time").unwrap_or(0);
    let took = started.elapsed();
    assert!(n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408"), "{:?}", String::from_utf8_lossy(&buf[..n]));
    assert!(took >= Duration::from_millis(250) && took < Duration::from_millis(1500), "{took:?}");

    // Each request head gets its own deadline: a keep-alive connection whose requests come
    // 200 ms apart lives well past the 300 ms header timeout.
    let mut c = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    for _ in 0..5 {
        c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let n = c.read(&mut buf).await.unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn golden_signals_count_requests_errors_and_latency_per_version() {
    let (a, b) = (backend("a").await, backend("b").await);
    let r = router(table(false, &[("v1", 100, &[a]), ("v2", 0, &[b])])).await;
    let cl = client();
    for i in 0..40 {
        let path = if i % 4 == 0 { "/fail" } else { "/" };
        send(&cl, get(r.addr, path).body(full("")).unwrap()).await;
    }
    for _ in 0..5 {
        send(&cl, get(r.addr, "/").header("x-pave-version", "v2").body(full("")).unwrap()).await;
    }
    let since = std::time::SystemTime::now() - Duration::from_secs(120);
    let s = r.route.signals.summary(since);
    assert_eq!(s.len(), 2);
    assert_eq!((s[0].version.as_str(), s[0].requests, s[0].errors), ("v1", 40, 10));
    assert_eq!((s[1].version.as_str(), s[1].requests, s[1].errors), ("v2", 5, 0));
    let p50 = s[0].p50_ms.unwrap();
    assert!(p50 > 0.0 && p50 < 100.0, "{p50}");
    assert!(s[0].p99_ms.unwrap() >= p50);
}

#[tokio::test]
async fn backend_connections_are_kept_alive_and_reused() {
    let (a, accepted) = counting_backend("a").await;
    let r = router(table(false, &[("v1", 100, &[a])])).await;
    let cl = client();
    for _ in 0..100 {
        let (s, _, body) = send(&cl, get(r.addr, "/").body(full("")).unwrap()).await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "a"));
    }
    // Sequential requests: one connection, or two when the first was not yet idle again.
    let n = accepted.load(Ordering::Relaxed);
    assert!((1..=3).contains(&n), "100 sequential requests opened {n} backend connections");
}

// ---- The lean HTTP/1.1 path, on the wire ----

/// A backend that answers each request with `respond(head, body)`: the raw bytes to send and
/// whether to close the connection afterwards. Counts the connections it accepted.
async fn scripted_backend(respond: fn(&str, &[u8]) -> (Vec<u8>, bool)) -> (SocketAddr, Arc<AtomicU64>) {
    accepting(move |mut s| async move {
        let mut buf = Vec::new();
        loop {
            let Some(end) = read_until_head(&mut s, &mut buf).await else { return };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = header_of(&head, "content-length").map_or(0, |v| v.parse().unwrap());
            while buf.len() < end + len {
                let mut chunk = [0u8; 8192];
                let n = s.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let (answer, close) = respond(&head, &buf[end..end + len]);
            buf.drain(..end + len);
            if s.write_all(&answer).await.is_err() || close {
                return;
            }
        }
    })
    .await
}

/// Reads until `buf` holds a whole head; returns its length (None at EOF).
async fn read_until_head(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(i + 4);
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header_of(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
}

/// Reads one response from the router: status, head, decoded body. `bodyless` for HEAD.
async fn read_response(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>, bodyless: bool) -> (u16, String, Vec<u8>) {
    let end =
        tokio::time::timeout(Duration::from_secs(10), read_until_head(s, buf)).await.unwrap().expect("a response head");
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let status: u16 = head[9..12].parse().unwrap();
    let mut fill = async |buf: &mut Vec<u8>, want: usize| {
        while buf.len() < want {
            let mut chunk = [0u8; 65536];
            let n = s.read(&mut chunk).await.unwrap();
            if n == 0 {
                return false;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        true
    };
    let body = if bodyless || status == 204 || status == 304 {
        Vec::new()
    } else if let Some(len) = header_of(&head, "content-length") {
        let len: usize = len.parse().unwrap();
        assert!(fill(buf, len).await, "cut short");
        buf.drain(..len).collect()
    } else if header_of(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        loop {
            while !buf.windows(2).any(|w| w == b"\r\n") {
                assert!(fill(buf, buf.len() + 1).await, "cut short");
            }
            let line_end = buf.windows(2).position(|w| w == b"\r\n").unwrap();
            let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap();
            buf.drain(..line_end + 2);
            if size == 0 {
                // No trailers (an empty line), or trailer lines up to the empty line.
                assert!(fill(buf, 2).await, "cut short");
                let end = if buf.starts_with(b"\r\n") { 2 } else { read_until_head(s, buf).await.unwrap() };
                buf.drain(..end);
                return (status, head, body);
            }
            assert!(fill(buf, size + 2).await, "cut short");
            body.extend(buf.drain(..size));
            buf.drain(..2);
        }
    } else {
        // Until the router closes.
        while fill(buf, buf.len() + 1).await {}
        std::mem::take(buf)
    };
    (status, head, body)
}

async fn connect(at: SocketAddr) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(at).await.unwrap()
}

#[tokio::test]
async fn pipelined_requests_on_one_connection_are_answered_in_order() {
    let a = backend("a").await;
    let r = router(table(false, &[("v1", 100, &[a])])).await;
    let mut c = connect(r.addr).await;
    c.write_all(
        b"GET /x HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /y HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let (status, head, body) = read_response(&mut c, &mut buf, false).await;
        assert_eq!(status, 200);
        assert_eq!(header_of(&head, "x-pave-version").as_deref(), Some("v1"), "{head}");
        bodies.push(String::from_utf8(body).unwrap());
    }
    assert_eq!(bodies, ["a", "hello", "a"]);
}

fn framings(head: &str, body: &[u8]) -> (Vec<u8>, bool) {
    let path = head.split(' ').nth(1).unwrap();
    let answer: &[u8] = match path {
        "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
        "/head" => b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
        "/empty" => b"HTTP/1.1 204 No Content\r\n\r\n",
        "/hint" => b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "/length" => return ([&b"HTTP/1.1 200 OK\r\nContent-Length: "[..], body.len().to_string().as_bytes(), b"\r\n\r\n", body].concat(), false),
        "/close" => return (b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec(), true),
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    };
    (answer.to_vec(), false)
}

#[tokio::test]
async fn every_response_framing_passes_through_and_keeps_both_connections_usable() {
    let (a, accepted) = scripted_backend(framings).await;
    let r = router(table(false, &[("v1", 100, &[a])])).await;
    let mut c = connect(r.addr).await;
    let mut buf = Vec::new();
    let ask = async |c: &mut tokio::net::TcpStream, buf: &mut Vec<u8>, req: &str, head_request: bool| {
        c.write_all(req.as_bytes()).await.unwrap();
        read_response(c, buf, head_request).await
    };
    let (s, head, body) = ask(&mut c, &mut buf, "GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n", false).await;
    assert_eq!((s, body.as_slice()), (200, &b"hello world"[..]), "{head}");
    let (s, head, body) = ask(&mut c, &mut buf, "HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n", true).await;
    assert_eq!((s, header_of(&head, "content-length").as_deref(), body.len()), (200, Some("100"), 0));
    let (s, _, _) = ask(&mut c, &mut buf, "GET /empty HTTP/1.1\r\nHost: a\r\n\r\n", false).await;
    assert_eq!(s, 204);
    c.write_all(b"GET /hint HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let (s, head, _) = read_response(&mut c, &mut buf, true).await;
    assert_eq!((s, header_of(&head, "link").as_deref()), (103, Some("</s.css>")), "interim answers are passed on");
    let (s, _, body) = read_response(&mut c, &mut buf, false).await;
    assert_eq!((s, body.as_slice()), (200, &b"ok"[..]));
    // A big length-delimited body, sent in pieces, comes back whole.
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    c.write_all(format!("POST /length HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n", payload.len()).as_bytes())
        .await
        .unwrap();
    for piece in payload.chunks(100_000) {
        c.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (s, _, body) = read_response(&mut c, &mut buf, false).await;
    assert_eq!((s, body.len()), (200, payload.len()));
    assert!(body == payload, "the body came back changed");
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        1,
        "the framing was followed exactly, so one backend connection served all"
    );
    // A body that ends when the backend closes: the client is told and the connection closes.
    let (s, head, body) = ask(&mut c, &mut buf, "GET /close HTTP/1.1\r\nHost: a\r\n\r\n", false).await;
    assert_eq!((s, body.as_slice()), (200, &b"until the end"[..]));
    assert_eq!(header_of(&head, "connection").as_deref(), Some("close"));
}

#[tokio::test]
async fn a_backend_that_closes_kept_connections_costs_no_idempotent_request() {
    // Answers, then closes without saying so: every kept connection is dead by its next use.
    let (a, accepted) =
        scripted_backend(|_, _| (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(), true)).await;
    let r = router(table(false, &[("v1", 100, &[a])])).await;
    let mut c = connect(r.addr).await;
    let mut buf = Vec::new();
    for i in 0..50 {
        c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        let (s, _, body) = read_response(&mut c, &mut buf, false).await;
        assert_eq!((s, body.as_slice()), (200, &b"ok"[..]), "request {i}");
    }
    assert!(accepted.load(Ordering::Relaxed) >= 50);
}

#[tokio::test]
async fn bad_request_heads_get_a_clear_error_and_other_forms_still_work() {
    let a = backend("a").await;
    let r = router(table(false, &[("v1", 100, &[a])])).await;
    for (req, status, why) in [
        ("GARBAGE\r\n\r\n", 400, "malformed request head"),
        ("POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400, "invalid Content-Length"),
    ] {
        let mut c = connect(r.addr).await;
        c.write_all(req.as_bytes()).await.unwrap();
        let (s, head, body) = read_response(&mut c, &mut Vec::new(), false).await;
        assert_eq!(s, status, "{req}");
        assert_eq!(header_of(&head, "connection").as_deref(), Some("close"));
        assert!(String::from_utf8_lossy(&body).contains(why), "{req}");
    }
    // HTTP/1.0 and a chunked request go the hyper path, on the same connection as lean ones.
    let mut c = connect(r.addr).await;
    let mut buf = Vec::new();
    c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut c, &mut buf, false).await.2, b"a");
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut c, &mut buf, false).await.2, b"abc");
    let mut c = connect(r.addr).await;
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let (s, _, body) = read_response(&mut c, &mut Vec::new(), false).await;
    assert_eq!((s, body.as_slice()), (200, &b"a"[..]));
}
