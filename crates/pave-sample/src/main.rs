//! `pave-sample`: a tiny HTTP service for Pave's tests, benchmarks and demo. It says which
//! version it is, and can be told — through its environment — to misbehave the ways a bad
//! release does, so rollouts and their analysis have something real to judge:
//!
//! | variable | effect |
//! | --- | --- |
//! | `PORT` | port to listen on (127.0.0.1), required |
//! | `PAVE_SAMPLE_VERSION` | the version it reports (default `dev`) |
//! | `SAMPLE_FAIL_RATE` | share of requests answered 500, 0.0–1.0, spread evenly (exactly that share) |
//! | `SAMPLE_LATENCY_MS` | added to every answer |
//! | `SAMPLE_CRASH_AFTER` | exit with status 1 after this many requests |
//! | `SAMPLE_UNHEALTHY` | `1`: `/healthz` answers 503 |
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

fn env<T: std::str::FromStr>(name: &str) -> Result<Option<T>, String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v.parse().map(Some).map_err(|_| format!("{name}={v:?} is not valid")),
        _ => Ok(None),
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let setup = || -> Result<(u16, Behaviour), String> {
        let port = env::<u16>("PORT")?.ok_or("PORT is required")?;
        let fail_rate = env::<f64>("SAMPLE_FAIL_RATE")?.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&fail_rate) {
            return Err(format!("SAMPLE_FAIL_RATE={fail_rate} is outside 0.0-1.0"));
        }
        Ok((
            port,
            Behaviour {
                version: std::env::var("PAVE_SAMPLE_VERSION").unwrap_or_else(|_| "dev".into()),
                fail_rate,
                latency: Duration::from_millis(env::<u64>("SAMPLE_LATENCY_MS")?.unwrap_or(0)),
                crash_after: env::<u64>("SAMPLE_CRASH_AFTER")?,
                unhealthy: env::<String>("SAMPLE_UNHEALTHY")?.is_some_and(|v| v == "1"),
            },
        ))
    };
    let (port, behaviour) = match setup() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pave-sample: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pave-sample: cannot listen on 127.0.0.1:{port}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    eprintln!("pave-sample {} listening on 127.0.0.1:{port}", behaviour.version);
    let state = Arc::new(State { behaviour, requests: AtomicU64::new(0), errors: AtomicU64::new(0) });
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(_) => continue,
            },
            _ = tokio::signal::ctrl_c() => return std::process::ExitCode::SUCCESS,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}
