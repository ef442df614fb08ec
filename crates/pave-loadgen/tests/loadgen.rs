//! Runs the built generator against a tiny HTTP/1.1 server on an ephemeral loopback port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How the test server answers every request.
#[derive(Clone, Copy)]
enum Answer {
    Status(&'static str),
    Never,
}

/// A thread-per-connection keep-alive server; counts the request body bytes it reads.
struct TinyServer {
    port: u16,
    body_bytes: Arc<AtomicU64>,
}

impl TinyServer {
    fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
        let port = listener.local_addr().expect("bound address").port();
        let body_bytes = Arc::new(AtomicU64::new(0));
        let counter = body_bytes.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counter = counter.clone();
                std::thread::spawn(move || serve(stream, answer, &counter));
            }
        });
        Self { port, body_bytes }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/x", self.port)
    }
}

fn serve(stream: std::net::TcpStream, answer: Answer, body_bytes: &AtomicU64) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut out = stream;
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("numeric content-length");
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        body_bytes.fetch_add(length as u64, Ordering::Relaxed);
        match answer {
            Answer::Status(status) => {
                let response = format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\n\r\nok");
                if out.write_all(response.as_bytes()).is_err() {
                    return;
                }
            }
            Answer::Never => {}
        }
    }
}

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pave-loadgen")).args(args).output().expect("run pave-loadgen")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

#[test]
fn open_loop_sends_rate_times_duration() {
    let server = TinyServer::start(Answer::Status("200 OK"));
    let out = loadgen(&["--url", &server.url(), "--rate", "500", "--duration", "1.5", "--warmup", "0.5", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    let n = v["requests"].as_u64().expect("requests");
    assert!((475..=525).contains(&n), "500 req/s for 1 s measured: {v}");
    assert_eq!(v["responses"]["2xx"].as_u64(), Some(n), "{v}");
    assert_eq!(v["failed"], 0);
    assert_eq!(v["transport_errors"], 0);
    assert_eq!(v["bytes"].as_u64(), Some(2 * n));
    assert_eq!(v["mode"], "open");
    let rate = v["rate"].as_f64().expect("rate");
    assert!((450.0..=550.0).contains(&rate), "{v}");
    let lat = &v["latency_ms"];
    for q in ["p50", "p90", "p99", "p999", "max"] {
        assert!(lat[q].as_f64().expect(q) > 0.0, "{q}: {v}");
    }
    assert!(lat["p50"].as_f64() <= lat["max"].as_f64());
}

#[test]
fn closed_loop_sends_bodies_back_to_back() {
    let server = TinyServer::start(Answer::Status("200 OK"));
    let dir = std::env::temp_dir().join(format!("pave-loadgen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let body = dir.join("body.json");
    std::fs::write(&body, br#"{"name":"svc"}"#).expect("write body");
    let out = loadgen(&[
        "--url",
        &server.url(),
        "--method",
        "POST",
        "--header",
        "Content-Type: application/json",
        "--body-file",
        body.to_str().expect("utf-8 temp path"),
        "--duration",
        "0.5",
        "--connections",
        "2",
        "--json",
    ]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    let n = v["requests"].as_u64().expect("requests");
    assert_eq!(v["mode"], "closed");
    assert!(n > 100, "{v}");
    assert_eq!(v["responses"]["2xx"].as_u64(), Some(n), "{v}");
    assert_eq!(server.body_bytes.load(Ordering::Relaxed), 14 * n);
}

#[test]
fn fail_on_error_exits_1_and_counts_failures() {
    let server = TinyServer::start(Answer::Status("503 Service Unavailable"));
    let out = loadgen(&["--url", &server.url(), "--rate", "100", "--duration", "0.5", "--fail-on-error"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("failed: 50\n"), "{text}");
    assert!(text.contains("5xx 50"), "{text}");
}

#[test]
fn a_hung_server_cannot_stretch_the_run() {
    let server = TinyServer::start(Answer::Never);
    let started = Instant::now();
    let out = loadgen(&["--url", &server.url(), "--rate", "50", "--duration", "1", "--timeout", "200", "--json"]);
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
    assert!(out.status.success(), "without --fail-on-error the run itself succeeds");
    let v = json(&out);
    assert_eq!(v["requests"], 50);
    assert_eq!(v["timeouts"], 50, "{v}");
    assert_eq!(v["failed"], 50, "{v}");
}

#[test]
fn refuses_non_loopback_targets() {
    for (url, host) in [
        ("http://10.1.2.3:80/", "10.1.2.3"),
        ("http://example.com/", "example.com"),
        ("http://[2001:db8::1]:8080/", "[2001:db8::1]"),
    ] {
        let out = loadgen(&["--url", url, "--duration", "1"]);
        assert_eq!(out.status.code(), Some(2), "{url}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("refusing to send load to {host}")), "{url}: {err}");
        assert!(out.stdout.is_empty(), "{url}");
    }
}
