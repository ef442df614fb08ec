//! Defects found by outside testing (issue 16): lock-out, races, deletes that left replicas
//! serving, retries that doubled deployments, leaks and unescaped terminal output.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::deploy::Platform;
use crate::harness::{ADMIN, pave_bin, replicas_of, start, stderr, stdout};

/// Runs `pave serve` on `db` listening on `listen` until it prints its address (returns the
/// child and every line it printed) or exits (returns its status and output).
// The child returned while it serves is the caller's to kill and wait for.
#[allow(clippy::zombie_processes)]
fn serve_once(
    db: &pave_store::testing::TestDatabase,
    listen: &str,
) -> Result<(std::process::Child, Vec<String>), (std::process::ExitStatus, String)> {
    let mut cmd = Command::new(pave_bin());
    cmd.args(["serve", "--listen", listen, "--data-dir"])
        .arg(db.dir.path())
        .args(["--router-ports", "29950-29959", "--stop-replicas-on-exit"])
        .env("PAVE_BOOTSTRAP_TOKEN", ADMIN)
        .env("PAVE_LOG", "warn")
        .env_remove("PAVE_MASTER_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(url) = &db.options.database_url {
        cmd.arg("--database-url").arg(url);
    }
    let mut child = cmd.spawn().expect("spawn pave serve");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let done = line.starts_with("pave: listening on ");
                lines.push(line);
                if done {
                    return Ok((child, lines));
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().expect("wait");
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Err((status, format!("{}\n{err}", lines.join("\n"))));
            }
            Err(_) => {}
        }
    }
    let _ = child.kill();
    panic!("pave serve neither listened nor exited within 30 s: {lines:?}");
}

/// Item 1: a first start on a taken port stores no token, so the next start still shows it.
#[tokio::test]
async fn a_first_start_on_a_taken_port_does_not_lose_the_admin_token() {
    let db = pave_store::testing::fresh().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (status, out) = serve_once(&db, &addr).expect_err("the port is taken");
    assert!(!status.success());
    assert!(out.contains("cannot listen on"), "{out}");
    assert!(!out.contains("PAVE_TOKEN="), "{out}");
    drop(taken);
    let (mut child, lines) = serve_once(&db, "127.0.0.1:0").expect("serves");
    let _ = child.kill();
    let _ = child.wait();
    let text = lines.join("\n");
    assert!(text.contains("Created the first admin token"), "{text}");
    assert!(text.contains(&format!("export PAVE_TOKEN={ADMIN}")), "{text}");
}

