//! Starts the real `pave` binary on a loopback port over a fresh database (SQLite, or
//! PostgreSQL when `PAVE_TEST_DATABASE_URL` is set) and talks to it over HTTP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use pave_store::testing::{TestDatabase, fresh};
use serde_json::Value;

pub const ADMIN: &str = "pave_testadmintoken0000000000000000000000000000000";

pub fn pave_bin() -> &'static str {
    env!("CARGO_BIN_EXE_pave")
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub http: reqwest::Client,
}

impl Server {
    /// Starts a server on `db` with extra flags; waits for its "listening" line.
    pub fn start_on(db: &TestDatabase, extra: &[&str]) -> Server {
        Server::start_with(db, extra, &[], None)
    }

    /// As [`Server::start_on`], with extra environment variables and, when `log` is given,
    /// the server's log at debug level written to that file.
    pub fn start_with(db: &TestDatabase, extra: &[&str], envs: &[(&str, &str)], log: Option<&Path>) -> Server {
        Server::try_start(db, extra, envs, log).expect("pave serve printed its address within 30 s")
    }

    /// Starts a server, or returns its exit status when it stops before listening.
    pub fn try_start(
        db: &TestDatabase,
        extra: &[&str],
        envs: &[(&str, &str)],
        log: Option<&Path>,
    ) -> Result<Server, std::process::ExitStatus> {
        Server::launch(Path::new(pave_bin()), db, &["--stop-replicas-on-exit"], extra, envs, log)
    }

    /// Starts `program` as a production control plane would run: a stop leaves its replicas
    /// and router serving (no `--stop-replicas-on-exit`; the test reaps them).
    pub fn start_lasting(program: &Path, db: &TestDatabase) -> Server {
        Server::launch(program, db, &[], &[], &[], None).expect("pave serve printed its address within 30 s")
    }

    fn launch(
        program: &Path,
        db: &TestDatabase,
        lifetime: &[&str],
        extra: &[&str],
        envs: &[(&str, &str)],
        log: Option<&Path>,
    ) -> Result<Server, std::process::ExitStatus> {
        let mut cmd = Command::new(program);
        // Each server takes router ports from its own random block, so parallel tests do not
        // race for the same port.
        let base = 20_000 + port_block() * 50;
        let ports = format!("{base}-{}", base + 49);
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(db.dir.path())
            .arg("--router-ports")
            .arg(&ports)
            .args(lifetime)
            .args(extra);
        if let Some(url) = &db.options.database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.env("PAVE_BOOTSTRAP_TOKEN", ADMIN)
            .env("PAVE_LOG", if log.is_some() { "debug" } else { "warn" })
            .env_remove("PAVE_TOKEN")
            .env_remove("PAVE_MASTER_KEY")
            // `pave serve` sets it itself when it is unset (see `hardening::serve_runs_with_one_malloc_arena`).
            .env_remove("MALLOC_ARENA_MAX")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped());
        match log {
            Some(path) => {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("log file");
                cmd.stderr(Stdio::from(file));
            }
            None => {
                cmd.stderr(Stdio::inherit());
            }
        }
        let mut child = cmd.spawn().expect("spawn pave serve");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("pave: listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let url = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(url) => break url,
                Err(_) if std::time::Instant::now() > deadline => panic!("pave serve did not listen within 30 s"),
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(status);
                    }
                }
            }
        };
        Ok(Server { child, url, http: reqwest::Client::new() })
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request reaches the server");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, value, headers)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (s, v, _) = self.request(reqwest::Method::GET, path, Some(ADMIN), None).await;
        (s, v)
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, token: &str, body: Value) -> (u16, Value) {
        let (s, v, _) = self.request(method, path, Some(token), Some(&body)).await;
        (s, v)
    }

    /// Creates a token with `role` and returns its secret.
    pub async fn token(&self, name: &str, role: &str) -> String {
        let (s, v) = self
            .send(reqwest::Method::POST, "/api/v1/tokens", ADMIN, serde_json::json!({"name": name, "role": role}))
            .await;
        assert_eq!(s, 201, "{v}");
        v["secret"].as_str().expect("secret").to_owned()
    }

    /// Runs the CLI against this server.
    pub fn cli(&self, args: &[&str], token: Option<&str>) -> Output {
        cli_in(args, &self.url, token, None)
    }

    /// SIGKILL: the server dies mid-whatever, as in a crash. Its replicas keep running.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then SIGKILL after 15 s.
    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
            for _ in 0..150 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        self.kill();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One of 800 blocks of 50 ports above 20000, different for each server this process starts.
fn port_block() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (std::process::id().wrapping_mul(7) + t.subsec_millis() + n * 13) % 800
}

/// Pids of the replicas a server with this data directory started (marked `PAVE_OWNER`).
pub fn replicas_of(data_dir: &Path) -> Vec<u32> {
    marked(&format!("PAVE_OWNER={}", std::fs::canonicalize(data_dir).unwrap_or_default().display()))
}

/// Pids of processes whose environment holds `marker` exactly (zombies left out).
fn marked(marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if !pave_testkit::running(pid) {
            continue;
        }
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ"))
            && env.split(|&b| b == 0).any(|kv| kv == marker.as_bytes())
        {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// Pids of the router processes serving this data directory (marked `PAVE_ROUTER_OF`).
pub fn routers_of(data_dir: &Path) -> Vec<u32> {
    marked(&format!("PAVE_ROUTER_OF={}", std::fs::canonicalize(data_dir).unwrap_or_default().display()))
}

/// Kills whatever replicas and router a test left behind (after a failed assertion, say).
pub fn reap(data_dir: &Path) {
    for pid in replicas_of(data_dir).into_iter().chain(routers_of(data_dir)) {
        // Signals sent directly: procps' `kill -KILL -PID` reads `-PID` as options and can end
        // up signalling every process (-1). And never pid 1 or 0, whatever /proc said.
        let Some(p) = rustix::process::Pid::from_raw(pid as i32).filter(|_| pid > 1) else { continue };
        let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

pub fn cli_in(args: &[&str], url: &str, token: Option<&str>, dir: Option<&Path>) -> Output {
    let mut cmd = Command::new(pave_bin());
    cmd.args(args).env("PAVE_URL", url).env_remove("PAVE_TOKEN");
    if let Some(t) = token {
        cmd.env("PAVE_TOKEN", t);
    }
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.output().expect("run pave")
}

/// Runs the CLI with `input` on its standard input.
pub fn cli_stdin(args: &[&str], url: &str, token: Option<&str>, input: &[u8]) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(pave_bin());
    cmd.args(args).env("PAVE_URL", url).env_remove("PAVE_TOKEN");
    if let Some(t) = token {
        cmd.env("PAVE_TOKEN", t);
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run pave");
    child.stdin.take().expect("stdin").write_all(input).expect("write stdin");
    child.wait_with_output().expect("pave finishes")
}

pub async fn start() -> (Server, TestDatabase) {
    let db = fresh().await;
    let server = Server::start_on(&db, &[]);
    (server, db)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
