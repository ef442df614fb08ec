//! The sample service, run as a process: versions, failure share, crash, health.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn start(envs: &[(&str, &str)]) -> (Child, u16) {
    let port = pave_testkit::free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pave-sample"));
    cmd.env("PORT", port.to_string()).envs(envs.iter().copied());
    let child = cmd.spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    // Ready when it answers HTTP, not merely when a connect succeeds: polling connect on a
    // port nothing listens on yet can connect the socket to itself (TCP simultaneous open)
    // and would report a sample that is not there.
    while get(port, "/healthz").is_none() {
        assert!(Instant::now() < deadline, "sample did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    (child, port)
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, out))
}

#[test]
fn reports_its_version_and_fails_exactly_the_share_it_is_told() {
    let (mut child, port) = start(&[("PAVE_SAMPLE_VERSION", "v7"), ("SAMPLE_FAIL_RATE", "0.2")]);
    let statuses: Vec<u16> = (0..50).map(|_| get(port, "/").expect("answer").0).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 500).count(), 10);
    let (st, body) = get(port, "/hello").expect("answer");
    assert!(body.contains("\"version\":\"v7\""), "{st} {body}");
    let (_, metrics) = get(port, "/metrics").expect("metrics");
    assert!(metrics.contains("sample_errors_total{version=\"v7\"} 10"), "{metrics}");
    assert_eq!(get(port, "/healthz").expect("health").0, 200);
    child.kill().ok();
    child.wait().ok();
}

#[test]
fn crashes_and_reports_unhealthy_when_told() {
    let (mut child, port) = start(&[("SAMPLE_CRASH_AFTER", "3"), ("SAMPLE_UNHEALTHY", "1")]);
    assert_eq!(get(port, "/healthz").expect("health").0, 503);
    for _ in 0..3 {
        assert_eq!(get(port, "/").expect("answer").0, 200);
    }
    assert!(get(port, "/").is_none(), "the fourth request finds it gone");
    let status = child.wait().expect("exited");
    assert_eq!(status.code(), Some(1));
}

#[test]
fn refuses_bad_settings() {
    let out = Command::new(env!("CARGO_BIN_EXE_pave-sample"))
        .env("PORT", "1")
        .env("SAMPLE_FAIL_RATE", "2")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside 0.0-1.0"));
}
