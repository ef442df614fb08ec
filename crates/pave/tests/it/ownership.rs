//! Who may do what: developer tokens scoped to a user or a team change only the services
//! their teams own (a platform team's members all of them), environments name who deploys
//! and approves there, unscoped tokens from before keep their rights, and every refusal is a
//! 403 that says why and is in the audit trail.

use reqwest::Method;
use serde_json::{Value, json};

use crate::deploy::{Platform, service};
use crate::harness::{ADMIN, Server, cli_stdin, stderr, stdout};

async fn scoped(server: &Server, name: &str, scope: Value) -> String {
    let mut body = json!({"name": name, "role": "developer"});
    body.as_object_mut().expect("object").extend(scope.as_object().expect("scope").clone());
    let (s, v) = server.send(Method::POST, "/api/v1/tokens", ADMIN, body).await;
    assert_eq!(s, 201, "{v}");
    v["secret"].as_str().expect("secret").to_owned()
}

fn refused(s: u16, v: &Value, why: &str) {
    assert_eq!(s, 403, "{v}");
    assert!(v["detail"].as_str().is_some_and(|d| d.contains(why)), "{v} lacks {why:?}");
}

#[tokio::test]
async fn scoped_tokens_change_only_their_teams_services_and_environments_restrict_further() {
    let p = Platform::start(json!({"strategy": "rolling"}), 1).await;
    let server = &p.server;
    let legacy = server.token("legacy", "developer").await;
    let mut shop = service(json!({"strategy": "rolling"}), 1);
    shop["spec"]["owner"] = json!("payments");
    let docs = json!({"documents": [
        {"kind": "Team", "metadata": {"name": "payments"}, "spec": {"type": "stream-aligned", "members": ["alice@example.com", "dave@example.com"]}},
        {"kind": "Team", "metadata": {"name": "web"}, "spec": {"type": "stream-aligned", "members": ["bob@example.com"]}},
        {"kind": "Team", "metadata": {"name": "infra"}, "spec": {"type": "platform", "members": ["carol@example.com"]}},
        {"kind": "Environment", "metadata": {"name": "prod"}, "spec": {"order": 2, "production": true, "requireApproval": true,
            "deployers": ["payments"], "approvers": ["dave@example.com", "infra"]}},
        shop,
    ]});
    let (s, v) = server.send(Method::POST, "/api/v1/apply", ADMIN, docs).await;
    assert_eq!(s, 200, "{v}");
    let alice = scoped(server, "alice", json!({"user": "alice@example.com"})).await;
    let bob = scoped(server, "bob", json!({"user": "bob@example.com"})).await;
    let dave = scoped(server, "dave", json!({"user": "dave@example.com"})).await;
    let carol = scoped(server, "carol", json!({"user": "carol@example.com"})).await;
    let ci_web = scoped(server, "ci-web", json!({"team": "web"})).await;
    let (s, v) = server
        .send(Method::POST, "/api/v1/tokens", ADMIN, json!({"name": "x", "role": "developer", "team": "nope"}))
        .await;
    assert_eq!(s, 422, "{v}");
    assert!(v.to_string().contains("team \\\"nope\\\" does not exist"), "{v}");

    // The catalog: only the owners (and the platform team) change or delete the service.
    let mut edited = service(json!({"strategy": "rolling"}), 1);
    edited["spec"]["owner"] = json!("payments");
    edited["spec"]["description"] = json!("the shop");
    let (s, v) = server.send(Method::PUT, "/api/v1/services/shop", &bob, edited.clone()).await;
    refused(
        s,
        &v,
        "bob@example.com is not a member of team payments, which owns shop (bob@example.com is a member of web)",
    );
    let (s, v, _) = server.request(Method::DELETE, "/api/v1/services/shop", Some(&ci_web), None).await;
    refused(s, &v, "it acts for team web, and shop is owned by team payments");
    let (s, v) = server.send(Method::POST, "/api/v1/apply", &bob, json!({"documents": [edited.clone()]})).await;
    refused(s, &v, "not a member of team payments");
    let (s, v) = server.send(Method::PUT, "/api/v1/services/shop", &alice, edited.clone()).await;
    assert_eq!(s, 200, "{v}");
    edited["spec"]["description"] = json!("the shop, by the platform team");
    let (s, v) = server.send(Method::PUT, "/api/v1/services/shop", &carol, edited.clone()).await;
    assert_eq!(s, 200, "{v}");
    edited["spec"]["description"] = json!("the shop, by an old token");
    let (s, v) = server.send(Method::PUT, "/api/v1/services/shop", &legacy, edited.clone()).await;
    assert_eq!(s, 200, "unscoped tokens keep their rights: {v}");
    let mut moved = edited.clone();
    moved["spec"]["owner"] = json!("web");
    let (s, v) = server.send(Method::PUT, "/api/v1/services/shop", &alice, moved).await;
    refused(s, &v, "alice@example.com is not a member of team web");

    // Releases and secrets.
    let (s, v, _) =
        server.request(Method::POST, "/api/v1/services/shop/releases?version=9.9.9", Some(&bob), None).await;
    refused(s, &v, "may not publish releases of shop");
    let out = cli_stdin(&["secret", "set", "shop", "DB_PASSWORD", "--env", "dev"], &server.url, Some(&bob), b"hunter2");
    assert!(stderr(&out).contains("may not change secrets of shop in dev"), "{}", stderr(&out));
    let out =
        cli_stdin(&["secret", "set", "shop", "DB_PASSWORD", "--env", "dev"], &server.url, Some(&alice), b"hunter2");
    assert!(out.status.success(), "{}", stderr(&out));

    // Deployments: ownership everywhere, and prod's own lists on top.
    p.release("1.0.0", "");
    let out = p.deploy("1.0.0", "dev", &[], &bob);
    assert!(stderr(&out).contains("bob@example.com is not a member of team payments"), "{}", stderr(&out));
    let out = p.deploy("1.0.0", "dev", &[], &alice);
    assert!(out.status.success(), "{}", stderr(&out));
    p.wait_state(p.latest("dev").await["id"].as_i64().expect("id"), &["succeeded"]).await;
    let out = p.deploy("1.0.0", "prod", &[], &carol);
    assert!(stderr(&out).contains("prod allows deploys only by payments"), "{}", stderr(&out));
    let out = p.deploy("1.0.0", "prod", &[], &legacy);
    assert!(stderr(&out).contains("the token is unscoped"), "{}", stderr(&out));
    let out = p.deploy("1.0.0", "prod", &[], &alice);
    assert!(stdout(&out).contains("awaiting-approval"), "{}{}", stdout(&out), stderr(&out));
    let id = p.latest("prod").await["id"].as_i64().expect("id");
    let approve = |token: &str| server.cli(&["rollout", "approve", "shop", "--env", "prod"], Some(token));
    let out = approve(&bob);
    assert!(stderr(&out).contains("may not approve deployments of shop in prod"), "{}", stderr(&out));
    let out = approve(&legacy);
    assert!(stderr(&out).contains("prod allows approvals only by dave@example.com, infra"), "{}", stderr(&out));
    let out = approve(&dave);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(p.wait_state(id, &["succeeded"]).await["approvedBy"], "dave");

    // Every refusal is in the audit trail with its reason.
    let audit = server.get("/api/v1/audit?outcome=denied&limit=100").await.1;
    let entries = audit["entries"].as_array().expect("entries");
    let text = audit.to_string();
    assert!(entries.len() >= 10, "{audit}");
    assert!(text.contains("bob@example.com is not a member of team payments, which owns shop"), "{text}");
    assert!(text.contains("prod allows deploys only by payments"), "{text}");

    // Token listings say whom each token acts for, and what an unscoped one may do.
    let tokens = server.get("/api/v1/tokens").await.1;
    let by_name =
        |n: &str| tokens["tokens"].as_array().expect("tokens").iter().find(|t| t["name"] == n).cloned().expect("token");
    assert_eq!(by_name("alice")["scope"], "user");
    assert_eq!(by_name("alice")["user"], "alice@example.com");
    assert_eq!(by_name("ci-web")["team"], "web");
    assert_eq!(by_name("legacy")["scope"], "unscoped");
    assert!(by_name("legacy")["note"].as_str().is_some_and(|n| n.contains("every team's service")), "{tokens}");
    let out = server.cli(&["token", "list"], Some(ADMIN));
    assert!(stdout(&out).contains("user alice@example.com") && stdout(&out).contains("team web"), "{}", stdout(&out));
    assert!(stderr(&out).contains("unscoped: may change"), "{}", stderr(&out));
    let out =
        server.cli(&["token", "create", "--name", "ci-pay", "--role", "developer", "--team", "payments"], Some(ADMIN));
    assert!(stdout(&out).contains("team payments"), "{}{}", stdout(&out), stderr(&out));
    let out = server.cli(&["whoami"], Some(&carol));
    assert!(stdout(&out).contains("teams: infra (platform)"), "{}", stdout(&out));
}

