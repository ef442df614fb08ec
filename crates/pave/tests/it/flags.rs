//! Feature flags end to end: the CLI and `pave apply` manage them; the Unleash client and
//! frontend APIs, OFREP and the stream serve them to SDKs with SDK tokens.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ADMIN, Server, start, stderr, stdout};

const FLAGS_YAML: &str = r##"
kind: Environment
metadata: {name: staging}
spec: {order: 1}
---
kind: Environment
metadata: {name: production}
spec: {order: 2, production: true}
---
kind: Segment
metadata: {name: beta-testers}
spec:
  constraints:
    - {contextName: plan, operator: IN, values: [beta]}
---
kind: Flag
metadata: {name: new-checkout}
spec:
  type: release
  owner: payments
  environments:
    production:
      enabled: true
      strategies:
        - name: flexibleRollout
          parameters: {rollout: 100, stickiness: userId}
          segments: [beta-testers]
      variants:
        - {name: blue, payload: {type: json, value: {color: "#00f"}}}
        - {name: green}
---
kind: Flag
metadata: {name: search-v2}
spec:
  type: experiment
  environments:
    production:
      enabled: true
      strategies:
        - name: userWithId
          parameters: {userIds: "ana,bo"}
"##;

/// A request with an SDK token sent as Unleash SDKs send it (the bare token).
async fn sdk(
    s: &Server,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    etag: Option<&str>,
) -> (u16, Value, Option<String>) {
    let mut req = s.http.request(method, format!("{}{path}", s.url));
    if let Some(t) = token {
        req = req.header("authorization", t);
    }
    if let Some(e) = etag {
        req = req.header("if-none-match", e);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let etag = resp.headers().get("etag").map(|v| v.to_str().expect("ascii").to_owned());
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), etag)
}

