//! Deployments for real: `pave serve` runs the sample service (`pave sample`) as processes
//! behind its router, and these tests drive traffic through the router while strategies,
//! failures, undo, approvals and a SIGKILL of the control plane play out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use pave_store::testing::{TestDatabase, fresh};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ADMIN, Server, pave_bin, reap, replicas_of, routers_of, stderr, stdout};

pub(crate) struct Platform {
    pub(crate) server: Server,
    pub(crate) db: TestDatabase,
    artifacts: tempfile::TempDir,
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.server.stop();
        reap(self.db.dir.path());
    }
}

pub(crate) fn service(rollout: Value, replicas: u32) -> Value {
    json!({"kind": "Service", "metadata": {"name": "shop"}, "spec": {
        "owner": "core",
        "runtime": {
            "command": pave_bin(), "args": ["sample"], "replicas": replicas,
            "healthCheck": {"path": "/healthz", "interval": "200ms", "timeout": "200ms", "healthyThreshold": 1},
            "startTimeout": "3s", "stopTimeout": "3s"
        },
        "rollout": rollout
    }})
}

impl Platform {
    pub(crate) async fn start(rollout: Value, replicas: u32) -> Platform {
        Platform::start_with(rollout, replicas, &[]).await
    }

    /// As [`Platform::start`], with extra `pave serve` flags.
    pub(crate) async fn start_with(rollout: Value, replicas: u32, flags: &[&str]) -> Platform {
        let db = fresh().await;
        let server = Server::start_on(&db, flags);
        let p = Platform { server, db, artifacts: tempfile::tempdir().expect("tempdir") };
        let docs = json!({"documents": [
            {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "platform"}},
            {"kind": "Environment", "metadata": {"name": "dev"}, "spec": {"order": 1}},
            {"kind": "Environment", "metadata": {"name": "prod"}, "spec": {"order": 2, "production": true, "requireApproval": true}},
            service(rollout, replicas),
        ]});
        let (s, v) = p.server.send(Method::POST, "/api/v1/apply", ADMIN, docs).await;
        assert_eq!(s, 200, "{v}");
        p
    }

    /// Publishes release `version`; `config` becomes the artifact's `sample.env`.
    pub(crate) fn release(&self, version: &str, config: &str) {
        let dir = self.artifacts.path().join(version);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("sample.env"), config).expect("write");
        let out = self.server.cli(
            &[
                "release",
                "create",
                "shop",
                "--version",
                version,
                "--artifact",
                dir.to_str().expect("path"),
                "--commit",
                "abcdef1",
            ],
            Some(ADMIN),
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }

    pub(crate) fn deploy(&self, version: &str, env: &str, extra: &[&str], token: &str) -> std::process::Output {
        let mut args = vec!["deploy", "shop", version, "--env", env];
        args.extend_from_slice(extra);
        self.server.cli(&args, Some(token))
    }

    pub(crate) async fn status(&self, env: &str) -> Value {
        let (s, v) = self.server.get(&format!("/api/v1/services/shop/environments/{env}/status")).await;
        assert_eq!(s, 200, "{v}");
        v
    }

    pub(crate) async fn url(&self, env: &str) -> String {
        self.status(env).await["url"].as_str().expect("url").to_owned()
    }

    pub(crate) async fn rollout(&self, id: i64) -> Value {
        self.server.get(&format!("/api/v1/rollouts/{id}")).await.1["rollout"].clone()
    }

    pub(crate) async fn latest(&self, env: &str) -> Value {
        let v = self.server.get(&format!("/api/v1/rollouts?service=shop&environment={env}&limit=1")).await.1;
        v["rollouts"][0].clone()
    }

    pub(crate) async fn wait_state(&self, id: i64, states: &[&str]) -> Value {
        for _ in 0..300 {
            let r = self.rollout(id).await;
            if states.contains(&r["state"].as_str().unwrap_or("")) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("rollout {id} never reached {states:?}: {}", self.rollout(id).await);
    }
}