#[tokio::test]
async fn flags_owned_by_a_team_or_its_service_change_only_by_that_team() {
    let (server, _db) = crate::harness::start().await;
    let docs = json!({"documents": [
        {"kind": "Team", "metadata": {"name": "payments"}, "spec": {"type": "stream-aligned", "members": ["alice@example.com"]}},
        {"kind": "Team", "metadata": {"name": "web"}, "spec": {"type": "stream-aligned", "members": ["bob@example.com"]}},
        {"kind": "Service", "metadata": {"name": "checkout"}, "spec": {"owner": "payments"}},
        {"kind": "Environment", "metadata": {"name": "production"}, "spec": {"order": 1, "production": true}},
    ]});
    let (s, v) = server.send(Method::POST, "/api/v1/apply", ADMIN, docs).await;
    assert_eq!(s, 200, "{v}");
    let alice = scoped(&server, "alice", json!({"user": "alice@example.com"})).await;
    let bob = scoped(&server, "bob", json!({"user": "bob@example.com"})).await;
    let flag = |name: &str, owner: Option<&str>| {
        let mut f = json!({"kind": "Flag", "metadata": {"name": name}, "spec": {"environments": {"production": {"enabled": false}}}});
        if let Some(o) = owner {
            f["spec"]["owner"] = json!(o);
        }
        f
    };
    // Owned through the service it names: its team changes it, others may not.
    let (s, v) = server.send(Method::POST, "/api/v1/flags", &alice, flag("checkout-v2", Some("checkout"))).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = server.send(Method::PUT, "/api/v1/flags/checkout-v2", &bob, flag("checkout-v2", None)).await;
    refused(s, &v, "may not change flag checkout-v2: bob@example.com is not a member of team payments");
    let (s, v) =
        server.send(Method::POST, "/api/v1/flags/checkout-v2/environments/production/enable", &bob, json!({})).await;
    refused(s, &v, "not a member of team payments");
    let (s, v) = server.send(Method::POST, "/api/v1/flags/checkout-v2/archive", &bob, json!({})).await;
    refused(s, &v, "not a member of team payments");
    let (s, v) = server
        .send(Method::POST, "/api/v1/flags/apply", &bob, json!({"documents": [flag("checkout-v2", Some("web"))]}))
        .await;
    refused(s, &v, "not a member of team payments");
    let (s, v) =
        server.send(Method::POST, "/api/v1/flags/checkout-v2/environments/production/enable", &alice, json!({})).await;
    assert_eq!(s, 200, "{v}");
    // Owned by a team directly; a flag with no owner stays anyone's.
    let (s, v) = server.send(Method::POST, "/api/v1/flags", &alice, flag("web-banner", Some("web"))).await;
    refused(s, &v, "alice@example.com is not a member of team web");
    let (s, v) = server.send(Method::POST, "/api/v1/flags", &bob, flag("web-banner", Some("web"))).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = server.send(Method::POST, "/api/v1/flags", &bob, flag("misc", None)).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) =
        server.send(Method::POST, "/api/v1/flags/misc/environments/production/enable", &alice, json!({})).await;
    assert_eq!(s, 200, "{v}");
    let audit = server.get("/api/v1/audit?outcome=denied&limit=100").await.1.to_string();
    assert!(audit.contains("may not change flag checkout-v2"), "{audit}");
}

#[tokio::test]
async fn each_start_says_how_many_developer_tokens_are_unscoped() {
    let db = pave_store::testing::fresh().await;
    let log = db.dir.path().join("serve.log");
    let mut first = Server::start_with(&db, &[], &[], Some(&log));
    first.token("legacy", "developer").await;
    first.token("reader", "viewer").await;
    scoped(&first, "ana", json!({"user": "ana@example.com"})).await;
    first.stop();
    let mut again = Server::start_with(&db, &[], &[], Some(&log));
    again.stop();
    let text = std::fs::read_to_string(&log).expect("log");
    let said: Vec<&str> = text.lines().filter(|l| l.contains("token(s) are unscoped")).collect();
    assert_eq!(said.len(), 1, "only the second start had an unscoped developer token: {said:?}");
    assert!(said[0].contains("1 developer token(s) are unscoped"), "{}", said[0]);
}
