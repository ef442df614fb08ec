//! The process runtime against real processes: this test binary doubles as the replica (the
//! `helper_sample_server` "test" runs the sample service when the runtime starts it with
//! `PAVE_RUNTIME_TEST_HELPER=1`), so no other binary has to be built first.

// Test helpers may unwrap: clippy counts only `#[test]` functions of a test crate as tests.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use pave_runtime::{
    Adoption, Health, Process, ProcessConfig, ProcessRuntime, ReplicaSpec, Runtime, RuntimeError, RuntimeEvent,
    StopOutcome,
};

#[test]
fn helper_sample_server() {
    if std::env::var_os("PAVE_RUNTIME_TEST_HELPER").is_some() {
        std::process::exit(pave_sample::run().into());
    }
}

fn spec(version: &str, vars: &[(&str, &str)]) -> ReplicaSpec {
    let mut all: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    all.insert("PAVE_RUNTIME_TEST_HELPER".into(), "1".into());
    ReplicaSpec {
        service: "shop".into(),
        env: "dev".into(),
        version: version.into(),
        replica: 0,
        program: std::env::current_exe().unwrap().to_string_lossy().into_owned(),
        args: ["--exact", "helper_sample_server", "--nocapture", "--test-threads", "1"].map(String::from).to_vec(),
        cwd: std::env::temp_dir(),
        vars: all,
        secrets: BTreeMap::new(),
        config_rev: 0,
        port_env: "PORT".into(),
        health: Health {
            path: "/healthz".into(),
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(500),
            threshold: 2,
        },
        start_timeout: Duration::from_secs(10),
        stop_timeout: Duration::from_secs(5),
    }
}

fn runtime(dir: &std::path::Path) -> ProcessRuntime {
    let mut c = ProcessConfig::new(dir.join("logs"));
    c.min_backoff = Duration::from_millis(100);
    ProcessRuntime::new(c)
}

/// One plain HTTP GET on loopback; returns the status and body.
async fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await?;
    let status = buf.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

#[tokio::test]
async fn starts_healthy_serves_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let inst = rt.start(spec("1.0.0", &[])).await.unwrap();
    assert!(Process::of(&inst).pid > 0 && running(Process::of(&inst).pid), "the recorded pid is the running replica");
    assert!(Process::of(&inst).proc_start > 0);
    let (status, body) = get(Process::of(&inst).port, "/").await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("\"version\":\"1.0.0\""), "{body}");
    // Starting the same slot again is idempotent.
    assert_eq!(rt.start(spec("1.0.0", &[])).await.unwrap(), inst);
    assert_eq!(rt.running().len(), 1);
    assert_eq!(rt.stop(&inst.id).await.unwrap(), StopOutcome::Graceful);
    assert!(!running(Process::of(&inst).pid), "process {} still runs", Process::of(&inst).pid);
    assert!(rt.running().is_empty());
    let log = std::fs::read_to_string(&Process::of(&inst).log).unwrap();
    assert!(log.contains("listening on 127.0.0.1"), "{log}");
    assert!(log.contains("stopping"), "{log}");
}

#[tokio::test]
async fn a_replica_that_never_gets_healthy_fails_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let mut s = spec("2.0.0", &[("SAMPLE_UNHEALTHY", "1")]);
    s.start_timeout = Duration::from_millis(800);
    let err = rt.start(s).await.unwrap_err();
    assert!(matches!(err, RuntimeError::NeverHealthy { .. }), "{err}");
    assert!(err.to_string().contains("/healthz answered 503"), "{err}");
    assert!(rt.running().is_empty());
    // A replica with bad settings exits at once and says why.
    let err = rt.start(spec("2.0.1", &[("SAMPLE_FAIL_RATE", "7")])).await.unwrap_err();
    assert!(matches!(err, RuntimeError::ExitedEarly { .. }), "{err}");
    assert!(err.to_string().contains("SAMPLE_FAIL_RATE=7"), "{err}");
}

#[tokio::test]
async fn a_crashed_replica_is_restarted_on_its_port_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let mut events = rt.subscribe();
    let inst = rt.start(spec("3.0.0", &[("SAMPLE_CRASH_AFTER", "1")])).await.unwrap();
    assert_eq!(get(Process::of(&inst).port, "/").await.unwrap().0, 200);
    let _ = get(Process::of(&inst).port, "/").await; // the second request crashes it
    let crashed = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.unwrap().unwrap();
    match crashed {
        RuntimeEvent::Crashed { id, status, restarts, .. } => {
            assert_eq!(id, inst.id);
            assert_eq!(status, "exit status 1");
            assert_eq!(restarts, 1);
        }
        other => panic!("expected a crash, got {other:?}"),
    }
    let restarted = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.unwrap().unwrap();
    let RuntimeEvent::Restarted { instance } = restarted else { panic!("expected a restart, got {restarted:?}") };
    assert_eq!(Process::of(&instance).port, Process::of(&inst).port, "same port after a restart");
    assert_ne!(Process::of(&instance).pid, Process::of(&inst).pid);
    assert_eq!(get(Process::of(&inst).port, "/").await.unwrap().0, 200);
    assert_eq!(rt.stop(&inst.id).await.unwrap(), StopOutcome::Graceful);
    assert!(!running(Process::of(&instance).pid));
}

