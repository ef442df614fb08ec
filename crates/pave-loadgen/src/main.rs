//! `pave-loadgen`: a small HTTP/1.1 load generator for Pave's benchmarks under `bench/`.
//!
//! It only targets loopback addresses. Two modes:
//! - open loop (`--rate R`): requests are scheduled at a constant rate, spread over the
//!   connections, and each latency is measured from the request's *intended* start, so a
//!   stalled server is charged for the requests it delayed (no coordinated omission);
//! - closed loop (no `--rate`): each connection sends back to back, for peak throughput.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{HeaderName, HeaderValue};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "pave-loadgen", about = "Loopback-only HTTP/1.1 load generator (open or closed loop).")]
struct Args {
    /// Target URL (http only, loopback hosts only).
    #[arg(long)]
    url: String,
    #[arg(long, default_value = "GET")]
    method: String,
    /// Extra header, `Name: value`. Repeatable.
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// File whose contents are sent as the body.
    #[arg(long)]
    body_file: Option<std::path::PathBuf>,
    /// Requests per second (open loop); without it, closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds to run (at most 300).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds at the start excluded from the statistics.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Per-request timeout in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout: u64,
    /// Worker threads of the generator itself.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Exit with status 1 if any request failed (non-2xx/3xx or transport error).
    #[arg(long)]
    fail_on_error: bool,
}

