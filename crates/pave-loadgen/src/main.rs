//! `pave-loadgen`: a small HTTP/1.1 load generator for Pave's benchmarks under `bench/`, that
//! only ever sends to loopback (127.0.0.0/8, ::1, localhost).
//!
//! Two modes, over `--connections` keep-alive connections (one per worker, reopened after an
//! error):
//! - open loop (`--rate R`): request `i` is due at `start + i/R`, handed round-robin to the
//!   connections. Its latency runs from that *intended* time, not from when it was actually
//!   written, so a server that stalls is charged for every request it held up, including the
//!   ones queued behind the stall: this corrects coordinated omission (as wrk2 does);
//! - closed loop (no `--rate`): each connection sends back to back, for peak throughput.
//!
//! Every request must be answered within `--timeout` of its intended time or it counts as a
//! transport error; so a run ends by itself at most that long after `--duration`, even
//! against a hung server. Latency percentiles cover answered requests only; failures are
//! counted apart (`failed`), so read the two together.

mod run;
mod target;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use serde_json::json;

use crate::run::{Plan, Tally};

#[derive(Debug, Parser)]
#[command(
    name = "pave-loadgen",
    about = "Loopback-only HTTP/1.1 load generator, open loop (--rate) or closed loop.",
    after_help = "Exit status: 0 done; 1 --fail-on-error and some request failed; 2 bad arguments or target."
)]
struct Args {
    /// Target URL: http:// only, and the host must be loopback (127.0.0.0/8, [::1], localhost).
    #[arg(long)]
    url: String,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// Extra header, `Name: value`. Repeatable.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// File whose contents are sent as the body of every request.
    #[arg(long, value_name = "PATH")]
    body_file: Option<std::path::PathBuf>,
    /// Requests per second over all connections (open loop); without it, closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds to send for (at most 300), warmup included.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    duration: f64,
    /// Seconds at the start whose requests are left out of the results.
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    warmup: f64,
    /// Keep-alive connections, each driven by its own task.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// Milliseconds a request may take from its intended send time to its last byte.
    #[arg(long, default_value_t = 5000, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=600_000))]
    timeout: u64,
    /// Runtime threads of the generator itself (the open-loop pacer has its own).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: u32,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Exit with status 1 if any request got no 2xx/3xx answer (other status or transport error).
    #[arg(long)]
    fail_on_error: bool,
}

fn plan(args: &Args) -> Result<Plan> {
    if !(args.duration > 0.0 && args.duration <= 300.0) {
        bail!("--duration must be more than 0 and at most 300 seconds");
    }
    if !(args.warmup >= 0.0 && args.warmup < args.duration) {
        bail!("--warmup must be at least 0 and less than --duration");
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number of requests per second");
    }
    Ok(Plan {
        rate: args.rate,
        connections: args.connections as usize,
        duration: Duration::from_secs_f64(args.duration),
        warmup: Duration::from_secs_f64(args.warmup),
        timeout: Duration::from_millis(args.timeout),
    })
}

fn report(args: &Args, plan: &Plan, tally: &Tally) -> serde_json::Value {
    let elapsed = tally.elapsed.as_secs_f64();
    let ms = |micros: u64| micros as f64 / 1000.0;
    let at = |q: f64| ms(tally.latency.value_at_quantile(q));
    json!({
        "mode": if plan.rate.is_some() { "open" } else { "closed" },
        "target_rate": plan.rate,
        "connections": plan.connections,
        "duration_s": (plan.duration - plan.warmup).as_secs_f64(),
        "warmup_s": plan.warmup.as_secs_f64(),
        "elapsed_s": elapsed,
        "requests": tally.requests,
        "responses": {
            "2xx": tally.classes[0],
            "3xx": tally.classes[1],
            "4xx": tally.classes[2],
            "5xx": tally.classes[3],
            "other": tally.other_status,
        },
        "transport_errors": tally.transport_errors(),
        "timeouts": tally.timeouts,
        "failed": tally.failed(),
        "rate": if elapsed > 0.0 { tally.responses() as f64 / elapsed } else { 0.0 },
        "bytes": tally.bytes,
        "latency_ms": {
            "p50": at(0.5),
            "p90": at(0.9),
            "p99": at(0.99),
            "p999": at(0.999),
            "max": ms(tally.latency.max()),
            "mean": tally.latency.mean().round() / 1000.0,
        },
        "url": args.url,
        "method": args.method,
    })
}

fn print_text(r: &serde_json::Value) {
    let n = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    let (resp, lat) = (&r["responses"], &r["latency_ms"]);
    let target = match r["target_rate"].as_f64() {
        Some(rate) => format!("open loop at {rate} req/s"),
        None => "closed loop".to_owned(),
    };
    println!(
        "{} {} ({target}, {} connections, {:.1} s measured)",
        r["method"].as_str().unwrap_or(""),
        r["url"].as_str().unwrap_or(""),
        r["connections"],
        n(&r["duration_s"])
    );
    println!("requests: {}   achieved: {:.1} responses/s", r["requests"], n(&r["rate"]));
    println!(
        "responses: 2xx {}  3xx {}  4xx {}  5xx {}  other {}",
        resp["2xx"], resp["3xx"], resp["4xx"], resp["5xx"], resp["other"]
    );
    println!("transport errors: {} ({} timeouts)", r["transport_errors"], r["timeouts"]);
    println!("failed: {}", r["failed"]);
    println!(
        "latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        n(&lat["p50"]),
        n(&lat["p90"]),
        n(&lat["p99"]),
        n(&lat["p999"]),
        n(&lat["max"])
    );
    println!("received: {} body bytes", r["bytes"]);
}

fn main() -> ExitCode {
    let args = Args::parse();
    let setup = || -> Result<_> {
        let plan = plan(&args)?;
        let body = match &args.body_file {
            Some(p) => {
                Bytes::from(std::fs::read(p).with_context(|| format!("cannot read --body-file {}", p.display()))?)
            }
            None => Bytes::new(),
        };
        let target = target::target(&args.url, &args.method, &args.headers, body)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads as usize)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        Ok((plan, target, runtime))
    };
    let (plan, target, runtime) = match setup() {
        Ok(ready) => ready,
        Err(e) => {
            eprintln!("pave-loadgen: {e:#}");
            return ExitCode::from(2);
        }
    };
    let tally = runtime.block_on(run::run(target, plan));
    let report = report(&args, &plan, &tally);
    if args.json {
        println!("{report}");
    } else {
        print_text(&report);
    }
    if args.fail_on_error && tally.failed() > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