#[tokio::test]
async fn sigterm_ignored_means_sigkill_for_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let mut s = spec("4.0.0", &[]);
    // A shell that ignores SIGTERM and keeps a server child: only SIGKILL to the group ends it.
    let exe = s.program.clone();
    s.program = "/bin/sh".into();
    s.args = vec![
        "-c".into(),
        format!("trap '' TERM; \"{exe}\" --exact helper_sample_server --nocapture & while :; do sleep 0.1; done"),
    ];
    s.stop_timeout = Duration::from_millis(700);
    let inst = rt.start(s).await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(rt.stop(&inst.id).await.unwrap(), StopOutcome::Killed);
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert!(!running(Process::of(&inst).pid));
    assert!(get(Process::of(&inst).port, "/").await.is_err(), "the server child was killed with its group");
}

#[tokio::test]
async fn a_new_control_plane_adopts_a_running_replica() {
    let dir = tempfile::tempdir().unwrap();
    // The first control plane runs on its own async runtime, which then vanishes with its
    // supervisors (as a SIGKILLed `pave serve` would), leaving the replica running.
    let path = dir.path().to_owned();
    let inst = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async { runtime(&path).start(spec("5.0.0", &[])).await.unwrap() })
    })
    .join()
    .unwrap();
    assert!(running(Process::of(&inst).pid));
    // A second runtime (a restarted control plane) finds the process by its record.
    let second = runtime(dir.path());
    assert_eq!(second.adopt(spec("5.0.0", &[]), inst.clone()).await, Adoption::Adopted(inst.clone()));
    assert_eq!(second.running(), vec![inst.clone()]);
    assert_eq!(second.stop(&inst.id).await.unwrap(), StopOutcome::Graceful);
    assert!(!running(Process::of(&inst).pid));
    // A record of a process that is gone adopts nothing.
    assert_eq!(second.adopt(spec("5.0.0", &[]), inst.clone()).await, Adoption::Gone);
    let mut stale = inst.clone();
    let start = Process::of(&inst).proc_start + 1;
    stale.detail.insert("proc_start".into(), start.into());
    stale.detail.insert("pid".into(), std::process::id().into());
    assert_eq!(second.adopt(spec("5.0.0", &[]), stale).await, Adoption::Gone, "a reused pid is not ours");
}

/// The environment a process was started with, from `/proc`.
fn environ(pid: u32) -> Vec<(String, String)> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .filter_map(|e| String::from_utf8_lossy(e).split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

#[tokio::test]
async fn secrets_reach_the_replica_environment_and_no_log_or_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let mut s = spec("3.0.0", &[("DB_PASSWORD", "from-vars"), ("PLAIN", "p")]);
    let value = "pw-7f3a9c1e-never-print-me";
    s.secrets.insert("DB_PASSWORD".into(), pave_vault::SecretValue::new(value.into()));
    s.secrets.insert("API_KEY".into(), pave_vault::SecretValue::new("k-2".into()));
    s.config_rev = 42;
    assert!(!format!("{s:?}").contains(value), "a spec's Debug output shows no secret");
    let inst = rt.start(s).await.unwrap();
    assert_eq!(inst.config_rev, 42);
    let env = environ(Process::of(&inst).pid);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("DB_PASSWORD"), Some(value), "a secret wins over a variable of the same name");
    assert_eq!(get("API_KEY"), Some("k-2"));
    assert_eq!(get("PLAIN"), Some("p"));
    rt.stop(&inst.id).await.unwrap();
    let log = std::fs::read_to_string(&Process::of(&inst).log).unwrap();
    assert!(!log.contains(value), "{log}");
}

#[tokio::test]
async fn a_failed_start_reports_its_log_without_the_secrets_it_printed() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    // An invalid setting makes the sample exit at once, printing the setting it refused: here
    // the secret's own value, as an application printing its connection string would.
    let value = "7-not-a-rate-but-a-secret";
    let mut s = spec("4.0.0", &[]);
    s.secrets.insert("SAMPLE_FAIL_RATE".into(), pave_vault::SecretValue::new(value.into()));
    let err = rt.start(s).await.unwrap_err().to_string();
    assert!(err.contains("SAMPLE_FAIL_RATE=\"<redacted SAMPLE_FAIL_RATE>\""), "{err}");
    assert!(!err.contains(value), "{err}");
}
