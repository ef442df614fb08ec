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
        let mut cmd = Command::new(pave_bin());
        cmd.arg("serve").arg("--listen").arg("127.0.0.1:0").arg("--data-dir").arg(db.dir.path()).args(extra);
        if let Some(url) = &db.options.database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.env("PAVE_BOOTSTRAP_TOKEN", ADMIN)
            .env("PAVE_LOG", "warn")
            .env_remove("PAVE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
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
        let url = rx.recv_timeout(Duration::from_secs(30)).expect("pave serve printed its address within 30 s");
        Server { child, url, http: reqwest::Client::new() }
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

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
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
