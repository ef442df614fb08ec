//! The router alone in front of fixed upstreams, for `bench/router.sh` (which compares it with
//! nginx on the same upstream and load). Usage: `proxy LISTEN_ADDR UPSTREAM_ADDR...`.

use std::net::SocketAddr;

use pave_router::{Route, RouteTable, RouterConfig, VersionRoute, listen};

fn main() {
    // PAVE_ROUTER_THREADS: runtime worker threads (default: one per core, as in `pave serve`).
    // PAVE_ROUTER_PER_CORE=1: one single-threaded runtime per thread, each with its own
    // SO_REUSEPORT listener (the nginx model).
    let threads: usize = std::env::var("PAVE_ROUTER_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    if std::env::var("PAVE_ROUTER_PER_CORE").is_ok() {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                std::thread::spawn(|| {
                    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt").block_on(run())
                })
            })
            .collect();
        for h in handles {
            let _ = h.join();
        }
        return;
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.worker_threads(threads);
    rt.enable_all().build().expect("runtime").block_on(run());
}

async fn run() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |s: &String| s.parse::<SocketAddr>().unwrap_or_else(|e| panic!("{s:?} is not an address: {e}"));
    let (listen_addr, upstreams) = match args.split_first() {
        Some((l, u)) if !u.is_empty() => (parse(l), u.iter().map(parse).collect::<Vec<_>>()),
        _ => {
            eprintln!("usage: proxy LISTEN_ADDR UPSTREAM_ADDR...");
            std::process::exit(2);
        }
    };
    let route = Route::new("bench", "bench", RouterConfig::default());
    route
        .set(RouteTable {
            versions: vec![VersionRoute { version: "1".into(), weight: 100, backends: upstreams }],
            sticky: false,
        })
        .expect("valid table");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_reuseport(true).expect("reuseport");
    socket.set_reuseaddr(true).expect("reuseaddr");
    socket.bind(listen_addr).expect("bind");
    let listener = socket.listen(1024).expect("listen");
    let running = listen(route, listener).expect("listen");
    println!("proxy listening on {}", running.addr);
    let _ = tokio::signal::ctrl_c().await;
}