/// Item 2: twenty parallel creates of one flag: one 201, nineteen 409, one `flag.created`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_creates_of_one_flag_make_one() {
    let (s, _db) = start().await;
    let (st, v) = s
        .send(
            Method::POST,
            "/api/v1/apply",
            ADMIN,
            json!({"documents": [{"kind": "Environment", "metadata": {"name": "dev"}, "spec": {"order": 1}}]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let doc = json!({"kind": "Flag", "metadata": {"name": "race"},
                "spec": {"description": format!("writer {i}"), "environments": {"dev": {"enabled": true}}}});
            s.send(Method::POST, "/api/v1/flags", ADMIN, doc).await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let (st, v) = t.await.expect("task");
        if st == 409 {
            assert!(v["detail"].as_str().unwrap_or("").contains("already exists"), "{v}");
        }
        statuses.push(st);
    }
    statuses.sort_unstable();
    assert_eq!(statuses.iter().filter(|&&c| c == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&c| c == 409).count(), 19, "{statuses:?}");
    let (_, events) = s.get("/api/v1/events?kind=flag.*").await;
    let kinds: Vec<&str> =
        events["events"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["flag.created"], "{events}");
}

/// Polls until `check` holds (20 s at most).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

/// Item 3: deleting a service or an environment stops what runs there (replicas and the
/// router's listener); while a rollout is in progress the delete is refused, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_stop_what_runs_and_wait_for_rollouts() {
    let p = Platform::start(json!({"strategy": "rolling"}), 2).await;
    p.release("1.0.0", "");
    let out = p.deploy("1.0.0", "dev", &[], ADMIN);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let url = p.url("dev").await;
    assert_eq!(crate::deploy::version_at(&url).await, "1.0.0");
    let data = p.db.dir.path().to_owned();
    assert_eq!(replicas_of(&data).len(), 2);

    // A rollout waiting for approval in prod holds the deletes of the service and of prod.
    let out = p.deploy("1.0.0", "prod", &[], ADMIN);
    assert!(stdout(&out).contains("awaiting-approval"), "{}{}", stdout(&out), stderr(&out));
    for path in ["/api/v1/services/shop", "/api/v1/environments/prod"] {
        let (st, v, _) = p.server.request(Method::DELETE, path, Some(ADMIN), None).await;
        assert_eq!(st, 409, "{path}: {v}");
        let detail = v["detail"].as_str().unwrap_or("");
        assert!(detail.contains("rollout in progress") && detail.contains("pave rollout abort shop --env prod"), "{v}");
    }
    let out = p.server.cli(&["rollout", "abort", "shop", "--env", "prod"], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));

    // Deleting the environment stops what runs in it, and its router port closes.
    let (st, v, _) = p.server.request(Method::DELETE, "/api/v1/environments/dev", Some(ADMIN), None).await;
    assert_eq!(st, 204, "{v}");
    eventually("the replicas in dev stop", async || replicas_of(&data).is_empty()).await;
    eventually("dev's router port closes", async || reqwest::get(&url).await.is_err()).await;
    eventually("route.removed is recorded", async || {
        let (_, v) = p.server.get("/api/v1/events?kind=route.removed").await;
        v["events"].as_array().is_some_and(|e| e.len() == 1)
    })
    .await;

    // So does deleting the service, once it runs again.
    let env = json!({"documents": [{"kind": "Environment", "metadata": {"name": "dev"}, "spec": {"order": 1}}]});
    let (st, v) = p.server.send(Method::POST, "/api/v1/apply", ADMIN, env).await;
    assert_eq!(st, 200, "{v}");
    let out = p.deploy("1.0.0", "dev", &[], ADMIN);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let url = p.url("dev").await;
    assert_eq!(crate::deploy::version_at(&url).await, "1.0.0");
    let (st, v, _) = p.server.request(Method::DELETE, "/api/v1/services/shop", Some(ADMIN), None).await;
    assert_eq!(st, 204, "{v}");
    eventually("the replicas stop", async || replicas_of(&data).is_empty()).await;
    eventually("the router port closes", async || reqwest::get(&url).await.is_err()).await;
    eventually("route.removed is recorded for each route", async || {
        let (_, v) = p.server.get("/api/v1/events?kind=route.removed").await;
        v["events"].as_array().is_some_and(|e| e.len() >= 2)
    })
    .await;
}

/// Item 4: `pave event deployment` run twice (a CI retry) records one deployment.
#[tokio::test]
async fn a_retried_deployment_report_is_one_deployment() {
    let (s, _db) = start().await;
    let docs = json!({"documents": [
        {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "platform"}},
        {"kind": "Environment", "metadata": {"name": "production"}, "spec": {"order": 1, "production": true}},
        {"kind": "Service", "metadata": {"name": "checkout"}, "spec": {"owner": "core"}},
    ]});
    let (st, v) = s.send(Method::POST, "/api/v1/apply", ADMIN, docs).await;
    assert_eq!(st, 200, "{v}");
    let args = [
        "event",
        "deployment",
        "--service",
        "checkout",
        "--env",
        "production",
        "--version",
        "1.4.0",
        "--commit",
        "3f2c1a9",
    ];
    let first = s.cli(&args, Some(ADMIN));
    assert!(first.status.success(), "{}", stderr(&first));
    std::thread::sleep(Duration::from_millis(20));
    let second = s.cli(&args, Some(ADMIN));
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(stdout(&first).contains("checkout/production/1.4.0/3f2c1a9"), "{}", stdout(&first));
    assert!(!stdout(&second).contains("created"), "{}", stdout(&second));
    let (_, v) = s.get("/api/v1/timeline?from=1d").await;
    let deployments: Vec<_> =
        v["entries"].as_array().expect("entries").iter().filter(|e| e["type"] == "deployment").collect();
    assert_eq!(deployments.len(), 1, "{v}");
}