struct Target {
    addr: SocketAddr,
    authority: String,
    path: String,
    method: hyper::Method,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

/// Resolves the URL and refuses anything that is not loopback.
fn target(args: &Args) -> Result<Target> {
    let rest = args.url.strip_prefix("http://").context("only http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h).trim_matches(['[', ']']);
    let with_port = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let is_loopback_name = host == "localhost";
    let addr = with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {authority}"))?
        .next()
        .context("no address")?;
    let loopback = match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback(),
    };
    if !(loopback || is_loopback_name && addr.ip().is_loopback()) {
        bail!("refusing to send load to {host}: only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed");
    }
    let mut headers = Vec::new();
    for h in &args.headers {
        let (k, v) = h.split_once(':').with_context(|| format!("header {h:?} is not `Name: value`"))?;
        headers.push((HeaderName::from_bytes(k.trim().as_bytes())?, HeaderValue::from_str(v.trim())?));
    }
    let body = match &args.body_file {
        Some(p) => Bytes::from(std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?),
        None => Bytes::new(),
    };
    Ok(Target {
        addr,
        authority: authority.to_owned(),
        path: path.to_owned(),
        method: hyper::Method::from_bytes(args.method.as_bytes())?,
        headers,
        body,
    })
}

#[derive(Clone)]
struct Tally {
    latency: Histogram<u64>,
    status: [u64; 6],
    errors: u64,
    bytes: u64,
    sent: u64,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            status: [0; 6],
            errors: 0,
            bytes: 0,
            sent: 0,
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.latency.add(&other.latency).expect("same bounds");
        for (a, b) in self.status.iter_mut().zip(other.status) {
            *a += b;
        }
        self.errors += other.errors;
        self.bytes += other.bytes;
        self.sent += other.sent;
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(t: &Target) -> Result<Sender> {
    let stream = tokio::net::TcpStream::connect(t.addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn one(sender: &mut Sender, t: &Target) -> Result<(u16, u64)> {
    let mut req = Request::builder().method(t.method.clone()).uri(&t.path).header(hyper::header::HOST, &t.authority);
    for (k, v) in &t.headers {
        req = req.header(k, v);
    }
    let req = req.body(Full::new(t.body.clone()))?;
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body.len() as u64))
}

/// When and how a run sends its requests.
#[derive(Clone, Copy)]
struct Schedule {
    end: Instant,
    measure_from: Instant,
    timeout: Duration,
}

/// Paces an open-loop run from a plain thread: tokio's timer has millisecond granularity,
/// which would be charged to the server as latency; `thread::sleep` wakes within tens of
/// microseconds. Request `i` is due at `start + i / rate` and goes to connection
/// `i % conns`; a connection still busy with its previous request queues it, and that wait
/// counts as latency, as it would for a real client.
fn pace(rate: f64, start: Instant, end: Instant, slots: Vec<tokio::sync::mpsc::UnboundedSender<Instant>>) {
    let mut i: u64 = 0;
    loop {
        let at = start + Duration::from_secs_f64(i as f64 / rate);
        if at >= end {
            break;
        }
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        if slots[(i % slots.len() as u64) as usize].send(at).is_err() {
            break;
        }
        i += 1;
    }
}

/// One connection's loop: sends each request the pacer hands it (open loop), or back to
/// back until the end (closed loop, `slots` is `None`).
async fn worker(
    t: std::sync::Arc<Target>,
    mut slots: Option<tokio::sync::mpsc::UnboundedReceiver<Instant>>,
    sched: Schedule,
) -> Tally {
    let Schedule { end, measure_from, timeout } = sched;
    let open_loop = slots.is_some();
    let mut tally = Tally::new();
    let mut sender: Option<Sender> = None;
    loop {
        let intended = match &mut slots {
            Some(rx) => match rx.recv().await {
                Some(at) => at,
                None => break,
            },
            None => {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                now
            }
        };
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            sender = match tokio::time::timeout(timeout, connect(&t)).await {
                Ok(Ok(s)) => Some(s),
                _ => {
                    tally.errors += 1;
                    tally.sent += 1;
                    if !open_loop {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    continue;
                }
            };
        }
        let s = sender.as_mut().expect("connected above");
        let result = tokio::time::timeout(timeout, one(s, &t)).await;
        let done = Instant::now();
        let counted = intended >= measure_from;
        if counted {
            tally.sent += 1;
        }
        match result {
            Ok(Ok((status, bytes))) => {
                if counted {
                    tally.status[(status / 100).min(5) as usize] += 1;
                    tally.bytes += bytes;
                    let micros = done.duration_since(intended).as_micros().max(1) as u64;
                    let _ = tally.latency.record(micros.min(60_000_000));
                }
            }
            _ => {
                sender = None;
                if counted {
                    tally.errors += 1;
                }
            }
        }
    }
    tally
}

fn main() -> Result<std::process::ExitCode> {
    let args = Args::parse();
    if !(args.duration > 0.0 && args.duration <= 300.0) {
        bail!("--duration must be in (0, 300] seconds");
    }
    if args.rate.is_some_and(|r| r <= 0.0) {
        bail!("--rate must be positive");
    }
    let t = std::sync::Arc::new(target(&args)?);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads.max(1)).enable_all().build()?;
    let conns = args.connections.max(1);
    let tally = rt.block_on(async {
        let start = Instant::now() + Duration::from_millis(20);
        let sched = Schedule {
            end: start + Duration::from_secs_f64(args.duration),
            measure_from: start + Duration::from_secs_f64(args.warmup.min(args.duration)),
            timeout: Duration::from_millis(args.timeout),
        };
        let mut tasks = Vec::new();
        let mut senders = Vec::new();
        for _ in 0..conns {
            let slots = args.rate.map(|_| {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                senders.push(tx);
                rx
            });
            tasks.push(tokio::spawn(worker(t.clone(), slots, sched)));
        }
        let pacer = args.rate.map(|rate| std::thread::spawn(move || pace(rate, start, sched.end, senders)));
        let mut total = Tally::new();
        for task in tasks {
            total.merge(&task.await.expect("worker does not panic"));
        }
        if let Some(p) = pacer {
            p.join().expect("pacer does not panic");
        }
        total
    });
    let measured = (args.duration - args.warmup).max(1e-9);
    let failed = tally.errors + tally.status[4] + tally.status[5] + tally.status[0] + tally.status[1];
    let ms = |q: f64| tally.latency.value_at_quantile(q) as f64 / 1000.0;
    let report = json!({
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "target_rate": args.rate,
        "duration_s": measured,
        "requests": tally.sent,
        "responses": {"2xx": tally.status[2], "3xx": tally.status[3], "4xx": tally.status[4], "5xx": tally.status[5]},
        "transport_errors": tally.errors,
        "failed": failed,
        "rate": tally.sent as f64 / measured,
        "bytes": tally.bytes,
        "latency_ms": {
            "p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "p999": ms(0.999),
            "max": tally.latency.max() as f64 / 1000.0, "mean": tally.latency.mean() / 1000.0,
        },
    });
    if args.json {
        println!("{report}");
    } else {
        let l = &report["latency_ms"];
        println!(
            "{} requests in {:.1} s ({:.0} req/s, {} mode)\nresponses: 2xx {} 3xx {} 4xx {} 5xx {}; transport errors {}\nfailed: {}\nlatency ms: p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}",
            tally.sent,
            measured,
            report["rate"].as_f64().unwrap_or(0.0),
            report["mode"].as_str().unwrap_or(""),
            tally.status[2],
            tally.status[3],
            tally.status[4],
            tally.status[5],
            tally.errors,
            failed,
            l["p50"].as_f64().unwrap_or(0.0),
            l["p90"].as_f64().unwrap_or(0.0),
            l["p99"].as_f64().unwrap_or(0.0),
            l["p999"].as_f64().unwrap_or(0.0),
            l["max"].as_f64().unwrap_or(0.0),
        );
    }
    Ok(if args.fail_on_error && failed > 0 { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS })
}
