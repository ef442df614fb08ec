//! The OpenAPI document against what the server really answers: a fixture populates a real
//! `pave serve` (teams, services, environments, releases and their scans, a deployment, delivery
//! facts, flags, segments, SDK tokens and clients, tokens, secrets) and calls every operation;
//! each response must have a documented status and media type, and every field in it must be
//! documented in that operation's response schema, through nested objects and arrays. An
//! object documented as free-form (`additionalProperties`) or a value of any type (`{}`) may
//! hold anything; `type: object` alone documents no field. That served routes and documented
//! operations are the same set is checked in `pave-server` (`openapi.rs`), from the route table
//! the router is built from.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::deploy::Platform;
use crate::harness::{ADMIN, Server};

/// A request body.
enum Body {
    None,
    Json(Value),
    Bytes(&'static str, Vec<u8>),
}

/// Calls operations and checks their answers against the document.
struct Checker<'a> {
    server: &'a Server,
    doc: Value,
    problems: Vec<String>,
    exercised: BTreeSet<(String, String)>,
}

impl<'a> Checker<'a> {
    async fn new(server: &'a Server) -> Checker<'a> {
        let (st, doc, _) = server.request(Method::GET, "/api/v1/openapi.json", None, None).await;
        assert_eq!(st, 200, "{doc}");
        Checker { server, doc, problems: Vec::new(), exercised: BTreeSet::new() }
    }

    /// `method concrete` as the operation `method template`, with `token`; returns the
    /// status and the JSON body (`Null` when there is none or it is not JSON).
    async fn call(&mut self, method: Method, template: &str, concrete: &str, token: &str, body: Body) -> (u16, Value) {
        let mut req =
            self.server.http.request(method.clone(), format!("{}{concrete}", self.server.url)).bearer_auth(token);
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Bytes(content_type, bytes) => req.header("content-type", content_type).body(bytes),
        };
        let resp = req.send().await.expect("request reaches the server");
        let status = resp.status().as_u16();
        let media = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_owned());
        let text = resp.text().await.expect("body");
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let op = format!("{method} {template} ({status})");
        self.exercised.insert((method.as_str().to_lowercase(), template.to_owned()));
        let Some(operation) = self.doc["paths"][template].get(method.as_str().to_lowercase()).cloned() else {
            self.problems.push(format!("{method} {template} is not documented"));
            return (status, value);
        };
        let Some(response) = operation["responses"].get(status.to_string()).cloned() else {
            self.problems.push(format!("{op}: status {status} is not documented: {text}"));
            return (status, value);
        };
        let response = self.resolve(&response);
        match (media.as_deref(), text.is_empty()) {
            (_, true) | (None, _) => {}
            (Some(media), false) => match response["content"].get(media) {
                None => self.problems.push(format!("{op}: a {media} body is not documented")),
                Some(content) if media.ends_with("json") => {
                    let schema = content.get("schema").cloned().unwrap_or(Value::Null);
                    if schema.is_null() {
                        self.problems.push(format!("{op}: the {media} body has no schema"));
                    } else {
                        let mut found = Vec::new();
                        self.check(&schema, &value, "$", &mut found);
                        self.problems.extend(found.into_iter().map(|f| format!("{op}: {f}")));
                    }
                }
                Some(_) => {}
            },
        }
        (status, value)
    }

    async fn get(&mut self, template: &str, concrete: &str) -> Value {
        let (st, v) = self.call(Method::GET, template, concrete, ADMIN, Body::None).await;
        assert!(st < 300, "GET {concrete}: {st} {v}");
        v
    }

    async fn post(&mut self, template: &str, concrete: &str, body: Value) -> Value {
        let (st, v) = self.call(Method::POST, template, concrete, ADMIN, Body::Json(body)).await;
        assert!(st < 300, "POST {concrete}: {st} {v}");
        v
    }

    /// Deploys `shop` `version` to `env`; returns the rollout's id.
    async fn deploy(&mut self, env: &str, version: &str) -> i64 {
        let body = json!({"service": "shop", "environment": env, "version": version});
        let v = self.post("/api/v1/deployments", "/api/v1/deployments", body).await;
        v["rollout"]["id"].as_i64().expect("rollout id")
    }

    /// Follows `$ref`s within the document.
    fn resolve(&self, schema: &Value) -> Value {
        let mut s = schema.clone();
        for _ in 0..16 {
            let Some(r) = s.get("$ref").and_then(Value::as_str) else { break };
            s = self.doc.pointer(r.trim_start_matches('#')).cloned().unwrap_or(Value::Null);
        }
        s
    }

    /// Every field of `value` documented in `schema`; undocumented ones are pushed to `found`.
    fn check(&self, schema: &Value, value: &Value, at: &str, found: &mut Vec<String>) {
        let schema = self.resolve(schema);
        for combinator in ["oneOf", "anyOf"] {
            if let Some(branches) = schema.get(combinator).and_then(Value::as_array) {
                let mut best: Option<Vec<String>> = None;
                for branch in branches {
                    let mut f = Vec::new();
                    self.check(branch, value, at, &mut f);
                    if best.as_ref().is_none_or(|b| f.len() < b.len()) {
                        best = Some(f);
                    }
                }
                found.extend(best.unwrap_or_default());
                return;
            }
        }
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            // Every part holds at once: their properties together document the object.
            let mut properties = serde_json::Map::new();
            let mut extra = None;
            for part in parts.iter().map(|p| self.resolve(p)) {
                properties.extend(part["properties"].as_object().cloned().unwrap_or_default());
                extra = extra.or(part.get("additionalProperties").cloned());
            }
            let mut merged = json!({"type": "object", "properties": properties});
            if let Some(extra) = extra {
                merged["additionalProperties"] = extra;
            }
            return self.check(&merged, value, at, found);
        }
        let any = ["type", "properties", "items", "additionalProperties", "allOf", "const", "enum"]
            .iter()
            .all(|k| schema.get(k).is_none());
        if any {
            return; // `{}`: any value, documented as such.
        }
        match value {
            Value::Object(map) => {
                let props = schema.get("properties").and_then(Value::as_object);
                for (k, v) in map {
                    let path = format!("{at}.{k}");
                    match (props.and_then(|p| p.get(k)), schema.get("additionalProperties")) {
                        (Some(p), _) => self.check(p, v, &path, found),
                        (None, Some(Value::Bool(true))) => {}
                        (None, Some(extra)) if extra.is_object() => self.check(extra, v, &path, found),
                        _ => found.push(format!("{path} is not documented")),
                    }
                }
            }
            Value::Array(items) => match schema.get("items") {
                Some(item) => {
                    for (i, v) in items.iter().enumerate() {
                        self.check(item, v, &format!("{at}[{i}]"), found);
                    }
                }
                None if !items.is_empty() => found.push(format!("{at}: the array's items are not documented")),
                None => {}
            },
            _ => {}
        }
    }
}

fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, text) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, text.as_bytes()).expect("tar entry");
    }
    b.into_inner().expect("tar")
}

#[tokio::test]
async fn every_response_field_is_documented() {
    let p = Platform::start(json!({"strategy": "rolling"}), 1).await;
    let s = &p.server;
    let mut c = Checker::new(s).await;

    // Health, metrics and the document itself.
    for path in ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"] {
        c.get(path, path).await;
    }

    // The catalog, one resource at a time and in a batch.
    let team = json!({"kind": "Team", "metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"type": "stream-aligned", "members": ["ana@example.com"], "contact": "#web"}});
    c.post("/api/v1/teams", "/api/v1/teams", team.clone()).await;
    let mut changed = team.clone();
    changed["spec"]["description"] = json!("The web team");
    c.call(Method::PUT, "/api/v1/teams/{name}", "/api/v1/teams/web", ADMIN, Body::Json(changed)).await;
    let svc = json!({"kind": "Service", "metadata": {"name": "site", "annotations": {"pave.dev/x": "y"}},
        "spec": {"owner": "web", "tier": 2, "tags": ["ui"], "links": [{"url": "https://example.com", "title": "docs"}],
        "dependsOn": ["shop"]}});
    c.post("/api/v1/services", "/api/v1/services", svc.clone()).await;
    let mut svc2 = svc.clone();
    svc2["spec"]["tier"] = json!(3);
    c.call(Method::PUT, "/api/v1/services/{name}", "/api/v1/services/site", ADMIN, Body::Json(svc2)).await;
    let qa = json!({"kind": "Environment", "metadata": {"name": "qa"}, "spec": {"order": 5, "deployers": ["web"]}});
    c.post("/api/v1/environments", "/api/v1/environments", qa.clone()).await;
    c.call(Method::PUT, "/api/v1/environments/{name}", "/api/v1/environments/qa", ADMIN, Body::Json(qa)).await;
    let mut svc3 = svc.clone();
    svc3["spec"]["tier"] = json!(1);
    c.post("/api/v1/apply", "/api/v1/apply", json!({"documents": [svc3], "dryRun": true})).await;
    for (collection, one) in [("teams", "core"), ("services", "shop"), ("environments", "prod")] {
        c.get(&format!("/api/v1/{collection}"), &format!("/api/v1/{collection}")).await;
        c.get(&format!("/api/v1/{collection}/{{name}}"), &format!("/api/v1/{collection}/{one}")).await;
    }
    // A problem document, for the error schema.
    c.call(Method::GET, "/api/v1/teams/{name}", "/api/v1/teams/ghost", ADMIN, Body::None).await;
    c.call(Method::POST, "/api/v1/services", "/api/v1/services", ADMIN, Body::Json(json!({"kind": "Service"}))).await;

    // Releases: one by the CLI, one uploaded here; scans made by Pave and attached.
    p.release("1.0.0", "");
    let tar = tar_of(&[("sample.env", ""), ("Cargo.lock", "version = 3\n")]);
    let (st, v) = c
        .call(
            Method::POST,
            "/api/v1/services/{name}/releases",
            "/api/v1/services/shop/releases?version=1.1.0&commit=abcdef2",
            ADMIN,
            Body::Bytes("application/x-tar", tar),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    c.get("/api/v1/services/{name}/releases", "/api/v1/services/shop/releases").await;
    c.post("/api/v1/services/{name}/releases/{version}/scan", "/api/v1/services/shop/releases/1.0.0/scan", json!({}))
        .await;
    c.get("/api/v1/services/{name}/releases/{version}/sbom", "/api/v1/services/shop/releases/1.0.0/sbom").await;
    let sbom = json!({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []});
    c.post(
        "/api/v1/services/{name}/releases/{version}/scans",
        "/api/v1/services/shop/releases/1.1.0/scans",
        json!({"secrets": [], "sbom": sbom}),
    )
    .await;
    for version in ["1.0.0", "1.1.0"] {
        c.get("/api/v1/services/{name}/releases/{version}", &format!("/api/v1/services/shop/releases/{version}")).await;
    }

    // A deployment that finishes, and one that waits for an approval and is aborted.
    let id = c.deploy("dev", "1.0.0").await;
    p.wait_state(id, &["succeeded"]).await;
    c.get("/api/v1/rollouts", "/api/v1/rollouts").await;
    c.get("/api/v1/rollouts/{id}", &format!("/api/v1/rollouts/{id}")).await;
    c.get("/api/v1/rollouts/{id}/events", &format!("/api/v1/rollouts/{id}/events")).await;
    c.get("/api/v1/services/{name}/environments/{env}/status", "/api/v1/services/shop/environments/dev/status").await;
    c.get("/api/v1/services/{name}/environments/{env}/logs", "/api/v1/services/shop/environments/dev/logs?lines=5")
        .await;
    c.call(
        Method::POST,
        "/api/v1/services/{name}/environments/{env}/undo",
        "/api/v1/services/shop/environments/dev/undo",
        ADMIN,
        Body::None,
    )
    .await;
    let waiting = c.deploy("prod", "1.0.0").await;
    c.call(
        Method::POST,
        "/api/v1/rollouts/{id}/{action}",
        &format!("/api/v1/rollouts/{waiting}/abort"),
        ADMIN,
        Body::None,
    )
    .await;

    // Secrets (the running replica is rolled with each change).
    c.call(
        Method::PUT,
        "/api/v1/services/{name}/secrets/{secret}",
        "/api/v1/services/shop/secrets/API_KEY?environment=dev",
        ADMIN,
        Body::Bytes("application/octet-stream", b"not-a-real-value".to_vec()),
    )
    .await;
    c.get("/api/v1/services/{name}/secrets", "/api/v1/services/shop/secrets").await;
    c.call(
        Method::DELETE,
        "/api/v1/services/{name}/secrets/{secret}",
        "/api/v1/services/shop/secrets/API_KEY?environment=dev",
        ADMIN,
        Body::None,
    )
    .await;

    // Delivery facts, DORA and the timeline.
    let facts = json!({"events": [
        {"type": "change", "sha": "abcdef1234", "service": "shop", "author": "ana", "message": "fix",
         "authoredAt": "2026-01-01T09:00:00Z", "committedAt": "2026-01-01T09:10:00Z", "mergedAt": "2026-01-01T09:30:00Z"},
        {"type": "deployment", "id": "d-1", "service": "shop", "environment": "prod", "version": "0.9.0",
         "commit": "abcdef1234", "startedAt": "2026-01-01T10:00:00Z", "finishedAt": "2026-01-01T10:05:00Z", "status": "failed"},
        {"type": "incident", "id": "inc-1", "service": "shop", "openedAt": "2026-01-01T10:10:00Z",
         "detectedAt": "2026-01-01T10:12:00Z", "resolvedAt": "2026-01-01T11:00:00Z", "severity": "sev1",
         "deployment": "d-1", "title": "checkout down"},
    ]});
    c.post("/api/v1/events", "/api/v1/events", facts).await;
    let window = "from=2025-12-01T00:00:00Z&to=2026-02-01T00:00:00Z";
    c.get("/api/v1/dora", &format!("/api/v1/dora?{window}&explain=true&series=week")).await;
    c.post(
        "/api/v1/dora",
        "/api/v1/dora",
        json!({"from": "2025-12-01T00:00:00Z", "to": "2026-02-01T00:00:00Z",
        "service": "shop", "explain": true, "series": "month"}),
    )
    .await;

    // Flags and segments, changed every way, then read back.
    let flag = json!({"kind": "Flag", "metadata": {"name": "new-checkout"},
        "spec": {"type": "release", "owner": "core", "description": "the new checkout", "environments": {
            "dev": {"enabled": true, "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": 50},
                "constraints": [{"contextName": "appVersion", "operator": "SEMVER_GTE", "value": "2.0.0"}]}],
                "variants": [{"name": "blue", "weight": 1000}]}}}});
    c.post("/api/v1/flags", "/api/v1/flags", flag.clone()).await;
    c.call(Method::PUT, "/api/v1/flags/{name}", "/api/v1/flags/new-checkout", ADMIN, Body::Json(flag)).await;
    let flags_dir = json!({"documents": [
        {"kind": "Segment", "metadata": {"name": "beta"}, "spec": {"constraints": [
            {"contextName": "plan", "operator": "IN", "values": ["beta"]}]}},
        {"kind": "Flag", "metadata": {"name": "beta-banner"}, "spec": {"environments": {
            "dev": {"enabled": true, "strategies": [{"name": "default", "segments": ["beta"]}]}}}},
    ]});
    c.post("/api/v1/flags/apply", "/api/v1/flags/apply", json!({"documents": flags_dir["documents"], "dryRun": true}))
        .await;
    c.post("/api/v1/flags/apply", "/api/v1/flags/apply", flags_dir).await;
    for action in ["enable", "disable", "rollout"] {
        let body = if action == "rollout" { json!({"percent": 30}) } else { json!({}) };
        c.post(
            "/api/v1/flags/{name}/environments/{env}/{action}",
            &format!("/api/v1/flags/new-checkout/environments/dev/{action}"),
            body,
        )
        .await;
    }
    for action in ["archive", "revive"] {
        c.post("/api/v1/flags/{name}/{action}", &format!("/api/v1/flags/beta-banner/{action}"), json!({})).await;
    }

    // SDK tokens, and SDKs that use them.
    let client = c
        .post(
            "/api/v1/sdk-tokens",
            "/api/v1/sdk-tokens",
            json!({"name": "server", "kind": "client", "environment": "dev"}),
        )
        .await;
    let client = client["secret"].as_str().expect("client secret").to_owned();
    let frontend = c
        .post(
            "/api/v1/sdk-tokens",
            "/api/v1/sdk-tokens",
            json!({"name": "web", "kind": "frontend", "environment": "dev"}),
        )
        .await;
    let frontend_id = frontend["id"].as_str().expect("token id").to_owned();
    let frontend = frontend["secret"].as_str().expect("frontend secret").to_owned();
    let register = json!({"appName": "checkout", "instanceId": "i-1", "sdkVersion": "unleash-client-node:6.1.0",
        "started": "2026-01-01T00:00:00Z", "interval": 15000});
    c.call(Method::POST, "/api/client/register", "/api/client/register", &client, Body::Json(register.clone())).await;
    let metrics = json!({"appName": "checkout", "instanceId": "i-1", "bucket": {"start": "2026-01-01T00:00:00Z",
        "stop": "2026-01-01T00:01:00Z", "toggles": {"new-checkout": {"yes": 3, "no": 1, "variants": {"blue": 3}}}}});
    c.call(Method::POST, "/api/client/metrics", "/api/client/metrics", &client, Body::Json(metrics.clone())).await;
    c.call(Method::GET, "/api/client/features", "/api/client/features", &client, Body::None).await;
    c.call(Method::GET, "/api/frontend", "/api/frontend?userId=ana&appVersion=2.1.0", &frontend, Body::None).await;
    let context = json!({"context": {"userId": "ana", "properties": {"appVersion": "2.1.0"}}});
    c.call(Method::POST, "/api/frontend", "/api/frontend", &frontend, Body::Json(context.clone())).await;
    c.call(
        Method::POST,
        "/api/frontend/client/register",
        "/api/frontend/client/register",
        &frontend,
        Body::Json(register),
    )
    .await;
    c.call(
        Method::POST,
        "/api/frontend/client/metrics",
        "/api/frontend/client/metrics",
        &frontend,
        Body::Json(metrics),
    )
    .await;
    let ofrep = json!({"context": {"targetingKey": "ana", "appVersion": "2.1.0"}});
    c.call(Method::POST, "/ofrep/v1/evaluate/flags", "/ofrep/v1/evaluate/flags", &client, Body::Json(ofrep.clone()))
        .await;
    for key in ["new-checkout", "beta-banner", "ghost"] {
        c.call(
            Method::POST,
            "/ofrep/v1/evaluate/flags/{key}",
            &format!("/ofrep/v1/evaluate/flags/{key}"),
            &client,
            Body::Json(ofrep.clone()),
        )
        .await;
    }
    c.get("/api/v1/flags", "/api/v1/flags?archived=true").await;
    c.get("/api/v1/flags/{name}", "/api/v1/flags/new-checkout").await;
    c.get("/api/v1/flags/stale", "/api/v1/flags/stale?days=0").await;
    c.get("/api/v1/segments", "/api/v1/segments").await;
    c.get("/api/v1/sdk-tokens", "/api/v1/sdk-tokens").await;
    c.get("/api/v1/sdk-clients", "/api/v1/sdk-clients").await;
    c.call(Method::DELETE, "/api/v1/sdk-tokens/{id}", &format!("/api/v1/sdk-tokens/{frontend_id}"), ADMIN, Body::None)
        .await;

    // The timeline, now with deployments, an incident and flag changes in it.
    c.get("/api/v1/timeline", "/api/v1/timeline?from=30d").await;
    c.get("/api/v1/timeline", "/api/v1/timeline?incident=inc-1").await;

    // Tokens, who-am-I, the event log and the audit trail.
    let scoped = c
        .post(
            "/api/v1/tokens",
            "/api/v1/tokens",
            json!({"name": "ana", "role": "developer", "user": "ana@example.com"}),
        )
        .await;
    let scoped_secret = scoped["secret"].as_str().expect("secret").to_owned();
    let unscoped = c.post("/api/v1/tokens", "/api/v1/tokens", json!({"name": "old", "role": "developer"})).await;
    c.call(Method::GET, "/api/v1/whoami", "/api/v1/whoami", &scoped_secret, Body::None).await;
    c.call(Method::GET, "/api/v1/whoami", "/api/v1/whoami", unscoped["secret"].as_str().expect("secret"), Body::None)
        .await;
    c.get("/api/v1/whoami", "/api/v1/whoami").await;
    c.get("/api/v1/tokens", "/api/v1/tokens").await;
    let id = unscoped["token"]["id"].as_str().expect("token id");
    c.call(Method::DELETE, "/api/v1/tokens/{id}", &format!("/api/v1/tokens/{id}"), ADMIN, Body::None).await;
    c.get("/api/v1/events", "/api/v1/events?limit=1000").await;
    c.get("/api/v1/audit", "/api/v1/audit?limit=1000").await;

    // Webhooks this server has no secret for: refused, as documented.
    let hook = Body::Json(json!({"zen": "hi"}));
    c.call(Method::POST, "/api/v1/webhooks/github", "/api/v1/webhooks/github", ADMIN, hook).await;
    c.call(Method::POST, "/api/v1/webhooks/gitlab", "/api/v1/webhooks/gitlab", ADMIN, Body::Json(json!({}))).await;

    // Deletes last.
    for path in ["/api/v1/services/site", "/api/v1/teams/web", "/api/v1/environments/qa"] {
        let template = format!("{}/{{name}}", path.rsplit_once('/').expect("a path").0);
        c.call(Method::DELETE, &template, path, ADMIN, Body::None).await;
    }

    // Every documented operation was called, but the one that never ends.
    let never_ends = [("get".to_owned(), "/api/client/streaming".to_owned())];
    let documented: BTreeSet<(String, String)> = c.doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .expect("operations")
                .keys()
                .filter(|m| *m != "parameters")
                .map(|m| (m.clone(), path.clone()))
        })
        .collect();
    let missed: Vec<_> = documented.difference(&c.exercised).filter(|o| !never_ends.contains(o)).collect();
    assert!(missed.is_empty(), "the fixture does not call {missed:?}");
    assert!(
        c.problems.is_empty(),
        "openapi.yaml does not document what the server answers:\n{}",
        c.problems.join("\n")
    );
}