/// Item 6: SIGINT right after a restart, while the engine restores a replica that died with
/// the old control plane, stops that replica too (`--stop-replicas-on-exit`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_restore_stops_the_restored_replica() {
    let mut p = Platform::start(json!({"strategy": "rolling"}), 1).await;
    p.release("1.0.0", "");
    let out = p.deploy("1.0.0", "dev", &[], ADMIN);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let data = p.db.dir.path().to_owned();
    // The control plane dies, and its replica with it: the next start must restore it.
    p.server.kill();
    crate::harness::reap(&data);
    eventually_sync(|| replicas_of(&data).is_empty());
    let mut restarted = crate::harness::Server::start_on(&p.db, &[]);
    // The moment the restored replica's process exists, before it is healthy: its start is
    // in flight.
    for _ in 0..1000 {
        if !replicas_of(&data).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = rustix::process::Pid::from_raw(restarted.child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    let status = restarted.child.wait().expect("exits");
    assert!(status.success(), "{status:?}");
    // Nothing of ours may outlive it (a start that was in flight included).
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(replicas_of(&data), Vec::<u32>::new(), "a replica outlived the server");
}

fn eventually_sync(check: impl FnMut() -> bool) {
    assert!(pave_testkit::wait_until(Duration::from_secs(10), check), "never happened");
}

/// Item 13: terminal escape bytes stored in descriptions, contacts and token names are shown
/// escaped by every table printer, never sent raw.
#[tokio::test]
async fn table_printers_escape_terminal_control_bytes() {
    let (s, _db) = start().await;
    let evil = "x\u{1b}]0;owned\u{7}\u{1b}[2Jy";
    let docs = json!({"documents": [
        {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "platform", "contact": evil}},
        {"kind": "Environment", "metadata": {"name": "dev"}, "spec": {"order": 1}},
        {"kind": "Service", "metadata": {"name": "api"}, "spec": {"owner": "core", "description": evil}},
    ]});
    let (st, v) = s.send(Method::POST, "/api/v1/apply", ADMIN, docs).await;
    assert_eq!(st, 200, "{v}");
    let flag = json!({"kind": "Flag", "metadata": {"name": "f"}, "spec": {"description": evil, "environments": {"dev": {"enabled": false}}}});
    let (st, v) = s.send(Method::POST, "/api/v1/flags", ADMIN, flag).await;
    assert_eq!(st, 201, "{v}");
    let token = s.cli(&["flags", "token", "create", evil, "--env", "dev"], Some(ADMIN));
    assert!(token.status.success(), "{}", stderr(&token));
    for args in [
        &["get", "teams"][..],
        &["get", "team", "core"],
        &["get", "service", "api"],
        &["flags", "show", "f"],
        &["flags", "token", "list"],
    ] {
        let out = s.cli(args, Some(ADMIN));
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(!out.stdout.contains(&0x1b) && !out.stdout.contains(&0x07), "{args:?} printed raw control bytes");
        let text = stdout(&out);
        assert!(text.contains("owned"), "{args:?}: {text}");
    }
}

/// Item 33: `pave get … -o yaml` is YAML that `pave apply` takes back unchanged, lists too.
#[tokio::test]
async fn get_as_yaml_applies_back_unchanged() {
    let (s, _db) = start().await;
    let docs = json!({"documents": [
        {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "platform", "members": ["a@example.com"]}},
        {"kind": "Environment", "metadata": {"name": "dev"}, "spec": {"order": 1}},
        {"kind": "Service", "metadata": {"name": "a", "labels": {"tier": "web"}}, "spec": {"owner": "core"}},
        {"kind": "Service", "metadata": {"name": "b"}, "spec": {"owner": "core"}},
        {"kind": "Service", "metadata": {"name": "api"}, "spec": {"owner": "core", "dependsOn": ["a", "b"], "tier": 1}},
    ]});
    let (st, v) = s.send(Method::POST, "/api/v1/apply", ADMIN, docs).await;
    assert_eq!(st, 200, "{v}");
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, file) in [
        (&["get", "service", "api", "-o", "yaml"][..], "one.yaml"),
        (&["get", "service", "api"], "table.yaml"),
        (&["get", "services", "-o", "yaml"], "all.yaml"),
        (&["get", "teams", "-o", "yaml"], "teams.yaml"),
    ] {
        let out = s.cli(args, Some(ADMIN));
        assert!(out.status.success(), "{}", stderr(&out));
        let path = dir.path().join(file);
        std::fs::write(&path, &out.stdout).expect("write");
        let back = s.cli(&["apply", "-f", path.to_str().expect("path")], Some(ADMIN));
        assert!(back.status.success(), "{args:?}: {}\n{}", stderr(&back), stdout(&out));
        let text = stdout(&back);
        assert!(text.contains("0 created, 0 updated, 0 deleted"), "{args:?} changed something: {text}");
    }
}

