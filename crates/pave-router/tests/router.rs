//! The router against real backends on loopback: weights, header pins, sticky cookies,
//! forwarded headers, streaming, upgrades, draining, retries and signals.

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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| answer(name, req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
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
