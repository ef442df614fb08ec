//! The router alone in front of fixed upstreams, for `bench/router.sh` (which compares it with
//! nginx on the same upstream and load). Usage: `proxy LISTEN_ADDR UPSTREAM_ADDR...`.
//! `PAVE_ROUTER_THREADS` sets the worker threads (default: one per core, as in `pave serve`).

use std::net::SocketAddr;

use pave_router::{Route, RouteTable, RouterConfig, VersionRoute, Workers};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |s: &String| s.parse::<SocketAddr>().unwrap_or_else(|e| panic!("{s:?} is not an address: {e}"));
    let (listen_addr, upstreams) = match args.split_first() {
        Some((l, u)) if !u.is_empty() => (parse(l), u.iter().map(parse).collect::<Vec<_>>()),
        _ => {
            eprintln!("usage: proxy LISTEN_ADDR UPSTREAM_ADDR...");
            std::process::exit(2);
        }
    };
    let threads: usize = std::env::var("PAVE_ROUTER_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let workers = Workers::start(threads).expect("router workers");
    let route = Route::new("bench", "bench", RouterConfig::default());
    route
        .set(RouteTable {
            versions: vec![VersionRoute { version: "1".into(), weight: 100, backends: upstreams }],
            sticky: false,
        })
        .expect("valid table");
    let listener = std::net::TcpListener::bind(listen_addr).expect("bind");
    let running = workers.listen(route, listener).expect("listen");
    println!("proxy listening on {} with {} workers", running.addr, workers.threads());
    let (tx, rx) = std::sync::mpsc::channel();
    ctrlc_like(tx);
    let _ = rx.recv();
}

/// Waits for SIGINT or SIGTERM on a small runtime of its own.
fn ctrlc_like(tx: std::sync::mpsc::Sender<()>) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        let _ = tx.send(());
    });
}
