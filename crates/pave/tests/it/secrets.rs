//! The secrets store for real: values set through the CLI (standard input), sealed under a
//! master key, injected into the replicas the engine starts, rolled into running replicas
//! without dropping a request, and never seen again — not in the server's debug log, the
//! event log, the audit trail, API responses, or any file of the data directory.

use std::time::Duration;

use pave_store::testing::fresh;
use reqwest::Method;
use serde_json::{Value, json};

use crate::deploy::{Load, service};
use crate::harness::{ADMIN, Server, cli_stdin, reap, stderr, stdout};

fn var(pid: u64, name: &str) -> Option<String> {
    pave_testkit::environ(u32::try_from(pid).expect("a pid fits u32"))
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

async fn replica_pids(server: &Server) -> Vec<u64> {
    let (s, v) = server.get("/api/v1/services/shop/environments/dev/status").await;
    assert_eq!(s, 200, "{v}");
    let mut pids: Vec<u64> =
        v["replicas"].as_array().expect("replicas").iter().filter_map(|r| r["pid"].as_u64()).collect();
    pids.sort_unstable();
    pids
}

/// Waits until the two desired replicas all see `value` (or no variable, for `None`).
async fn wait_for_value(server: &Server, value: Option<&str>) -> Vec<u64> {
    for _ in 0..200 {
        let pids = replica_pids(server).await;
        if pids.len() == 2 && pids.iter().all(|p| var(*p, "DB_PASSWORD").as_deref() == value) {
            return pids;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("replicas never ran with DB_PASSWORD={value:?}: {:?}", replica_pids(server).await);
}

/// Waits until the engine has finished `n` rolls (a replica set can show the new value on
/// every pid for a moment mid-roll, while one slot is between its stop and its start).
async fn wait_rolled(server: &Server, n: usize) {
    for _ in 0..200 {
        let (_, v) = server.get("/api/v1/events?kind=replicas.rolled&limit=100").await;
        if v["events"].as_array().map_or(0, Vec::len) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("roll {n} never finished");
}

fn set(server: &Server, value: &[u8], token: &str) -> std::process::Output {
    cli_stdin(&["secret", "set", "shop", "DB_PASSWORD", "--env", "dev"], &server.url, Some(token), value)
}

/// Every file under `dir`, as bytes.
fn files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_sealed_injected_rolled_without_downtime_and_never_shown() {
    let db = fresh().await;
    let log = db.dir.path().join("server.log");
    let mut server = Server::start_with(&db, &[], &[], Some(&log));
    let artifacts = tempfile::tempdir().expect("tempdir");
    let docs = json!({"documents": [
        {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "platform"}},
        {"kind": "Environment", "metadata": {"name": "dev"}, "spec": {"order": 1}},
        service(json!({"strategy": "rolling"}), 2),
    ]});
    let (s, v) = server.send(Method::POST, "/api/v1/apply", ADMIN, docs).await;
    assert_eq!(s, 200, "{v}");
    std::fs::write(artifacts.path().join("sample.env"), "").expect("write");
    let out = server.cli(
        &["release", "create", "shop", "--version", "1.0.0", "--artifact", artifacts.path().to_str().expect("utf-8")],
        Some(ADMIN),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // A secret set before the first deployment reaches the replicas when they start.
    let first = format!("pw-{}-first", std::process::id());
    let out = set(&server, format!("{first}\n").as_bytes(), ADMIN);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("secret DB_PASSWORD of shop in dev set: version 1"), "{}", stdout(&out));
    let out = server.cli(&["deploy", "shop", "1.0.0", "--env", "dev"], Some(ADMIN));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let pids_v1 = wait_for_value(&server, Some(&first)).await;

    // A change rolls the running replicas, one at a time behind an extra one: no request
    // fails meanwhile.
    let url =
        server.get("/api/v1/services/shop/environments/dev/status").await.1["url"].as_str().expect("url").to_owned();
    let load = Load::start(&url, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = format!("pw-{}-second", std::process::id());
    let out = set(&server, second.as_bytes(), ADMIN);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("version 2") && stdout(&out).contains("restart"), "{}", stdout(&out));
    wait_rolled(&server, 1).await;
    let pids_v2 = wait_for_value(&server, Some(&second)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (sent, failed) = load.finish().await;
    assert!(sent > 50, "{sent}");
    assert_eq!(failed, 0, "{failed} of {sent} requests failed while the secret rolled");
    assert!(pids_v2.iter().all(|p| !pids_v1.contains(p)), "{pids_v1:?} -> {pids_v2:?}");
    let (_, events) = server.get("/api/v1/events?limit=1000").await;
    let events = events["events"].as_array().expect("events").clone();
    let rolled = events.iter().find(|e| e["kind"] == "replicas.rolled").expect("a replicas.rolled event");
    assert_eq!(rolled["data"]["replicas"], 2, "{rolled}");

    // Listing shows names, versions, who and when.
    let out = server.cli(&["secret", "list", "shop"], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    assert!(listed.contains("DB_PASSWORD") && listed.contains(" 2 ") && listed.contains("admin"), "{listed}");
    let (_, listed_json) = server.get("/api/v1/services/shop/secrets?environment=dev").await;
    assert_eq!(listed_json["secrets"][0]["version"], 2, "{listed_json}");

    // Bad input is named and changes nothing; a viewer may not set secrets.
    let viewer = server.token("viewer", "viewer").await;
    for (args, token, input, says) in [
        (vec!["secret", "set", "shop", "db-password", "--env", "dev"], ADMIN, &b"x"[..], "not a secret name"),
        (vec!["secret", "set", "shop", "PORT", "--env", "dev"], ADMIN, &b"x"[..], "runtime sets itself"),
        (
            vec!["secret", "set", "shop", "API_KEY", "--env", "nowhere"],
            ADMIN,
            &b"x"[..],
            "environment \"nowhere\" does not exist",
        ),
        (
            vec!["secret", "set", "nosuch", "API_KEY", "--env", "dev"],
            ADMIN,
            &b"x"[..],
            "service \"nosuch\" does not exist",
        ),
        (vec!["secret", "set", "shop", "API_KEY", "--env", "dev"], ADMIN, &b"\n"[..], "empty"),
        (vec!["secret", "set", "shop", "API_KEY", "--env", "dev"], ADMIN, &b"bad\0value-hidden"[..], "NUL byte"),
        (
            vec!["secret", "set", "shop", "API_KEY", "--env", "dev"],
            viewer.as_str(),
            &b"viewer-value-hidden"[..],
            "needs the developer role",
        ),
        (vec!["secret", "rm", "shop", "API_KEY", "--env", "dev"], ADMIN, &b""[..], "has no secret \"API_KEY\""),
    ] {
        let out = cli_stdin(&args, &server.url, Some(token), input);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("hidden"), "{}", stderr(&out));
    }
    let (s, v, _) =
        server.request(Method::PUT, "/api/v1/services/shop/secrets/API_KEY", Some(ADMIN), Some(&json!("x"))).await;
    assert_eq!(s, 400, "the environment is required: {v}");
    let big = server
        .http
        .put(format!("{}/api/v1/services/shop/secrets/BIG?environment=dev", server.url))
        .bearer_auth(ADMIN)
        .body(vec![b'x'; 70 * 1024])
        .send()
        .await
        .expect("request");
    assert_eq!(big.status(), 413);
    let problem: Value = big.json().await.expect("problem document");
    assert!(problem["type"].as_str().is_some_and(|t| t.ends_with("payload-too-large")), "{problem}");
    assert_eq!(server.get("/api/v1/services/shop/secrets").await.1["secrets"].as_array().map(Vec::len), Some(1));

    // Removing it rolls the replicas again, without the variable.
    let out = server.cli(&["secret", "rm", "shop", "DB_PASSWORD", "--env", "dev"], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    wait_rolled(&server, 2).await;
    wait_for_value(&server, None).await;
    assert_eq!(server.get("/api/v1/services/shop/secrets").await.1["secrets"], json!([]));

    // Nowhere to be seen: events, audit, API answers, the server's debug log, any file of the
    // data directory (the database holds only sealed values).
    let (_, events) = server.get("/api/v1/events?limit=1000").await;
    let (_, audit) = server.get("/api/v1/audit?limit=1000").await;
    let audit_text = audit.to_string();
    assert!(audit_text.contains("PUT /api/v1/services/{name}/secrets/{secret}"), "the sets are audited");
    assert!(audit_text.contains("\"denied\""), "the viewer's attempt is audited");
    let set_events: Vec<&Value> =
        events["events"].as_array().expect("events").iter().filter(|e| e["kind"] == "secret.set").collect();
    assert_eq!(set_events.len(), 2);
    server.stop();
    let mut seen =
        vec![("events".to_owned(), events.to_string().into_bytes()), ("audit".to_owned(), audit_text.into_bytes())];
    seen.push(("listing".to_owned(), format!("{listed}{listed_json}").into_bytes()));
    for (path, bytes) in files(db.dir.path()) {
        seen.push((path.display().to_string(), bytes));
    }
    assert!(seen.iter().any(|(p, b)| p.ends_with("server.log") && contains(b, "DEBUG")), "the log ran at debug level");
    for (what, bytes) in &seen {
        for value in [&first, &second, "viewer-value-hidden", "value-hidden"] {
            assert!(!contains(bytes, value), "{value:?} appears in {what}");
        }
    }
    let key = db.dir.path().join("master.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).expect("key file").permissions().mode() & 0o777, 0o600);

    // A secret sealed under one key: a server started with another key refuses to start,
    // naming both, instead of failing to rebuild (and stopping) the replicas.
    let mut server = Server::start_with(&db, &[], &[], None);
    let out = set(&server, b"third-value", ADMIN);
    assert!(out.status.success(), "{}", stderr(&out));
    server.stop();
    let other = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let status = Server::try_start(&db, &[], &[("PAVE_MASTER_KEY", other)], Some(&log)).err().expect("refused");
    assert!(!status.success());
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("sealed under master key k-"), "{}", &text[text.len().saturating_sub(2000)..]);

    // A rotation: the new key as PAVE_MASTER_KEY, the old one in PAVE_MASTER_KEY_PREVIOUS. The
    // server seals every secret again under the new key; after that the old key can go.
    let old_key = std::fs::read_to_string(&key).expect("key file");
    let mut server =
        Server::start_with(&db, &[], &[("PAVE_MASTER_KEY", other), ("PAVE_MASTER_KEY_PREVIOUS", old_key.trim())], None);
    let listed = server.get("/api/v1/services/shop/secrets").await.1;
    let new_id = listed["secrets"][0]["keyId"].as_str().expect("key id").to_owned();
    let (_, resealed) = server.get("/api/v1/events?kind=secrets.resealed").await;
    assert_eq!(resealed["events"][0]["data"]["count"], 1, "{resealed}");
    assert_eq!(resealed["events"][0]["data"]["to"], new_id.as_str());
    server.stop();
    let mut server = Server::start_with(&db, &[], &[("PAVE_MASTER_KEY", other)], None);
    assert_eq!(server.get("/api/v1/services/shop/secrets").await.1["secrets"][0]["version"], 3);
    server.stop();
    reap(db.dir.path());
}

/// A secret that makes the service fail to start: the extra replica started first fails its
/// health check, so the running replicas are untouched and keep serving; the failure is an
/// event whose reason (the replica's last log lines) has the value scrubbed out; a corrected
/// value rolls through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_that_breaks_startup_changes_nothing_and_its_value_stays_out_of_the_failure() {
    let db = fresh().await;
    let mut server = Server::start_on(&db, &[]);
    let artifacts = tempfile::tempdir().expect("tempdir");
    let docs = json!({"documents": [
        {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "platform"}},
        {"kind": "Environment", "metadata": {"name": "dev"}, "spec": {"order": 1}},
        service(json!({"strategy": "rolling"}), 2),
    ]});
    assert_eq!(server.send(Method::POST, "/api/v1/apply", ADMIN, docs).await.0, 200);
    std::fs::write(artifacts.path().join("sample.env"), "").expect("write");
    let dir = artifacts.path().to_str().expect("utf-8");
    let out = server.cli(&["release", "create", "shop", "--version", "1.0.0", "--artifact", dir], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.cli(&["deploy", "shop", "1.0.0", "--env", "dev"], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    let before = replica_pids(&server).await;
    assert_eq!(before.len(), 2);

    // The sample refuses a fail rate that is not a number, printing it: as an application
    // printing a connection string with a wrong password would.
    let bad = format!("not-a-rate-{}", std::process::id());
    let set_rate = |value: &str| {
        cli_stdin(
            &["secret", "set", "shop", "SAMPLE_FAIL_RATE", "--env", "dev"],
            &server.url,
            Some(ADMIN),
            value.as_bytes(),
        )
    };
    assert!(set_rate(&bad).status.success());
    let mut failed = Value::Null;
    for _ in 0..200 {
        let (_, v) = server.get("/api/v1/events?kind=replicas.roll-failed").await;
        if let Some(e) = v["events"].as_array().and_then(|a| a.first()) {
            failed = e.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reason = failed["data"]["reason"].as_str().unwrap_or_else(|| panic!("no roll-failed event: {failed}"));
    assert!(reason.contains("<redacted SAMPLE_FAIL_RATE>"), "{reason}");
    assert!(!failed.to_string().contains(&bad), "{failed}");
    assert_eq!(replica_pids(&server).await, before, "the running replicas were not touched");
    let url =
        server.get("/api/v1/services/shop/environments/dev/status").await.1["url"].as_str().expect("url").to_owned();
    assert_eq!(reqwest::get(&url).await.expect("router answers").status(), 200);

    // A corrected value (a new revision) rolls at once, without waiting out the backoff.
    assert!(set_rate("0").status.success());
    wait_rolled(&server, 1).await;
    let after = replica_pids(&server).await;
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|p| var(*p, "SAMPLE_FAIL_RATE").as_deref() == Some("0")), "{after:?}");
    let (_, all) = server.get("/api/v1/events?limit=1000").await;
    assert!(!all.to_string().contains(&bad), "the bad value is nowhere in the event log");
    server.stop();
    reap(db.dir.path());
}