fn sdk_token(s: &Server, kind: &str, env: &str) -> String {
    let out = s.cli(&["flags", "token", "create", &format!("{kind}-{env}"), "--env", env, "--kind", kind], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let secret = text.lines().nth(1).expect("secret line").trim().to_owned();
    assert!(secret.starts_with(&format!("default:{env}.")), "{text}");
    secret
}

#[tokio::test]
async fn flags_are_managed_by_cli_and_served_to_sdks() {
    let (s, _db) = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("flags.yaml");
    std::fs::write(&file, FLAGS_YAML).expect("write");
    let out = s.cli(&["apply", "-f", file.to_str().expect("path")], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("segment/beta-testers created") && text.contains("flag/new-checkout created"), "{text}");

    // The CLI's short forms.
    let out = s.cli(&["flags", "create", "dark-mode", "--env", "production", "--env", "staging"], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.cli(&["flags", "enable", "dark-mode", "--env", "production"], Some(ADMIN));
    assert!(stdout(&out).contains("enabled in production (on for: everyone)"), "{}", stdout(&out));
    let out = s.cli(&["flags", "rollout", "dark-mode", "30", "--env", "production"], Some(ADMIN));
    assert!(stdout(&out).contains("rolled out to 30 %"), "{}", stdout(&out));
    let out = s.cli(&["flags", "list"], Some(ADMIN));
    let text = stdout(&out);
    assert!(text.contains("dark-mode") && text.contains("production=on(partial)"), "{text}");

    let client = sdk_token(&s, "client", "production");
    let frontend = sdk_token(&s, "frontend", "production");

    // Unleash client API: the whole set, with an ETag; 304 when unchanged.
    let (status, body, etag) = sdk(&s, Method::GET, "/api/client/features", Some(&client), None, None).await;
    assert_eq!(status, 200, "{body}");
    let etag = etag.expect("etag");
    let names: Vec<_> =
        body["features"].as_array().expect("features").iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dark-mode", "new-checkout", "search-v2"]);
    let checkout = &body["features"][1];
    assert_eq!(checkout["strategies"][0]["parameters"]["groupId"], "new-checkout");
    assert_eq!(body["segments"][0]["constraints"][0]["values"], json!(["beta"]));
    assert_eq!(checkout["strategies"][0]["segments"][0], body["segments"][0]["id"]);
    let (status, _, _) = sdk(&s, Method::GET, "/api/client/features", Some(&client), None, Some(&etag)).await;
    assert_eq!(status, 304);

    // Tokens: missing, unknown and of the wrong kind are refused with a reason.
    let (status, body, _) = sdk(&s, Method::GET, "/api/client/features", None, None, None).await;
    assert_eq!(status, 401);
    assert!(body["detail"].as_str().unwrap().contains("missing Authorization"), "{body}");
    let (status, _, _) =
        sdk(&s, Method::GET, "/api/client/features", Some("default:production.nope"), None, None).await;
    assert_eq!(status, 401);
    let (status, body, _) = sdk(&s, Method::GET, "/api/client/features", Some(&frontend), None, None).await;
    assert_eq!(status, 403);
    assert!(body["detail"].as_str().unwrap().contains("frontend token cannot be used"), "{body}");

    // A change reaches the stream within a second and polling clients on their next poll.
    let mut stream = s
        .http
        .get(format!("{}/api/client/streaming", s.url))
        .header("authorization", &client)
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status().as_u16(), 200);
    let first = String::from_utf8(stream.chunk().await.expect("chunk").expect("hydration").to_vec()).expect("utf8");
    assert!(first.starts_with("id: ") && first.contains("event: unleash-connected"), "{first}");
    let t = Instant::now();
    let out = s.cli(&["flags", "disable", "search-v2", "--env", "production"], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    let update = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let c = stream.chunk().await.expect("chunk").expect("stream open");
            let text = String::from_utf8(c.to_vec()).expect("utf8");
            if text.contains("unleash-updated") {
                return text;
            }
        }
    })
    .await
    .expect("an update within 5 s");
    let took = t.elapsed();
    assert!(update.contains("\"feature-updated\"") && update.contains("search-v2"), "{update}");
    assert!(took < Duration::from_secs(1), "the change took {took:?} to reach the stream (CLI run included)");
    let (status, body, etag2) = sdk(&s, Method::GET, "/api/client/features", Some(&client), None, Some(&etag)).await;
    assert_eq!(status, 200);
    assert_ne!(etag2.as_deref(), Some(etag.as_str()));
    assert_eq!(body["features"][2]["enabled"], false);

    // Frontend API: evaluated, only what is on, never the rules.
    let (status, body, _) =
        sdk(&s, Method::GET, "/api/frontend?userId=u7&properties[plan]=beta", Some(&frontend), None, None).await;
    assert_eq!(status, 200, "{body}");
    let on: Vec<_> = body["toggles"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(on.contains(&"new-checkout") && !on.contains(&"search-v2"), "{body}");
    let nc = body["toggles"].as_array().unwrap().iter().find(|t| t["name"] == "new-checkout").unwrap();
    assert!(["blue", "green"].contains(&nc["variant"]["name"].as_str().unwrap()), "{nc}");
    assert!(body.to_string().find("strategies").is_none());
    let (_, body, _) =
        sdk(&s, Method::GET, "/api/frontend?userId=u7&properties[plan]=free", Some(&frontend), None, None).await;
    assert!(!body.to_string().contains("new-checkout"), "outside the segment: {body}");

    // OFREP: single and bulk, with the protocol's error codes.
    let ctx = json!({"context": {"targetingKey": "u7", "plan": "beta"}});
    let (status, body, _) =
        sdk(&s, Method::POST, "/ofrep/v1/evaluate/flags/new-checkout", Some(&client), Some(ctx.clone()), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["key"], "new-checkout");
    assert_eq!(body["reason"], "SPLIT");
    // Only one variant has a payload: the flag's OFREP type is string, the variant's name.
    let variant = body["variant"].as_str().unwrap();
    assert!(["blue", "green"].contains(&variant), "{body}");
    assert_eq!((&body["value"], &body["metadata"]["valueType"]), (&json!(variant), &json!("string")), "{body}");
    let (status, body, _) = sdk(
        &s,
        Method::POST,
        "/ofrep/v1/evaluate/flags/search-v2",
        Some(&client),
        Some(json!({"context": {"targetingKey": "ana"}})),
        None,
    )
    .await;
    assert_eq!((status, &body["value"], &body["reason"]), (200, &json!(false), &json!("DISABLED")), "{body}");
    let (status, body, _) =
        sdk(&s, Method::POST, "/ofrep/v1/evaluate/flags/nope", Some(&client), Some(ctx.clone()), None).await;
    assert_eq!((status, body["errorCode"].as_str()), (404, Some("FLAG_NOT_FOUND")), "{body}");
    let bad = s
        .http
        .post(format!("{}/ofrep/v1/evaluate/flags/new-checkout", s.url))
        .header("authorization", format!("Bearer {client}"))
        .header("content-type", "application/json")
        .body("{\"context\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status().as_u16(), 400);
    assert_eq!(bad.json::<Value>().await.expect("json")["errorCode"], "PARSE_ERROR");
    let huge: serde_json::Map<String, Value> = (0..2000).map(|i| (format!("p{i}"), json!("x".repeat(10)))).collect();
    let (status, body, _) =
        sdk(&s, Method::POST, "/ofrep/v1/evaluate/flags", Some(&client), Some(json!({"context": huge})), None).await;
    assert_eq!((status, body["errorCode"].as_str()), (400, Some("INVALID_CONTEXT")), "{body}");
    let (status, _, _) = sdk(&s, Method::POST, "/ofrep/v1/evaluate/flags", Some("nope"), Some(ctx.clone()), None).await;
    assert_eq!(status, 401);
    let (status, body, etag) =
        sdk(&s, Method::POST, "/ofrep/v1/evaluate/flags", Some(&client), Some(ctx.clone()), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["flags"].as_array().unwrap().len(), 3);
    let (status, _, _) =
        sdk(&s, Method::POST, "/ofrep/v1/evaluate/flags", Some(&client), Some(ctx), etag.as_deref()).await;
    assert_eq!(status, 304);

    // Metrics from SDKs become usage: evaluation counts and last seen.
    let metrics = json!({"appName": "web", "instanceId": "i-1", "environment": "production",
        "bucket": {"start": "2026-11-23T10:00:00Z", "stop": "2026-11-23T10:01:00Z",
                   "toggles": {"new-checkout": {"yes": 7, "no": 3, "variants": {"blue": 4, "green": 3}}}}});
    let (status, body, _) = sdk(&s, Method::POST, "/api/client/metrics", Some(&client), Some(metrics), None).await;
    assert_eq!(status, 202, "{body}");
    let bad = json!({"appName": "web", "bucket": {"toggles": {"new-checkout": {"yes": -1}}}});
    let (status, body, _) = sdk(&s, Method::POST, "/api/client/metrics", Some(&client), Some(bad), None).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("bucket.toggles.new-checkout.yes"), "{body}");
    let out = s.cli(&["flags", "show", "new-checkout"], Some(ADMIN));
    assert!(stdout(&out).contains("evaluated in production: 7 yes, 3 no"), "{}", stdout(&out));
    let (_, v) = s.get("/api/v1/flags/new-checkout").await;
    assert_eq!(v["status"]["usage"][0]["variants"]["blue"], 4);

    // Every change is an event, and the audit trail names who made it.
    let (_, ev) = s.get("/api/v1/events?kind=flag.*&limit=100").await;
    let kinds: Vec<_> = ev["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "flag.created").count(), 3, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "flag.updated").count(), 3, "{kinds:?}");

    // A broken definition is refused with the field named, and what was stored stays.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "kind: Flag\nmetadata: {name: search-v2}\nspec:\n  environments:\n    production:\n      enabled: true\n      strategies:\n        - name: default\n          constraints: [{contextName: email, operator: REGEX, value: '(oops'}]\n",
    )
    .expect("write");
    let out = s.cli(&["apply", "-f", broken.to_str().unwrap()], Some(ADMIN));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("strategies[0].constraints[0].value"), "{}", stderr(&out));
    let (status, v) = s
        .send(
            Method::PUT,
            "/api/v1/flags/search-v2",
            ADMIN,
            json!({"kind": "Flag", "metadata": {"name": "search-v2"},
        "spec": {"environments": {"production": {"enabled": true, "variants": [{"name": "a", "weight": 10, "weightType": "fix"}]}}}}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(v["detail"].as_str().unwrap().contains("at least one must be variable"), "{v}");
    let (status, v) = s.send(Method::PUT, "/api/v1/flags/search-v2", ADMIN, json!({"kind": "Flag", "metadata": {"name": "search-v2"},
        "spec": {"environments": {"production": {"enabled": true, "strategies": [{"name": "default", "segments": ["nobody"]}]}}}})).await;
    assert_eq!(status, 422);
    assert!(v["detail"].as_str().unwrap().contains("segment \"nobody\" does not exist"), "{v}");
    let (_, v) = s.get("/api/v1/flags/search-v2").await;
    assert_eq!(v["spec"]["environments"]["production"]["strategies"][0]["name"], "userWithId");

    // Archived flags are no longer served; flag debt is listed.
    let out = s.cli(&["flags", "archive", "dark-mode"], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, body, _) = sdk(&s, Method::GET, "/api/client/features", Some(&client), None, None).await;
    assert!(!body.to_string().contains("dark-mode"));
    let out = s.cli(&["flags", "stale", "--days", "0"], Some(ADMIN));
    let text = stdout(&out);
    assert!(text.contains("search-v2") && text.contains("never evaluated"), "{text}");
}

const OFREP_YAML: &str = r##"
kind: Environment
metadata: {name: production}
spec: {order: 1, production: true}
---
kind: Flag
metadata: {name: prod-only}
spec:
  environments:
    production:
      enabled: true
      strategies:
        - name: default
          constraints: [{contextName: environment, operator: IN, values: [production]}]
---
kind: Flag
metadata: {name: theme}
spec:
  environments:
    production:
      enabled: true
      strategies: [{name: userWithId, parameters: {userIds: "ana,bo"}}]
      variants:
        - {name: dark, payload: {type: string, value: "#000"}}
        - {name: light, payload: {type: string, value: "#fff"}}
---
kind: Flag
metadata: {name: limits}
spec:
  environments:
    production:
      enabled: true
      strategies: [{name: userWithId, parameters: {userIds: "ana"}}]
      variants:
        - {name: small, payload: {type: json, value: {max: 10}}}
---
kind: Flag
metadata: {name: layout}
spec:
  environments:
    production:
      enabled: true
      strategies:
        - name: userWithId
          parameters: {userIds: "ana"}
          variants: [{name: grid, payload: {type: number, value: "3"}}, {name: list}]
        - {name: default}
"##;

/// OFREP answers evaluate in the token's environment whatever the context names, as Unleash's
/// frontend API does (they were refused with INVALID_CONTEXT).
#[tokio::test]
async fn ofrep_evaluates_in_the_token_environment() {
    let (s, _db) = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("flags.yaml");
    std::fs::write(&file, OFREP_YAML).expect("write");
    let out = s.cli(&["apply", "-f", file.to_str().expect("path")], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    let client = sdk_token(&s, "client", "production");
    let eval = |flag: &str, ctx: Value| {
        let (s, client) = (&s, client.clone());
        let path = format!("/ofrep/v1/evaluate/flags/{flag}");
        async move { sdk(s, Method::POST, &path, Some(&client), Some(json!({"context": ctx})), None).await }
    };

    // The context's environment gives way to the token's.
    for env in [json!("staging"), json!("default"), json!("production"), Value::Null] {
        let (status, body, _) = eval("prod-only", json!({"targetingKey": "u7", "environment": env})).await;
        assert_eq!(status, 200, "{env}: {body}");
        assert_eq!((&body["value"], &body["metadata"]["environment"]), (&json!(true), &json!("production")), "{body}");
    }
    let (status, body, _) = sdk(
        &s,
        Method::POST,
        "/ofrep/v1/evaluate/flags",
        Some(&client),
        Some(json!({"context": {"targetingKey": "u7", "environment": "staging"}})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// OFREP gives every flag one value type whoever asks (it answered an object to one user, a
/// string to another and `false` when off, so typed OpenFeature calls failed for some).
#[tokio::test]
async fn ofrep_gives_each_flag_one_value_type() {
    let (s, _db) = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("flags.yaml");
    std::fs::write(&file, OFREP_YAML).expect("write");
    let out = s.cli(&["apply", "-f", file.to_str().expect("path")], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    let client = sdk_token(&s, "client", "production");
    let eval = |flag: &str, ctx: Value| {
        let (s, client) = (&s, client.clone());
        let path = format!("/ofrep/v1/evaluate/flags/{flag}");
        async move { sdk(s, Method::POST, &path, Some(&client), Some(json!({"context": ctx})), None).await }
    };

    // On or off, matched or not, the value is of the flag's type or left out.
    let cases = [
        ("theme", "ana", "string", true),
        ("theme", "zoe", "string", false),
        ("limits", "ana", "object", true),
        ("limits", "zoe", "object", false),
        ("layout", "ana", "string", true),
        ("layout", "zoe", "string", false),
        ("prod-only", "zoe", "boolean", true),
    ];
    for (flag, user, ty, has_value) in cases {
        let (status, body, _) = eval(flag, json!({"targetingKey": user})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["metadata"]["valueType"], ty, "{flag} for {user}: {body}");
        let value = body.get("value");
        assert_eq!(value.is_some(), has_value, "{flag} for {user}: {body}");
        let of_type = match (ty, value) {
            (_, None) => true,
            ("string", Some(v)) => v.is_string(),
            ("object", Some(v)) => v.is_object(),
            ("boolean", Some(v)) => v.is_boolean(),
            _ => false,
        };
        assert!(of_type, "{flag} for {user} is not a {ty}: {body}");
        if !has_value {
            assert_eq!(body["reason"], "DEFAULT", "{body}");
        }
    }
    // A flag whose variants mix payload types (and one has none) answers variant names.
    let (_, body, _) = eval("layout", json!({"targetingKey": "ana"})).await;
    assert!(["grid", "list"].contains(&body["value"].as_str().expect("a string")), "{body}");
    let (_, body, _) = eval("theme", json!({"targetingKey": "ana"})).await;
    assert!(["#000", "#fff"].contains(&body["value"].as_str().expect("a string")), "{body}");
    let (_, body, _) = eval("limits", json!({"targetingKey": "ana"})).await;
    assert_eq!(body["value"], json!({"max": 10}));
}

/// A flag using an operator of the newest client specification warns when an SDK that
/// evaluates locally has registered in that environment (older ones read it as unknown, so
/// their users see the flag off where Pave says on): in the API, `pave flags show` and the log.
#[tokio::test]
async fn recent_operators_warn_about_registered_sdks() {
    let (s, _db) = start().await;
    let env = json!({"kind": "Environment", "metadata": {"name": "production"}, "spec": {"order": 1}});
    let (status, v) = s.send(Method::POST, "/api/v1/environments", ADMIN, env).await;
    assert_eq!(status, 201, "{v}");
    let client = sdk_token(&s, "client", "production");
    let flag = json!({"kind": "Flag", "metadata": {"name": "beta-app"}, "spec": {"environments": {"production": {"enabled": true,
        "strategies": [{"name": "default", "constraints": [{"contextName": "version", "operator": "SEMVER_GTE", "value": "2.0.0"}]}]}}}});
    let (status, v) = s.send(Method::PUT, "/api/v1/flags/beta-app", ADMIN, flag.clone()).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["status"]["warnings"], json!([]), "no SDK has registered yet: {v}");

    let register = json!({"appName": "billing", "instanceId": "i-1", "sdkVersion": "unleash-edge:20.1.0",
        "started": "2026-12-04T10:00:00Z", "interval": 15000});
    let (status, body, _) = sdk(&s, Method::POST, "/api/client/register", Some(&client), Some(register), None).await;
    assert_eq!(status, 202, "{body}");
    let (_, v) = s.get("/api/v1/flags/beta-app").await;
    let warnings = v["status"]["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{v}");
    assert_eq!(
        (&warnings[0]["environment"], &warnings[0]["operators"]),
        (&json!("production"), &json!(["SEMVER_GTE"]))
    );
    assert_eq!(warnings[0]["sdks"], json!(["unleash-edge:20.1.0"]));
    let out = s.cli(&["flags", "show", "beta-app"], Some(ADMIN));
    let text = stdout(&out);
    assert!(
        text.contains("warning: in production the flag uses SEMVER_GTE") && text.contains("unleash-edge:20.1.0"),
        "{text}"
    );
    // Writing it again answers (and logs) the warning.
    let (status, v) = s.send(Method::PUT, "/api/v1/flags/beta-app", ADMIN, flag).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"]["warnings"].as_array().map(Vec::len), Some(1), "{v}");
}

/// `pave apply -f DIR` over teams, services, environments, flags and segments is one request
/// and one transaction: a flag the server refuses (a segment that does not exist) leaves the
/// team, service and environment beside it unwritten too.
#[tokio::test]
async fn one_apply_of_every_kind_is_one_transaction() {
    let (s, _db) = start().await;
    let good = tempfile::tempdir().expect("tempdir");
    std::fs::write(good.path().join("flags.yaml"), FLAGS_YAML).expect("write");
    std::fs::write(
        good.path().join("catalog.yaml"),
        "kind: Team\nmetadata: {name: payments}\nspec: {type: stream-aligned}\n---\n\
         kind: Service\nmetadata: {name: checkout}\nspec: {owner: payments}\n",
    )
    .expect("write");
    let out = s.cli(&["apply", "-f", good.path().to_str().expect("path")], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for made in [
        "team/payments created",
        "service/checkout created",
        "environment/production created",
        "flag/new-checkout created",
        "segment/beta-testers created",
    ] {
        assert!(text.contains(made), "{made}: {text}");
    }
    assert!(text.contains("7 created, 0 updated, 0 deleted, 0 unchanged"), "{text}");

    let bad = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        bad.path().join("all.yaml"),
        "kind: Team\nmetadata: {name: growth}\nspec: {type: stream-aligned}\n---\n\
         kind: Environment\nmetadata: {name: qa}\nspec: {order: 3}\n---\n\
         kind: Flag\nmetadata: {name: upsell}\nspec:\n  type: release\n  environments:\n    production:\n      enabled: true\n      strategies:\n        - name: default\n          segments: [nobody]\n",
    )
    .expect("write");
    let out = s.cli(&["apply", "-f", bad.path().to_str().expect("path")], Some(ADMIN));
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stderr(&out).contains("nobody"), "the refusal names the missing segment: {}", stderr(&out));
    for gone in ["/api/v1/teams/growth", "/api/v1/environments/qa", "/api/v1/flags/upsell"] {
        let (status, v) = s.get(gone).await;
        assert_eq!(status, 404, "{gone} was written by a refused apply: {v}");
    }
    // A dry run of the good directory again changes nothing and says so.
    let out = s.cli(&["apply", "-f", good.path().to_str().expect("path"), "--dry-run"], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("0 created, 0 updated, 0 deleted, 7 unchanged"), "{}", stdout(&out));
}
