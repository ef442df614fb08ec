//! `pave-sample`: a tiny HTTP service for Pave's tests, benchmarks and demo. It says which
//! version it is, and can be told — through its environment — to misbehave the ways a bad
//! release does, so rollouts and their analysis have something real to judge:
//!
//! | variable | effect |
//! | --- | --- |
//! | `PORT` | port to listen on (127.0.0.1), required |
//! | `PAVE_SAMPLE_VERSION` | the version it reports (default: `PAVE_VERSION`, set by Pave's runtime, else `dev`) |
//! | `SAMPLE_FAIL_RATE` | share of requests answered 500, 0.0–1.0, spread evenly (exactly that share) |
//! | `SAMPLE_LATENCY_MS` | added to every answer |
//! | `SAMPLE_CRASH_AFTER` | exit with status 1 after this many requests |
//! | `SAMPLE_UNHEALTHY` | `1`: `/healthz` answers 503 |
//! | `SAMPLE_STARTUP_MS` | wait this long before listening (a slow start) |
//!
//! The same `SAMPLE_*` settings may also come from a `sample.env` file (`KEY=VALUE` lines) in
//! the working directory, or the file `SAMPLE_CONFIG` names: that is how a release's artifact
//! carries its own behaviour (a "bad v4" is an artifact whose `sample.env` says
//! `SAMPLE_FAIL_RATE=0.2`). The environment wins over the file.
//!
//! SIGTERM or SIGINT stops it gracefully: it stops accepting, lets requests in flight finish
//! (up to 10 s), then exits 0 — the behaviour Pave's runtime expects of a well-made service.
//!
//! Routes: `GET /healthz`, `GET /metrics` (Prometheus text: requests and errors), anything
//! else answers `{"version", "path", "request"}`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};

struct Behaviour {
    version: String,
    fail_rate: f64,
    latency: Duration,
    crash_after: Option<u64>,
    unhealthy: bool,
}

struct State {
    behaviour: Behaviour,
    requests: AtomicU64,
    errors: AtomicU64,
}

impl State {
    /// Whether request number `n` (from 1) fails: exactly `fail_rate` of requests do, evenly
    /// spaced, so short test runs see the intended share.
    fn fails(&self, n: u64) -> bool {
        let r = self.behaviour.fail_rate;
        r > 0.0 && ((n as f64) * r).floor() > (((n - 1) as f64) * r).floor()
    }
}

/// Settings from the environment, then from the artifact's config file.
struct Settings {
    file: std::collections::HashMap<String, String>,
}

impl Settings {
    fn load() -> Result<Settings, String> {
        let path = std::env::var("SAMPLE_CONFIG").ok().filter(|p| !p.is_empty());
        let text = match &path {
            Some(p) => Some(std::fs::read_to_string(p).map_err(|e| format!("SAMPLE_CONFIG={p}: {e}"))?),
            None => std::fs::read_to_string("sample.env").ok(),
        };
        let mut file = std::collections::HashMap::new();
        for (n, line) in text.as_deref().unwrap_or("").lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) =
                line.split_once('=').ok_or_else(|| format!("sample.env line {}: expected KEY=VALUE", n + 1))?;
            file.insert(k.trim().to_owned(), v.trim().to_owned());
        }
        Ok(Settings { file })
    }

    fn raw(&self, name: &str) -> Option<String> {
        match std::env::var(name) {
            Ok(v) if !v.is_empty() => Some(v),
            _ => self.file.get(name).filter(|v| !v.is_empty()).cloned(),
        }
    }

    fn get<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        match self.raw(name) {
            Some(v) => v.parse().map(Some).map_err(|_| format!("{name}={v:?} is not valid")),
            None => Ok(None),
        }
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static(content_type));
    r
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let b = &state.behaviour;
    match path.as_str() {
        "/healthz" => {
            let status = if b.unhealthy { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
            return Ok(text(status, if b.unhealthy { "unhealthy\n" } else { "ok\n" }, "text/plain"));
        }
        "/metrics" => {
            let body = format!(
                "# TYPE sample_requests_total counter\nsample_requests_total{{version=\"{v}\"}} {}\n\
                 # TYPE sample_errors_total counter\nsample_errors_total{{version=\"{v}\"}} {}\n",
                state.requests.load(Ordering::Relaxed),
                state.errors.load(Ordering::Relaxed),
                v = b.version
            );
            return Ok(text(StatusCode::OK, body, "text/plain; version=0.0.4"));
        }
        _ => {}
    }
    let n = state.requests.fetch_add(1, Ordering::Relaxed) + 1;
    if !b.latency.is_zero() {
        tokio::time::sleep(b.latency).await;
    }
    if b.crash_after.is_some_and(|limit| n > limit) {
        eprintln!("pave-sample {}: crashing after {} requests, as told", b.version, n - 1);
        std::process::exit(1);
    }
    let failing = state.fails(n);
    if failing {
        state.errors.fetch_add(1, Ordering::Relaxed);
    }
    let status = if failing { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
    let body = format!("{{\"version\":\"{}\",\"path\":{:?},\"request\":{n}}}\n", b.version, path);
    Ok(text(status, body, "application/json"))
}

/// Runs the sample service until SIGTERM/SIGINT; the exit code says how it went.
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(run())
}

/// [`main`] for callers that need the code as a number: 0 after a clean stop, 2 when the
/// settings are wrong or the port cannot be bound.
pub fn run() -> u8 {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(serve()),
        Err(e) => {
            eprintln!("pave-sample: cannot start the async runtime: {e}");
            2
        }
    }
}

async fn serve() -> u8 {
    let setup = || -> Result<(u16, Duration, Behaviour), String> {
        let s = Settings::load()?;
        let port = s.get::<u16>("PORT")?.ok_or("PORT is required")?;
        let fail_rate = s.get::<f64>("SAMPLE_FAIL_RATE")?.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&fail_rate) {
            return Err(format!("SAMPLE_FAIL_RATE={fail_rate} is outside 0.0-1.0"));
        }
        let version = s.raw("PAVE_SAMPLE_VERSION").or_else(|| s.raw("PAVE_VERSION")).unwrap_or_else(|| "dev".into());
        Ok((
            port,
            Duration::from_millis(s.get::<u64>("SAMPLE_STARTUP_MS")?.unwrap_or(0)),
            Behaviour {
                version,
                fail_rate,
                latency: Duration::from_millis(s.get::<u64>("SAMPLE_LATENCY_MS")?.unwrap_or(0)),
                crash_after: s.get::<u64>("SAMPLE_CRASH_AFTER")?,
                unhealthy: s.raw("SAMPLE_UNHEALTHY").is_some_and(|v| v == "1"),
            },
        ))
    };
    let (port, startup, behaviour) = match setup() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pave-sample: {e}");
            return 2;
        }
    };
    tokio::time::sleep(startup).await;
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pave-sample: cannot listen on 127.0.0.1:{port}: {e}");
            return 2;
        }
    };
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("pave-sample: cannot watch SIGTERM: {e}");
            return 2;
        }
    };
    eprintln!("pave-sample {} listening on 127.0.0.1:{port}", behaviour.version);
    let state = Arc::new(State { behaviour, requests: AtomicU64::new(0), errors: AtomicU64::new(0) });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(_) => continue,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
        let conn =
            hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    eprintln!("pave-sample {}: stopping, letting requests in flight finish", state.behaviour.version);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await.is_err() {
        eprintln!("pave-sample: requests still in flight after 10 s; exiting anyway");
    }
    0
}
