//! The CLI as a client: apply (idempotence, dry run, prune, Backstage), get, errors, tokens.

use std::fs;

use crate::harness::{ADMIN, start, stderr, stdout};

const CATALOG: &str = "
apiVersion: pave.dev/v1
kind: Team
metadata: { name: payments, labels: { repo: shop } }
spec: { type: stream-aligned, members: [ana] }
---
kind: Service
metadata: { name: checkout, labels: { repo: shop } }
spec: { owner: payments, tier: 1, dependsOn: [cart] }
---
kind: Service
metadata: { name: cart, labels: { repo: shop } }
spec: { owner: payments }
";

#[tokio::test]
async fn apply_is_idempotent_with_dry_run_and_prune() {
    let (s, _db) = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("catalog.yaml");
    fs::write(&file, CATALOG).expect("write");
    let f = file.to_str().expect("utf-8 path");

    let out = s.cli(&["apply", "-f", f], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("3 created, 0 updated, 0 deleted, 0 unchanged"), "{}", stdout(&out));
    let (_, before) = s.get("/api/v1/events?limit=1000").await;

    // Twice: nothing changes, no event appended.
    let out = s.cli(&["apply", "-f", dir.path().to_str().expect("dir")], Some(ADMIN));
    assert!(stdout(&out).contains("0 created, 0 updated, 0 deleted, 3 unchanged"), "{}", stdout(&out));
    let (_, after) = s.get("/api/v1/events?limit=1000").await;
    assert_eq!(before["events"].as_array().map(Vec::len), after["events"].as_array().map(Vec::len));

    // A dry run shows the field-level diff and changes nothing.
    fs::write(&file, CATALOG.replace("tier: 1", "tier: 2")).expect("write");
    let out = s.cli(&["apply", "-f", f, "--dry-run"], Some(ADMIN));
    let text = stdout(&out);
    assert!(text.contains("service/checkout would be updated"), "{text}");
    assert!(text.contains("spec.tier: 1 -> 2"), "{text}");
    assert!(text.contains("(dry run: nothing was changed)"), "{text}");
    let (_, v) = s.get("/api/v1/services/checkout").await;
    assert_eq!(v["spec"]["tier"], 1);

    // Prune needs a selector, and removes only what the selector matches.
    let out = s.cli(&["apply", "-f", f, "--prune"], Some(ADMIN));
    assert!(!out.status.success());
    let (st, _) = s
        .send(
            reqwest::Method::POST,
            "/api/v1/services",
            ADMIN,
            serde_json::json!({"kind": "Service", "metadata": {"name": "manual"}, "spec": {"owner": "payments"}}),
        )
        .await;
    assert_eq!(st, 201);
    let pruned = CATALOG.replace("dependsOn: [cart]", "dependsOn: []");
    let pruned = &pruned[..pruned.rfind("---").expect("separator")];
    fs::write(&file, pruned).expect("write");
    let out = s.cli(&["apply", "-f", f, "--prune", "-l", "repo=shop"], Some(ADMIN));
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("service/cart deleted"), "{text}");
    assert!(text.contains("1 updated, 1 deleted"), "{text}");
    assert_eq!(s.get("/api/v1/services/manual").await.0, 200, "unlabelled resources survive the prune");
    assert_eq!(s.get("/api/v1/services/cart").await.0, 404);
}

#[tokio::test]
async fn apply_reports_bad_files_with_their_location() {
    let (s, _db) = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yaml");
    fs::write(&file, "kind: Team\nmetadata: { name: ok }\nspec: { type: platform }\n---\nkind: Service\nmetadata: { name: x }\nspec: { owner: ok, tier: 7 }\n").expect("write");
    let out = s.cli(&["apply", "-f", file.to_str().expect("path")], Some(ADMIN));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("bad.yaml") && err.contains("spec.tier"), "{err}");
    fs::write(&file, "kind: Team\nmetadata: { name: [unclosed\n").expect("write");
    let out = s.cli(&["apply", "-f", file.to_str().expect("path")], Some(ADMIN));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("bad.yaml"), "{}", stderr(&out));
    let (_, v) = s.get("/api/v1/teams").await;
    assert_eq!(v["items"], serde_json::json!([]));
}

#[tokio::test]
async fn apply_imports_backstage_catalog_info() {
    let (s, _db) = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("catalog-info.yaml");
    fs::write(
        &file,
        "apiVersion: backstage.io/v1alpha1
kind: Group
metadata: { name: team-a, description: Team A }
spec: { type: team, profile: { email: team-a@example.com }, children: [] }
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: { name: jdoe }
spec: { profile: { email: jdoe@example.com }, memberOf: [team-a] }
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata: { name: shop }
spec: { owner: team-a, domain: commerce }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: storefront
  description: The web shop
  tags: [web]
  annotations: { github.com/project-slug: acme/storefront }
spec: { type: website, lifecycle: production, owner: group:default/team-a, system: shop, dependsOn: [component:default/catalog-api, resource:default/shop-db] }
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: catalog-api }
spec: { type: service, lifecycle: experimental, owner: team-a, system: shop }
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata: { name: shop-db }
spec: { type: database, owner: team-a }
",
    )
    .expect("write");
    let out = s.cli(&["apply", "-f", file.to_str().expect("path")], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("3 created"), "{}", stdout(&out));
    let (_, team) = s.get("/api/v1/teams/team-a").await;
    assert_eq!(team["spec"]["contact"], "team-a@example.com");
    assert_eq!(team["spec"]["members"], serde_json::json!(["jdoe@example.com"]));
    let (_, svc) = s.get("/api/v1/services/storefront").await;
    assert_eq!(svc["spec"]["owner"], "team-a");
    assert_eq!(svc["spec"]["lifecycle"], "production");
    assert_eq!(svc["spec"]["dependsOn"], serde_json::json!(["catalog-api"]));
    assert_eq!(svc["spec"]["repository"], "https://github.com/acme/storefront");
    let ann = &svc["metadata"]["annotations"];
    assert_eq!(ann["backstage.io/system"], "shop");
    assert_eq!(ann["backstage.io/domain"], "commerce");
    assert_eq!(ann["backstage.io/component-type"], "website");
    assert!(ann["backstage.io/depends-on-resources"].as_str().unwrap_or("").contains("shop-db"), "{ann}");
}