/// Item 12: what a replica prints of its secrets is scrubbed from the logs API (a viewer may
/// read logs, never secrets), and the data directory, database, WAL and log files are private.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_scrubbed_and_state_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let p = Platform::start(json!({"strategy": "rolling"}), 1).await;
    let leaky = json!({"documents": [{"kind": "Service", "metadata": {"name": "leaky"}, "spec": {
    "owner": "core",
    "runtime": {
        "command": "/bin/sh",
        "args": ["-c", format!("echo \"connecting with password $DB_PASSWORD\"; exec {} sample", pave_bin())],
        "replicas": 1,
        "healthCheck": {"path": "/healthz", "interval": "200ms", "timeout": "200ms", "healthyThreshold": 1},
        "startTimeout": "5s", "stopTimeout": "3s"
    }}}]});
    let (st, v) = p.server.send(Method::POST, "/api/v1/apply", ADMIN, leaky).await;
    assert_eq!(st, 200, "{v}");
    let value = "s3cr3t-Hunter2-value";
    let out = crate::harness::cli_stdin(
        &["secret", "set", "leaky", "DB_PASSWORD", "--env", "dev"],
        &p.server.url,
        Some(ADMIN),
        value.as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let art = tempfile::tempdir().expect("tempdir");
    std::fs::write(art.path().join("sample.env"), "").expect("write");
    let art_path = art.path().to_str().expect("path");
    let out = p.server.cli(
        &["release", "create", "leaky", "--version", "1.0.0", "--artifact", art_path, "--commit", "abcdef1"],
        Some(ADMIN),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = p.server.cli(&["deploy", "leaky", "1.0.0", "--env", "dev"], Some(ADMIN));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    let viewer = p.server.token("vic", "viewer").await;
    let (st, body, _) =
        p.server.request(Method::GET, "/api/v1/services/leaky/environments/dev/logs", Some(&viewer), None).await;
    assert_eq!(st, 200, "{body}");
    let text = body.as_str().expect("text").to_owned();
    assert!(text.contains("connecting with password <redacted DB_PASSWORD>"), "{text}");
    assert!(!text.contains(value), "{text}");
    let out = p.server.cli(&["logs", "leaky", "--env", "dev"], Some(&viewer));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains(value) && stdout(&out).contains("<redacted DB_PASSWORD>"), "{}", stdout(&out));

    // Following: a new value set meanwhile rolls the replica, which prints it; the stream
    // shows it redacted too.
    let mut follow = p
        .server
        .http
        .get(format!("{}/api/v1/services/leaky/environments/dev/logs?follow=true", p.server.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("follow");
    let newer = "an0ther-Hunter3-value";
    let out = crate::harness::cli_stdin(
        &["secret", "set", "leaky", "DB_PASSWORD", "--env", "dev"],
        &p.server.url,
        Some(ADMIN),
        newer.as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut streamed = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !streamed.contains("<redacted DB_PASSWORD (revision") && std::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), follow.chunk()).await {
            Ok(Ok(Some(bytes))) => streamed.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(_) => break,
            Err(_) => {}
        }
    }
    assert!(streamed.contains("connecting with password <redacted DB_PASSWORD (revision "), "{streamed}");
    assert!(!streamed.contains(value) && !streamed.contains(newer), "{streamed}");

    let mode = |path: &std::path::Path| std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777;
    let data = p.db.dir.path();
    assert_eq!(mode(data), 0o700, "data directory");
    let logs = data.join("logs/leaky/dev/1.0.0");
    assert_eq!(mode(&logs), 0o700, "log directory");
    assert_eq!(mode(&logs.join("r0.log")), 0o600, "log file");
    if p.db.options.database_url.is_none() {
        for f in ["pave.db", "pave.db-wal", "pave.db-shm"] {
            assert_eq!(mode(&data.join(f)), 0o600, "{f}");
        }
    }
}

