//! The HTTP API: catalog CRUD, auth, audit, events, bad input, health and metrics.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ADMIN, Server, start};

fn team(name: &str) -> Value {
    json!({"kind": "Team", "metadata": {"name": name}, "spec": {"type": "platform", "members": ["a@example.com"]}})
}

fn service(name: &str, owner: &str) -> Value {
    json!({"kind": "Service", "metadata": {"name": name}, "spec": {"owner": owner, "tier": 2}})
}

#[tokio::test]
async fn catalog_crud() {
    let (s, _db) = start().await;
    let (st, v) = s.send(Method::POST, "/api/v1/teams", ADMIN, team("core")).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["spec"]["type"], "platform");
    assert!(v["status"]["createdAt"].is_string());
    let (st, v) = s.send(Method::POST, "/api/v1/teams", ADMIN, team("core")).await;
    assert_eq!((st, v["type"].as_str()), (409, Some("https://pave.dev/problems/conflict")), "{v}");

    let (st, v) = s.send(Method::POST, "/api/v1/services", ADMIN, service("api", "core")).await;
    assert_eq!(st, 201, "{v}");
    let mut changed = service("api", "core");
    changed["spec"]["tier"] = json!(1);
    let (st, v) = s.send(Method::PUT, "/api/v1/services/api", ADMIN, changed).await;
    assert_eq!((st, &v["spec"]["tier"]), (200, &json!(1)), "{v}");
    let (st, v) = s.get("/api/v1/services/api").await;
    assert_eq!((st, &v["spec"]["tier"]), (200, &json!(1)));
    let (st, v) = s.get("/api/v1/services?owner=core").await;
    assert_eq!((st, v["items"].as_array().map(Vec::len)), (200, Some(1)));

    let (st, v) = s
        .send(
            Method::POST,
            "/api/v1/environments",
            ADMIN,
            json!({"kind": "Environment", "metadata": {"name": "prod"}, "spec": {"order": 3, "production": true}}),
        )
        .await;
    assert_eq!(st, 201, "{v}");

    // A team that owns a service cannot go; the service can, then the team.
    let (st, v, _) = s.request(Method::DELETE, "/api/v1/teams/core", Some(ADMIN), None).await;
    assert_eq!(st, 409, "{v}");
    assert!(v["detail"].as_str().unwrap_or("").contains("still owns service \"api\""), "{v}");
    let (st, _, _) = s.request(Method::DELETE, "/api/v1/services/api", Some(ADMIN), None).await;
    assert_eq!(st, 204);
    let (st, _, _) = s.request(Method::DELETE, "/api/v1/teams/core", Some(ADMIN), None).await;
    assert_eq!(st, 204);
    let (st, v) = s.get("/api/v1/teams/core").await;
    assert_eq!((st, v["type"].as_str()), (404, Some("https://pave.dev/problems/not-found")));
}

