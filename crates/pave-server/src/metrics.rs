//! The server's own metrics in Prometheus' text format: requests and latency by route, and
//! the database pool. These describe this process, so they are the one piece of in-memory
//! state a replica keeps (each replica is scraped on its own).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::AppState;
use crate::request_id::RequestId;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct RouteSeries {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

pub struct Metrics {
    started: Instant,
    /// Route → method → series: looked up by `&str`, so recording allocates nothing once a
    /// series exists.
    routes: Mutex<HashMap<String, HashMap<String, RouteSeries>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self { started: Instant::now(), routes: Mutex::default() }
    }
}

impl Metrics {
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut routes = pave_sync::lock(&self.routes);
        if !routes.get(route).is_some_and(|m| m.contains_key(method)) {
            routes.entry(route.to_owned()).or_default().entry(method.to_owned()).or_default();
        }
        let series = routes.get_mut(route).and_then(|m| m.get_mut(method)).expect("inserted above");
        *series.by_status.entry(status).or_default() += 1;
        series.count += 1;
        series.sum += secs;
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            series.buckets[i] += 1;
        }
    }

    /// Renders the exposition text.
    pub fn render(&self, pool: pave_store::PoolStats, backend: &str) -> String {
        let mut out = String::with_capacity(4096);
        let routes = pave_sync::lock(&self.routes);
        // (method, route) in the order the exposition has always listed them.
        let mut keys: Vec<(&str, &str)> = routes
            .iter()
            .flat_map(|(route, m)| m.keys().map(move |method| (method.as_str(), route.as_str())))
            .collect();
        keys.sort();
        let series = |(method, route): (&str, &str)| &routes[route][method];
        out.push_str("# HELP pave_http_requests_total HTTP requests answered, by method, route and status.\n");
        out.push_str("# TYPE pave_http_requests_total counter\n");
        for &(method, route) in &keys {
            for (status, n) in &series((method, route)).by_status {
                let _ = writeln!(
                    out,
                    "pave_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP pave_http_request_duration_seconds Time to answer HTTP requests, by method and route.\n");
        out.push_str("# TYPE pave_http_request_duration_seconds histogram\n");
        for &(method, route) in &keys {
            let s = series((method, route));
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "pave_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "pave_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{route}\",le=\"+Inf\"}} {}\n\
                 pave_http_request_duration_seconds_sum{{method=\"{method}\",route=\"{route}\"}} {}\n\
                 pave_http_request_duration_seconds_count{{method=\"{method}\",route=\"{route}\"}} {}",
                s.count, s.sum, s.count
            );
        }
        drop(routes);
        let _ = write!(
            out,
            "# HELP pave_db_pool_connections Database connections by state.\n\
             # TYPE pave_db_pool_connections gauge\n\
             pave_db_pool_connections{{backend=\"{backend}\",state=\"idle\"}} {}\n\
             pave_db_pool_connections{{backend=\"{backend}\",state=\"in_use\"}} {}\n\
             # HELP pave_db_pool_max_connections Upper bound of the database pool.\n\
             # TYPE pave_db_pool_max_connections gauge\n\
             pave_db_pool_max_connections{{backend=\"{backend}\"}} {}\n\
             # HELP pave_uptime_seconds Seconds since this process started serving.\n\
             # TYPE pave_uptime_seconds gauge\n\
             pave_uptime_seconds {:.3}\n\
             # HELP pave_build_info The running version.\n\
             # TYPE pave_build_info gauge\n\
             pave_build_info{{version=\"{}\"}} 1\n",
            pool.idle,
            pool.size.saturating_sub(pool.idle),
            pool.max,
            self.started.elapsed().as_secs_f64(),
            env!("CARGO_PKG_VERSION"),
        );
        out
    }
}

/// Wraps each request in a span carrying its id and route, logs its outcome, and counts it.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    // MatchedPath is a shared string: cloning it allocates nothing.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let id = req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let resp = next.run(req).instrument(span.clone()).await;
    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    state.metrics.record(method.as_str(), route, status, elapsed);
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, elapsed_ms = elapsed.as_secs_f64() * 1e3, "answered");
        } else {
            tracing::debug!(status, elapsed_ms = elapsed.as_secs_f64() * 1e3, "answered");
        }
    });
    resp
}