/// The version answering at the router.
pub(crate) async fn version_at(url: &str) -> String {
    let v: Value = reqwest::get(url).await.expect("router answers").json().await.expect("json");
    v["version"].as_str().expect("version").to_owned()
}

/// Steady traffic through the router until stopped: (sent, failed, versions seen). Tests that
/// use it run on two worker threads: the CLI calls they make block one of them.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub(crate) fn start(url: &str, workers: usize) -> Load {
        let (stop, sent, failed) =
            (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let tasks = (0..workers)
            .map(|_| {
                let (url, stop, sent, failed) = (url.to_owned(), stop.clone(), sent.clone(), failed.clone());
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    while !stop.load(Ordering::Relaxed) {
                        let ok = matches!(http.get(&url).send().await, Ok(r) if r.status() == 200);
                        sent.fetch_add(1, Ordering::Relaxed);
                        if !ok {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        Load { stop, sent, failed, tasks }
    }

    pub(crate) async fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("load task");
        }
        (self.sent.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_blue_green_and_undo_under_traffic_drop_nothing() {
    let p = Platform::start(json!({"strategy": "rolling", "keepWarm": "1s"}), 2).await;
    for v in ["1.0.0", "2.0.0", "3.0.0"] {
        p.release(v, "");
    }
    let out = p.deploy("1.0.0", "dev", &[], ADMIN);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("succeeded"), "{}", stdout(&out));
    let url = p.url("dev").await;
    assert_eq!(version_at(&url).await, "1.0.0");
    assert_eq!(p.status("dev").await["replicas"].as_array().map(Vec::len), Some(2));

    let load = Load::start(&url, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = p.deploy("2.0.0", "dev", &[], ADMIN);
    assert!(out.status.success(), "rolling: {}{}", stdout(&out), stderr(&out));
    assert_eq!(version_at(&url).await, "2.0.0");
    let out = p.deploy("3.0.0", "dev", &["--strategy", "blue-green"], ADMIN);
    assert!(out.status.success(), "blue-green: {}{}", stdout(&out), stderr(&out));
    assert_eq!(version_at(&url).await, "3.0.0");
    let out = p.server.cli(&["rollout", "undo", "shop", "--env", "dev"], Some(ADMIN));
    assert!(out.status.success(), "undo: {}{}", stdout(&out), stderr(&out));
    assert_eq!(version_at(&url).await, "2.0.0");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (sent, failed) = load.finish().await;
    assert!(sent > 100, "only {sent} requests were sent");
    assert_eq!(failed, 0, "{failed} of {sent} requests failed during rolling, blue-green and undo");

    // Only the serving version runs, and the undone rollout is marked rolled back.
    let status = p.status("dev").await;
    let replicas: Vec<&str> =
        status["replicas"].as_array().expect("replicas").iter().map(|r| r["version"].as_str().unwrap_or("")).collect();
    assert_eq!(replicas, ["2.0.0", "2.0.0"], "{status}");
    assert!(status["signals"].as_array().expect("signals").iter().any(|s| s["version"] == "3.0.0"));
    let list = p.server.get("/api/v1/rollouts?service=shop&environment=dev").await.1;
    let states: Vec<(&str, &str)> = list["rollouts"]
        .as_array()
        .expect("rollouts")
        .iter()
        .map(|r| (r["version"].as_str().unwrap_or(""), r["state"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        states,
        [("2.0.0", "succeeded"), ("3.0.0", "rolled-back"), ("2.0.0", "succeeded"), ("1.0.0", "succeeded")]
    );
    // Every step is in the event log, and DORA sees the deployments and the rollback.
    let events = p.server.get("/api/v1/events?kind=deployment.*&limit=500").await.1;
    let kinds: Vec<&str> =
        events["events"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    for k in [
        "deployment.requested",
        "deployment.started",
        "deployment.step",
        "deployment.succeeded",
        "deployment.rolled-back",
    ] {
        assert!(kinds.contains(&k), "no {k} in {kinds:?}");
    }
    let dora = p.server.get("/api/v1/dora?environment=dev&from=1d&explain=true").await;
    assert_eq!(dora.0, 200, "{}", dora.1);
    let text = dora.1.to_string();
    assert!(text.contains("pave-rollout-"), "DORA names the rollouts behind its figures: {text}");
    // Logs of every replica are readable.
    let out = p.server.cli(&["logs", "shop", "--env", "dev", "--lines", "5"], Some(ADMIN));
    assert!(stdout(&out).contains("[2.0.0 r0]"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_release_fails_and_the_old_one_keeps_serving() {
    let p = Platform::start(json!({"strategy": "blue-green"}), 1).await;
    p.release("1.0.0", "");
    p.release("2.0.0", "SAMPLE_UNHEALTHY=1\n");
    assert!(p.deploy("1.0.0", "dev", &[], ADMIN).status.success());
    let url = p.url("dev").await;
    let load = Load::start(&url, 2);
    let out = p.deploy("2.0.0", "dev", &[], ADMIN);
    let (sent, failed) = load.finish().await;
    assert!(!out.status.success(), "an unhealthy release must fail: {}", stdout(&out));
    assert!(stdout(&out).contains("failed"), "{}", stdout(&out));
    assert!(stdout(&out).contains("/healthz answered 503"), "the reason is given: {}", stdout(&out));
    assert_eq!(version_at(&url).await, "1.0.0");
    assert_eq!(failed, 0, "{failed} of {sent} failed while the bad release was tried");
    let status = p.status("dev").await;
    assert_eq!(status["replicas"].as_array().map(Vec::len), Some(1), "{status}");
    assert_eq!(replicas_of(p.db.dir.path()).len(), 1, "nothing of 2.0.0 is left running");
    // Recreate with a bad release also restores the old one.
    let out = p.deploy("2.0.0", "dev", &["--strategy", "recreate"], ADMIN);
    assert!(!out.status.success());
    assert_eq!(version_at(&url).await, "1.0.0");
}

#[tokio::test]
async fn crashed_replicas_restart_and_say_so() {
    let p = Platform::start(json!({"strategy": "rolling"}), 2).await;
    p.release("1.0.0", "SAMPLE_CRASH_AFTER=20\n");
    assert!(p.deploy("1.0.0", "dev", &[], ADMIN).status.success());
    let url = p.url("dev").await;
    let http = reqwest::Client::new();
    let before = replicas_of(p.db.dir.path());
    // 60 requests: each replica serves 20 and then crashes on the next one.
    for _ in 0..60 {
        let _ = http.get(&url).send().await;
    }
    // Both come back (with backoff) and the route serves again.
    let mut served = 0;
    for _ in 0..200 {
        if matches!(http.get(&url).send().await, Ok(r) if r.status() == 200) {
            served += 1;
            if served == 10 {
                break;
            }
        } else {
            served = 0;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(served, 10, "the route serves again after the crashes");
    let after = replicas_of(p.db.dir.path());
    assert_eq!(after.len(), 2);
    assert_ne!(after, before, "crashed replicas were replaced by new processes");
    let events = p.server.get("/api/v1/events?kind=replica.*&limit=500").await.1;
    let kinds: Vec<&str> =
        events["events"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"replica.crashed"), "{kinds:?}");
    assert!(kinds.contains(&"replica.restarted"), "{kinds:?}");
}

#[tokio::test]
async fn promotion_path_approvals_and_audited_overrides() {
    let p = Platform::start(json!({"strategy": "rolling"}), 1).await;
    p.release("1.0.0", "");
    let dev1 = p.server.token("alice", "developer").await;
    let dev2 = p.server.token("bob", "developer").await;
    // Not in dev yet: production refuses it.
    let out = p.deploy("1.0.0", "prod", &[], &dev1);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("has not succeeded in dev"), "{}", stderr(&out));
    // A developer cannot override; an admin can, with a reason, and it is audited.
    let out = p.deploy("1.0.0", "prod", &["--override", "hotfix"], &dev1);
    assert!(stderr(&out).contains("only an admin can override"), "{}", stderr(&out));
    assert!(p.deploy("1.0.0", "dev", &[], &dev1).status.success());
    // Now production takes it, after someone else approves.
    let out = p.deploy("1.0.0", "prod", &[], &dev1);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("awaiting-approval"), "{}", stdout(&out));
    let out = p.server.cli(&["rollout", "approve", "shop", "--env", "prod"], Some(&dev1));
    assert!(stderr(&out).contains("someone else must approve"), "{}", stderr(&out));
    let out = p.server.cli(&["rollout", "approve", "shop", "--env", "prod"], Some(&dev2));
    assert!(out.status.success(), "{}", stderr(&out));
    let r = p.wait_state(p.latest("prod").await["id"].as_i64().expect("id"), &["succeeded"]).await;
    assert_eq!(r["approvedBy"], "bob");
    // An admin override skips the approval; the audit names it.
    p.release("1.1.0", "");
    let out = p.deploy("1.1.0", "prod", &["--override", "incident 42 fix"], ADMIN);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("succeeded"), "{}", stdout(&out));
    let audit = p.server.get("/api/v1/audit?limit=50").await.1.to_string();
    assert!(audit.contains("incident 42 fix"), "{audit}");
    let events = p.server.get("/api/v1/events?kind=deployment.override").await.1;
    assert_eq!(events["events"].as_array().map(Vec::len), Some(2), "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_blue_green_rollout_then_restart_adopts_and_finishes() {
    let p = Platform::start(json!({"strategy": "blue-green", "autoPromote": false, "keepWarm": "0s"}), 2).await;
    let mut p = p;
    p.release("1.0.0", "");
    p.release("2.0.0", "");
    assert!(p.deploy("1.0.0", "dev", &[], ADMIN).status.success());
    let out = p.deploy("2.0.0", "dev", &[], ADMIN);
    assert!(stdout(&out).contains("awaiting-promotion"), "{}", stdout(&out));
    let url = p.url("dev").await;
    assert_eq!(version_at(&url).await, "1.0.0");
    // The preview is reachable by header.
    let preview: Value = reqwest::Client::new()
        .get(&url)
        .header("x-pave-version", "2.0.0")
        .send()
        .await
        .expect("preview")
        .json()
        .await
        .expect("json");
    assert_eq!(preview["version"], "2.0.0");
    let before = replicas_of(p.db.dir.path());
    assert_eq!(before.len(), 4, "two replicas of each colour");
    let router = routers_of(p.db.dir.path());
    assert_eq!(router.len(), 1, "one router process");

    // Steady traffic from here to the end: the router is its own process and serves through
    // the control plane's death, restart and the promotion after it.
    let load = Load::start(&url, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.server.kill();
    // The replicas outlive the control plane.
    assert_eq!(replicas_of(p.db.dir.path()), before);
    p.server = Server::start_on(&p.db, &[]);
    let mut recovered = Value::Null;
    for _ in 0..100 {
        recovered = p.server.get("/api/v1/events?kind=engine.recovered").await.1;
        if recovered["events"].as_array().is_some_and(|e| !e.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(recovered["events"][0]["data"]["adopted"], 4, "{recovered}");
    // Adopted, not restarted: the same processes serve.
    let status = p.status("dev").await;
    let mut pids: Vec<u32> = status["replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .map(|r| r["pid"].as_u64().unwrap_or(0) as u32)
        .collect();
    pids.sort_unstable();
    assert_eq!(pids, before, "{status}");
    assert_eq!(version_at(&url).await, "1.0.0", "the same router port serves again");
    let out = p.server.cli(&["rollout", "promote", "shop", "--env", "dev"], Some(ADMIN));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("succeeded"), "{}", stdout(&out));
    assert_eq!(version_at(&url).await, "2.0.0");
    let (sent, failed) = load.finish().await;
    assert_eq!(failed, 0, "{failed} of {sent} requests failed across the SIGKILL, restart and promotion");
    assert_eq!(routers_of(p.db.dir.path()), router, "the same router served throughout");
    assert_eq!(replicas_of(p.db.dir.path()).len(), 2, "the old colour is stopped; nothing orphaned");
}

#[tokio::test]
async fn blue_green_keeps_the_old_colour_warm_so_undo_is_instant_then_retires_it() {
    let p = Platform::start(json!({"strategy": "blue-green", "keepWarm": "3s"}), 2).await;
    p.release("1.0.0", "");
    p.release("2.0.0", "");
    assert!(p.deploy("1.0.0", "dev", &[], ADMIN).status.success());
    let v1 = replicas_of(p.db.dir.path());
    let out = p.deploy("2.0.0", "dev", &[], ADMIN);
    assert!(stdout(&out).contains("succeeded"), "the rollout ends at the switch: {}", stdout(&out));
    assert_eq!(replicas_of(p.db.dir.path()).len(), 4, "the old colour is still warm");
    let url = p.url("dev").await;
    assert_eq!(version_at(&url).await, "2.0.0");
    let started = std::time::Instant::now();
    let out = p.server.cli(&["rollout", "undo", "shop", "--env", "dev"], Some(ADMIN));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(3), "undo took {:?}", started.elapsed());
    assert_eq!(version_at(&url).await, "1.0.0");
    assert_eq!(replicas_of(p.db.dir.path()), v1, "the warm 1.0.0 processes serve again, not new ones");
    // A new switch, then the keep-warm time passes: the old colour is stopped in the background.
    p.release("3.0.0", "");
    assert!(p.deploy("3.0.0", "dev", &[], ADMIN).status.success());
    let mut left = 0;
    for _ in 0..80 {
        left = replicas_of(p.db.dir.path()).len();
        if left == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 2, "1.0.0 retired after its keep-warm time");
    assert_eq!(version_at(&url).await, "3.0.0");
    let retired = p.server.get("/api/v1/events?kind=route.retired").await.1;
    assert_eq!(retired["events"][0]["data"]["version"], "1.0.0", "{retired}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_rolling_update_then_restart_resumes_it() {
    let mut p = Platform::start(json!({"strategy": "rolling"}), 3).await;
    p.release("1.0.0", "");
    // Each new replica takes 600 ms to start, so the rolling update is still going when killed.
    p.release("2.0.0", "SAMPLE_STARTUP_MS=600\n");
    assert!(p.deploy("1.0.0", "dev", &[], ADMIN).status.success());
    let url = p.url("dev").await;
    let load = Load::start(&url, 4);
    let out = p.deploy("2.0.0", "dev", &["--no-wait"], ADMIN);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = p.latest("dev").await["id"].as_i64().expect("id");
    // Kill once the first new replica is in and before the last old one is out.
    for _ in 0..100 {
        let r = p.rollout(id).await;
        if r["step"].as_u64().unwrap_or(0) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mid = p.rollout(id).await;
    assert_eq!(mid["state"], "progressing", "killed mid-rollout: {mid}");
    p.server.kill();
    p.server = Server::start_on(&p.db, &[]);
    let done = p.wait_state(id, &["succeeded", "failed"]).await;
    let (sent, failed) = load.finish().await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(failed, 0, "{failed} of {sent} requests failed across the SIGKILL and restart mid rolling update");
    assert_eq!(version_at(&url).await, "2.0.0");
    // Exactly the three new replicas run: none orphaned, none doubled.
    let status = p.status("dev").await;
    let versions: Vec<&str> =
        status["replicas"].as_array().expect("replicas").iter().map(|r| r["version"].as_str().unwrap_or("")).collect();
    assert_eq!(versions, ["2.0.0", "2.0.0", "2.0.0"], "{status}");
    for _ in 0..50 {
        if replicas_of(p.db.dir.path()).len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(replicas_of(p.db.dir.path()).len(), 3, "no orphaned process");
}

#[tokio::test]
async fn logs_refuse_names_that_are_not_names() {
    let p = Platform::start(json!({"strategy": "rolling"}), 1).await;
    let (s, v) = p.server.get("/api/v1/services/..%2F..%2Fetc/environments/dev/logs").await;
    assert_eq!(s, 422, "{v}");
    assert!(v["detail"].as_str().unwrap_or("").contains("service name"), "{v}");
    let (s, _) = p.server.get("/api/v1/services/shop/environments/dev/logs").await;
    assert_eq!(s, 404, "never deployed");
}

/// The router is its own process, supervised by `pave serve`: killed, it is started again, and
/// the engine gives the new one every route (here its saved tables are gone too, so only the
/// engine can make it serve again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_that_dies_is_started_again_and_given_every_route() {
    let p = Platform::start(json!({"strategy": "rolling"}), 2).await;
    p.release("1.0.0", "");
    p.release("2.0.0", "");
    assert!(p.deploy("1.0.0", "dev", &[], ADMIN).status.success());
    let url = p.url("dev").await;
    assert_eq!(version_at(&url).await, "1.0.0");
    let before = routers_of(p.db.dir.path());
    assert_eq!(before.len(), 1, "one router process");
    let pid = rustix::process::Pid::from_raw(before[0] as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill the router");
    std::fs::remove_file(p.db.dir.path().join("router").join("routes.json")).expect("saved routes");
    let http = reqwest::Client::new();
    let mut back = None;
    for _ in 0..150 {
        if let Ok(r) = http.get(&url).send().await
            && r.status() == 200
        {
            back = Some(r.json::<Value>().await.expect("json")["version"].clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(back, Some(json!("1.0.0")), "the restarted router serves the route again");
    let after = routers_of(p.db.dir.path());
    assert!(after.len() == 1 && after != before, "a new router process: {before:?} -> {after:?}");
    // And it is steered as the old one was.
    let out = p.deploy("2.0.0", "dev", &[], ADMIN);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(version_at(&url).await, "2.0.0");
}

/// An upgrade of the `pave` binary: the control plane stops (SIGTERM, as a service manager
/// does), a new file replaces the binary it ran from, and the new one starts. The router and
/// the replicas serve throughout and the new control plane steers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_of_the_binary_drops_no_request() {
    let bin = tempfile::tempdir().expect("tempdir");
    let program = bin.path().join("pave");
    std::fs::copy(pave_bin(), &program).expect("copy pave");
    let mut p = Platform::start(json!({"strategy": "rolling"}), 2).await;
    p.server.stop();
    p.server = Server::start_lasting(&program, &p.db);
    p.release("1.0.0", "");
    p.release("2.0.0", "");
    assert!(p.deploy("1.0.0", "dev", &[], ADMIN).status.success());
    let url = p.url("dev").await;
    let load = Load::start(&url, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let router = routers_of(p.db.dir.path());
    p.server.stop();
    assert_eq!(replicas_of(p.db.dir.path()).len(), 2, "replicas outlive a stopped control plane");
    std::fs::remove_file(&program).expect("remove the old binary");
    std::fs::copy(pave_bin(), &program).expect("install the new binary");
    p.server = Server::start_lasting(&program, &p.db);
    let out = p.deploy("2.0.0", "dev", &[], ADMIN);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(version_at(&url).await, "2.0.0");
    let (sent, failed) = load.finish().await;
    assert_eq!(failed, 0, "{failed} of {sent} requests failed across the upgrade");
    assert_eq!(routers_of(p.db.dir.path()), router, "the router served throughout");
}