#[tokio::test]
async fn bad_input_names_the_field_and_stores_nothing() {
    let db = pave_store::testing::fresh().await;
    let s = Server::start_on(&db, &["--max-body-bytes", "4096"]);
    s.send(Method::POST, "/api/v1/teams", ADMIN, team("core")).await;

    // Unknown field, wrong type, bad name, dangling reference.
    let mut doc = service("api", "core");
    doc["spec"]["teir"] = json!(1);
    let (st, v) = s.send(Method::POST, "/api/v1/services", ADMIN, doc).await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["errors"][0]["field"], "spec.teir", "{v}");
    let mut doc = service("api", "core");
    doc["spec"]["tier"] = json!("high");
    let (st, v) = s.send(Method::POST, "/api/v1/services", ADMIN, doc).await;
    assert_eq!((st, v["errors"][0]["field"].as_str()), (422, Some("spec.tier")), "{v}");
    let (st, v) = s.send(Method::POST, "/api/v1/services", ADMIN, service("Not_DNS", "core")).await;
    assert_eq!((st, v["errors"][0]["field"].as_str()), (422, Some("metadata.name")), "{v}");
    let (st, v) = s.send(Method::POST, "/api/v1/services", ADMIN, service("api", "ghost")).await;
    assert_eq!(st, 422, "{v}");
    assert!(v["detail"].as_str().unwrap_or("").contains("team \"ghost\" does not exist"), "{v}");

    // Malformed JSON.
    let resp = s
        .http
        .post(format!("{}/api/v1/services", s.url))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let v: Value = resp.json().await.expect("problem");
    assert!(v["detail"].as_str().unwrap_or("").starts_with("malformed JSON"), "{v}");

    // Over the body limit.
    let big = json!({"documents": (0..200).map(|i| service(&format!("s{i}"), "core")).collect::<Vec<_>>()});
    let (st, v) = s.send(Method::POST, "/api/v1/apply", ADMIN, big).await;
    assert_eq!((st, v["type"].as_str()), (413, Some("https://pave.dev/problems/payload-too-large")), "{v}");

    // A batch with one bad document applies nothing, and says which document.
    let batch =
        json!({"documents": [service("good", "core"), {"kind": "Service", "metadata": {"name": "bad"}, "spec": {}}]});
    let (st, v) = s.send(Method::POST, "/api/v1/apply", ADMIN, batch).await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["errors"][0]["document"], 1, "{v}");
    let (_, v) = s.get("/api/v1/services").await;
    assert_eq!(v["items"], json!([]), "nothing stored: {v}");
}

#[tokio::test]
async fn auth_roles_and_revocation() {
    let (s, _db) = start().await;
    // No token: refused everywhere under /api, but health and metrics are open.
    let (st, v, _) = s.request(Method::GET, "/api/v1/services", None, None).await;
    assert_eq!((st, v["type"].as_str()), (401, Some("https://pave.dev/problems/unauthorized")));
    let (st, _, _) = s.request(Method::GET, "/api/v1/services", Some("pave_wrong"), None).await;
    assert_eq!(st, 401);
    assert_eq!(s.request(Method::GET, "/healthz", None, None).await.0, 200);

    let viewer = s.token("reader", "viewer").await;
    let dev = s.token("dev", "developer").await;
    assert_eq!(s.request(Method::GET, "/api/v1/services", Some(&viewer), None).await.0, 200);
    let (st, v) = s.send(Method::POST, "/api/v1/teams", &viewer, team("core")).await;
    assert_eq!(st, 403, "{v}");
    // Developers change services but not teams, even through apply.
    let (st, _) = s.send(Method::POST, "/api/v1/teams", &dev, team("core")).await;
    assert_eq!(st, 403);
    let (st, v) = s.send(Method::POST, "/api/v1/apply", &dev, json!({"documents": [team("core")]})).await;
    assert_eq!(st, 403, "{v}");
    assert!(v["detail"].as_str().unwrap_or("").contains("team/core"), "{v}");
    s.send(Method::POST, "/api/v1/teams", ADMIN, team("core")).await;
    let (st, _) = s.send(Method::POST, "/api/v1/services", &dev, service("api", "core")).await;
    assert_eq!(st, 201);
    // Tokens are admin business.
    assert_eq!(s.request(Method::GET, "/api/v1/tokens", Some(&dev), None).await.0, 403);
    assert_eq!(s.request(Method::GET, "/api/v1/audit", Some(&dev), None).await.0, 403);

    // Revoked tokens stop working at once.
    let (_, tokens) = s.get("/api/v1/tokens").await;
    let id = tokens["tokens"].as_array().expect("tokens").iter().find(|t| t["name"] == "dev").expect("dev token")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(tokens.to_string().find(&dev[5..]).is_none(), "secrets are never listed");
    let (st, _, _) = s.request(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(ADMIN), None).await;
    assert_eq!(st, 200);
    let (st, v, _) = s.request(Method::GET, "/api/v1/services", Some(&dev), None).await;
    assert_eq!(st, 401);
    assert!(v["detail"].as_str().unwrap_or("").contains("revoked"), "{v}");
}