#[tokio::test]
async fn cli_reads_prints_and_reports_server_errors() {
    let (s, _db) = start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.yaml");
    fs::write(&file, CATALOG).expect("write");
    assert!(s.cli(&["apply", "-f", file.to_str().expect("path")], Some(ADMIN)).status.success());

    let out = s.cli(&["get", "services"], Some(ADMIN));
    let text = stdout(&out);
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("checkout") && l.contains("payments") && l.contains("cart")), "{text}");
    let out = s.cli(&["get", "services", "checkout", "-o", "json"], Some(ADMIN));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json output");
    assert_eq!(v["spec"]["owner"], "payments");

    let out = s.cli(&["get", "services", "nope"], Some(ADMIN));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("service \"nope\" does not exist"), "{}", stderr(&out));
    let out = s.cli(&["get", "services"], None);
    assert!(stderr(&out).contains("hint: set PAVE_TOKEN"), "{}", stderr(&out));
    let out = s.cli(&["delete", "team", "payments"], Some(ADMIN));
    assert!(stderr(&out).contains("still owns service"), "{}", stderr(&out));

    let out = s.cli(&["token", "create", "--name", "ci", "--role", "developer"], Some(ADMIN));
    let text = stdout(&out);
    let secret = text.split_whitespace().find(|w| w.starts_with("pave_")).expect("secret printed").to_owned();
    let out = s.cli(&["whoami"], Some(&secret));
    assert!(stdout(&out).contains("ci (developer)"), "{}", stdout(&out));
    let out = s.cli(&["audit", "--limit", "3"], Some(ADMIN));
    assert!(stdout(&out).contains("POST /api/v1/tokens"), "{}", stdout(&out));
    let out = s.cli(&["events", "--kind", "service.*"], Some(ADMIN));
    assert_eq!(stdout(&out).lines().filter(|l| l.contains("service.created")).count(), 2, "{}", stdout(&out));
}

#[test]
fn help_reads_well() {
    let out = std::process::Command::new(crate::harness::pave_bin()).arg("serve").arg("--help").output().expect("run");
    let text = stdout(&out);
    for needle in
        ["--listen", "PAVE_LISTEN", "--data-dir", "--database-url", "--config", "--log-format", "127.0.0.1:7700"]
    {
        assert!(text.contains(needle), "serve --help lacks {needle}: {text}");
    }
}

#[test]
fn demo_runs_the_whole_story_and_exits() {
    // On a taken port it says so and serves on another (issue 16 item 35).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = std::process::Command::new(crate::harness::pave_bin())
        .args(["demo", "--exit", "--listen", &addr])
        .env_remove("PAVE_TOKEN")
        .env_remove("NO_COLOR")
        .output()
        .expect("run demo");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains(&format!("note: {addr} is not free")), "{text}");
    // --exit: no invitation to a server that is gone; no colour codes in redirected stderr.
    assert!(!text.contains("Try it yourself") && text.contains("stops with the tour"), "{text}");
    assert!(!out.stderr.contains(&0x1b), "escape codes in redirected stderr: {}", stderr(&out));
    drop(taken);
    for needle in [
        "10 created, 0 updated, 0 deleted, 0 unchanged; 10 events appended",
        "0 created, 0 updated, 0 deleted, 10 unchanged; 0 events appended",
        "service/search-api would change: spec.tier: 2 -> 1",
        "metadata.name: \"Bad_Name\" must start with a lowercase letter",
        "Deployment frequency",
        "Change failure rate",
        "rollout 1: succeeded",
        "rollout 2: succeeded",
        "rollout 3: succeeded",
        "rollout 4: failed",
        "reason: analysis failed: metric error-rate",
        "Change failure rate         25.0% (1 of 4)",
        "POST /api/v1/deployments",
        "after pave flags disable storefront.new-checkout --env dev: 0 of 400 on",
        "flag storefront.new-checkout updated",
    ] {
        assert!(text.contains(needle), "demo output lacks {needle:?}:\n{text}");
    }
    // The blue-green switch under traffic drops nothing.
    let line = text.lines().find(|l| l.starts_with("traffic during the switch:")).expect("traffic line");
    assert!(line.ends_with(" 0 failed"), "{line}");
    // The good canary drops nothing either; the bad one fails only its share until rolled back.
    let line = text.lines().find(|l| l.starts_with("traffic during the good canary:")).expect("canary line");
    assert!(line.contains(" requests, 0 failed; during the bad one"), "{line}");
    // A quarter of 400 users, give or take what sticky hashing gives.
    let line = text.lines().find(|l| l.starts_with("OFREP evaluations for 400 users")).expect("flag line");
    let on: u32 =
        line.split(": ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).expect("count");
    assert!((70..=130).contains(&on), "{line}");
}