/// Item 33: an admin may approve their own rollout (as `rollout approve --help` says), and the
/// event records it as self-approved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_approving_their_own_rollout_is_recorded_as_such() {
    let p = Platform::start(json!({"strategy": "rolling"}), 1).await;
    p.release("1.0.0", "");
    assert!(p.deploy("1.0.0", "dev", &[], ADMIN).status.success());
    let out = p.deploy("1.0.0", "prod", &[], ADMIN);
    assert!(stdout(&out).contains("awaiting-approval"), "{}{}", stdout(&out), stderr(&out));
    let out = p.server.cli(&["rollout", "approve", "shop", "--env", "prod"], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, v) = p.server.get("/api/v1/events?kind=deployment.approved").await;
    assert_eq!(v["events"][0]["data"]["selfApproved"], true, "{v}");
    let help = p.server.cli(&["rollout", "approve", "--help"], None);
    assert!(stdout(&help).contains("or an admin"), "{}", stdout(&help));
}

/// Item 35: a log written to a file (or CI's transcript) has no colour codes.
#[tokio::test]
async fn logs_to_a_file_have_no_colour_codes() {
    let db = pave_store::testing::fresh().await;
    let log = db.dir.path().join("serve.log");
    let mut s = crate::harness::Server::start_with(&db, &[], &[("NO_COLOR", "")], Some(&log));
    let (st, _) = s.get("/api/v1/teams").await;
    assert_eq!(st, 200);
    s.stop();
    let text = std::fs::read(&log).expect("log");
    assert!(!text.is_empty(), "the server logged nothing at debug level");
    assert!(!text.contains(&0x1b), "colour codes in a redirected log: {}", String::from_utf8_lossy(&text));
}

/// Output piped into a reader that stops early (`pave events | head`) ends quietly with the
/// SIGPIPE status, not with a panic message.
#[tokio::test]
async fn a_closed_pipe_ends_the_output_quietly() {
    let (s, _db) = start().await;
    let teams: Vec<_> = (0..1500)
        .map(|i| json!({"kind": "Team", "metadata": {"name": format!("team-{i:04}")}, "spec": {"type": "platform"}}))
        .collect();
    let (st, v) = s.send(Method::POST, "/api/v1/apply", ADMIN, json!({"documents": teams})).await;
    assert_eq!(st, 200, "{v}");
    let out = Command::new("bash")
        .args([
            "-c",
            &format!("{} events --limit 1000 | head -c 10 >/dev/null; echo \"status ${{PIPESTATUS[0]}}\"", pave_bin()),
        ])
        .env("PAVE_URL", &s.url)
        .env("PAVE_TOKEN", ADMIN)
        .output()
        .expect("bash");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(stdout(&out).trim(), "status 141", "{err}");
}

/// The value of `name` in the environment process `pid` was executed with.
fn environ_var(pid: u32, name: &str) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).expect("read environ");
    let prefix = format!("{name}=");
    env.split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned()))
}

/// Item 36 (memory): `pave serve` runs with one malloc arena. glibc reads `MALLOC_ARENA_MAX`
/// only at exec, so the server executes itself again with it set: the process it became
/// (same pid, same command line) has it in its environment. A value the user set is kept, and
/// the replicas it starts do not inherit it (their environment is cleared).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_with_one_malloc_arena() {
    let p = Platform::start(json!({"strategy": "rolling"}), 1).await;
    let pid = p.server.child.id();
    assert_eq!(environ_var(pid, "MALLOC_ARENA_MAX").as_deref(), Some("1"));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    let argv: Vec<&[u8]> = cmdline.split(|&b| b == 0).filter(|a| !a.is_empty()).collect();
    assert_eq!(argv[0], pave_bin().as_bytes(), "argv[0] is kept");
    assert_eq!(argv[1], b"serve", "the arguments are kept");
    assert!(argv.contains(&&b"--stop-replicas-on-exit"[..]), "the arguments are kept");

    p.release("1.0.0", "");
    let out = p.deploy("1.0.0", "dev", &[], ADMIN);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let replicas = replicas_of(p.db.dir.path());
    assert_eq!(replicas.len(), 1, "{replicas:?}");
    for replica in replicas {
        assert_eq!(environ_var(replica, "MALLOC_ARENA_MAX"), None, "replica {replica} inherited it");
    }

    // A value the user chose stays.
    let db = pave_store::testing::fresh().await;
    let user = crate::harness::Server::start_with(&db, &[], &[("MALLOC_ARENA_MAX", "3")], None);
    assert_eq!(environ_var(user.child.id(), "MALLOC_ARENA_MAX").as_deref(), Some("3"));
}
