//! Runs the generator against a tiny in-process HTTP server on loopback.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;

fn tiny_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut out = stream;
                loop {
                    let mut line = String::new();
                    // Read one request head; the generator sends no body for GET.
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    if out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn open_loop_sends_the_scheduled_number_of_requests() {
    let port = tiny_server();
    let out = Command::new(env!("CARGO_BIN_EXE_pave-loadgen"))
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}/x"),
            "--rate",
            "500",
            "--duration",
            "1",
            "--connections",
            "4",
            "--json",
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let n = v["requests"].as_u64().expect("requests");
    assert!((480..=520).contains(&n), "{v}");
    assert_eq!(v["responses"]["2xx"].as_u64(), Some(n));
    assert_eq!(v["failed"], 0);
    assert!(v["latency_ms"]["p99"].as_f64().expect("p99") > 0.0);
}

#[test]
fn refuses_non_loopback_targets() {
    let out = Command::new(env!("CARGO_BIN_EXE_pave-loadgen"))
        .args(["--url", "http://10.1.2.3:80/", "--duration", "1"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to send load to 10.1.2.3"));
}