#[tokio::test]
async fn every_mutating_request_is_audited() {
    let (s, _db) = start().await;
    let viewer = s.token("reader", "viewer").await;
    let resp = s
        .http
        .post(format!("{}/api/v1/teams", s.url))
        .bearer_auth(ADMIN)
        .header("x-request-id", "trace-me-123")
        .json(&team("core"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-request-id"], "trace-me-123");
    s.send(Method::POST, "/api/v1/teams", &viewer, team("other")).await; // denied: role
    s.request(Method::DELETE, "/api/v1/teams/core", None, None).await; // denied: no token
    s.send(Method::POST, "/api/v1/services", ADMIN, service("x", "ghost")).await; // failed: invalid
    s.get("/api/v1/teams").await; // reads are not audited

    let (st, v) = s.get("/api/v1/audit?limit=10").await;
    assert_eq!(st, 200);
    let entries = v["entries"].as_array().expect("entries");
    let summary: Vec<(String, String, String, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or("").to_owned(),
                e["action"].as_str().unwrap_or("").to_owned(),
                e["outcome"].as_str().unwrap_or("").to_owned(),
                e["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let expect = [
        ("admin", "POST /api/v1/services", "failed", 422),
        ("anonymous", "DELETE /api/v1/teams/{name}", "denied", 401),
        ("reader", "POST /api/v1/teams", "denied", 403),
        ("admin", "POST /api/v1/teams", "allowed", 201),
        ("admin", "POST /api/v1/tokens", "allowed", 201),
    ];
    let expect: Vec<(String, String, String, u64)> =
        expect.iter().map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), *d)).collect();
    assert_eq!(summary, expect);
    assert_eq!(entries[3]["requestId"], "trace-me-123");
    assert_eq!(entries[3]["target"], "/api/v1/teams");
    assert!(!v.to_string().contains("pave_"), "no secret in the audit trail: {v}");
    let (_, denied) = s.get("/api/v1/audit?outcome=denied").await;
    assert_eq!(denied["entries"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn event_log_pages_and_filters() {
    let (s, _db) = start().await;
    let docs: Vec<Value> =
        std::iter::once(team("core")).chain((0..25).map(|i| service(&format!("svc-{i:02}"), "core"))).collect();
    let (st, v) = s.send(Method::POST, "/api/v1/apply", ADMIN, json!({"documents": docs})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["events"], 26);
    let mut after = 0;
    let mut subjects = Vec::new();
    loop {
        let (st, page) = s.get(&format!("/api/v1/events?after={after}&kind=service.created&limit=10")).await;
        assert_eq!(st, 200);
        let events = page["events"].as_array().expect("events").clone();
        if events.is_empty() {
            break;
        }
        after = page["next"].as_i64().expect("next");
        subjects.extend(events.iter().map(|e| e["subject"].as_str().unwrap_or("").to_owned()));
        assert!(events.iter().all(|e| e["actor"] == "admin" && e["requestId"].is_string()));
    }
    assert_eq!(subjects.len(), 25);
    assert_eq!(subjects[0], "service/svc-00");
    let (_, v) = s.get("/api/v1/events?kind=token.*,team.*").await;
    let kinds: Vec<&str> = v["events"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["token.created", "team.created"]);
    let (st, v) = s.get("/api/v1/events?limit=0").await;
    assert_eq!(st, 400, "{v}");
    let (st, _) = s.get("/api/v1/events?after=abc").await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    let (s, _db) = start().await;
    let (st, v, _) = s.request(Method::GET, "/readyz", None, None).await;
    assert_eq!((st, v["status"].as_str()), (200, Some("ready")), "{v}");
    s.get("/api/v1/services").await;
    let text = s.http.get(format!("{}/metrics", s.url)).send().await.expect("metrics").text().await.expect("text");
    assert!(
        text.contains("pave_http_requests_total{method=\"GET\",route=\"/api/v1/services\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(text.contains(
        "pave_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/services\",le=\"+Inf\"} 1"
    ));
    assert!(text.contains("pave_db_pool_connections{"));

    // The OpenAPI document needs no token, lists the SDK routes too, and every operation it
    // lists is served.
    let (st, doc, _) = s.request(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(st, 200, "{doc}");
    let paths = doc["paths"].as_object().expect("paths");
    for sdk in ["/api/client/features", "/api/client/register", "/api/frontend", "/ofrep/v1/evaluate/flags/{key}"] {
        assert!(paths.contains_key(sdk), "{sdk} is not documented");
    }
    assert!(paths.len() >= 14, "{}", paths.len());
    for (path, ops) in paths {
        let concrete = path.replace("{name}", "nope").replace("{id}", "nope");
        for method in ops.as_object().expect("ops").keys().filter(|m| *m != "parameters") {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let body = (m == Method::POST || m == Method::PUT).then(|| json!({}));
            let (st, v, _) = s.request(m.clone(), &concrete, Some(ADMIN), body.as_ref()).await;
            let unmatched = st == 404 && v["detail"].as_str().is_some_and(|d| d.starts_with("no route"));
            assert!(!unmatched && st != 405, "{method} {path} is documented but not served: {st} {v}");
        }
    }
}

#[tokio::test]
async fn token_secrets_are_stored_only_as_hashes() {
    let db = pave_store::testing::fresh().await;
    let s = Server::start_on(&db, &[]);
    let secret = s.token("ci", "developer").await;
    if db.options.database_url.is_some() {
        return; // The file check below is for the embedded store; PostgreSQL keeps the same rows.
    }
    // Every file of the data directory (the embedded database, WAL included, and the
    // router's files), however deep: the secret appears nowhere.
    let mut files = Vec::new();
    let mut dirs = vec![db.dir.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("data dir") {
            let entry = entry.expect("entry");
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    assert!(files.iter().any(|f| f.ends_with("router/routes.json") || f.ends_with("pave.db")), "{files:?}");
    for file in files {
        let bytes = std::fs::read(&file).expect("read");
        for needle in [secret.as_bytes(), &secret.as_bytes()[5..], ADMIN.as_bytes()] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle), "a token secret is stored in clear");
        }
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(crate::harness::pave_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--log", "info"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("PAVE_BOOTSTRAP_TOKEN", ADMIN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let first = lines.next().expect("a log line").expect("utf-8");
    let v: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("not JSON ({e}): {first}"));
    assert_eq!(v["level"], "INFO", "{v}");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn services_carry_a_validated_runtime_spec() {
    let (s, _db) = start().await;
    s.send(Method::POST, "/api/v1/teams", ADMIN, team("core")).await;
    let mut svc = service("web", "core");
    svc["spec"]["runtime"] = json!({"command": "bin/web", "args": ["--quiet"], "replicas": 3, "env": {"MODE": "prod"},
        "healthCheck": {"path": "/ready", "interval": "2s", "timeout": "1s", "healthyThreshold": 3}, "stopTimeout": "20s"});
    let (st, v) = s.send(Method::POST, "/api/v1/services", ADMIN, svc.clone()).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["spec"]["runtime"]["replicas"], 3);
    assert_eq!(v["spec"]["runtime"]["portEnv"], "PORT", "defaults are filled in");
    svc["spec"]["runtime"]["healthCheck"]["timeout"] = json!("5s");
    svc["spec"]["runtime"]["stopTimeout"] = json!("soon");
    let (st, v) = s.send(Method::PUT, "/api/v1/services/web", ADMIN, svc).await;
    assert_eq!(st, 422, "{v}");
    let fields: Vec<&str> =
        v["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["spec.runtime.healthCheck.timeout", "spec.runtime.stopTimeout"]);
    let (_, v) = s.get("/api/v1/services/web").await;
    assert_eq!(v["spec"]["runtime"]["healthCheck"]["timeout"], "1s", "the refused update changed nothing");
}
