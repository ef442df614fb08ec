//! Signed GitHub and GitLab webhooks, in their real payload shapes, feed the DORA metrics.

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::{ADMIN, Server};

const SECRET: &str = "gh-secret";
const TOKEN: &str = "gl-token";

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn github(s: &Server, event: &str, payload: &Value, signature: Option<String>) -> (u16, Value) {
    let body = serde_json::to_vec(payload).expect("json");
    let mut req = s
        .http
        .post(format!("{}/api/v1/webhooks/github", s.url))
        .header("x-github-event", event)
        .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .header("content-type", "application/json");
    if let Some(sig) = signature.or_else(|| Some(sign(&body))) {
        req = req.header("x-hub-signature-256", sig);
    }
    let resp = req.body(body).send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn gitlab(s: &Server, event: &str, payload: &Value, token: &str) -> (u16, Value) {
    let resp = s
        .http
        .post(format!("{}/api/v1/webhooks/gitlab", s.url))
        .header("x-gitlab-event", event)
        .header("x-gitlab-token", token)
        .json(payload)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn repo() -> Value {
    json!({"id": 1296269, "full_name": "acme/shop", "html_url": "https://github.com/acme/shop",
           "clone_url": "https://github.com/acme/shop.git", "default_branch": "main"})
}

#[tokio::test]
async fn github_and_gitlab_webhooks_feed_the_metrics() {
    let db = pave_store::testing::fresh().await;
    // The GitHub secret from a file, the GitLab token from the environment: never arguments.
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("github-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("write");
    let s = Server::start_with(
        &db,
        &["--github-webhook-secret-file", secret_file.to_str().expect("path")],
        &[("PAVE_GITLAB_WEBHOOK_TOKEN", TOKEN)],
        None,
    );
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", s.child.id())).expect("cmdline");
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(!cmdline.contains(SECRET) && !cmdline.contains(TOKEN), "a secret is in the process list: {cmdline}");
    let docs = json!({"documents": [
        {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "stream-aligned"}},
        {"kind": "Service", "metadata": {"name": "shop"}, "spec": {"owner": "core", "repository": "https://github.com/acme/shop"}},
        {"kind": "Service", "metadata": {"name": "billing"}, "spec": {"owner": "core", "repository": "https://gitlab.example.com/acme/billing.git"}},
        {"kind": "Environment", "metadata": {"name": "production"}, "spec": {"order": 1, "production": true}},
    ]});
    assert_eq!(s.send(Method::POST, "/api/v1/apply", ADMIN, docs).await.0, 200);

    // GitHub: a push to main, a merged pull request, a deployment, an incident opened and closed.
    let push = json!({"ref": "refs/heads/main", "before": "0000000", "after": "abc1234def5678", "repository": repo(),
        "commits": [{"id": "abc1234def5678", "message": "Add cart", "timestamp": "2024-03-01T09:00:00Z",
                     "author": {"name": "Ana", "email": "ana@example.com"}}]});
    let (st, v) = github(&s, "push", &push, None).await;
    assert_eq!((st, &v["stored"]), (200, &json!(1)), "{v}");
    let (st, v) =
        github(&s, "push", &json!({"ref": "refs/heads/topic", "repository": repo(), "commits": []}), None).await;
    assert_eq!((st, v["stored"].as_i64()), (200, Some(0)), "{v}");
    let pr = json!({"action": "closed", "number": 7, "repository": repo(), "pull_request": {"number": 7, "merged": true,
        "merge_commit_sha": "fedcba9876543", "created_at": "2024-03-01T08:00:00Z", "merged_at": "2024-03-01T10:00:00Z",
        "title": "Cart", "user": {"login": "ana"}}});
    assert_eq!(github(&s, "pull_request", &pr, None).await.0, 200);
    let deploy = json!({"action": "created", "repository": repo(),
        "deployment_status": {"state": "success", "created_at": "2024-03-01T11:00:00Z"},
        "deployment": {"id": 42, "sha": "abc1234def5678", "ref": "main", "environment": "production", "created_at": "2024-03-01T10:50:00Z"}});
    let (st, v) = github(&s, "deployment_status", &deploy, None).await;
    assert_eq!((st, &v["facts"][0]), (200, &json!("deployment/github-deployment-42")), "{v}");
    let mut issue = json!({"action": "labeled", "repository": repo(), "label": {"name": "incident"},
        "issue": {"number": 9, "title": "Checkout down", "state": "open", "created_at": "2024-03-01T12:00:00Z",
                  "updated_at": "2024-03-01T12:10:00Z", "closed_at": null, "labels": [{"name": "incident"}]}});
    assert_eq!(github(&s, "issues", &issue, None).await.0, 200);
    issue["action"] = json!("closed");
    issue["issue"]["state"] = json!("closed");
    issue["issue"]["updated_at"] = json!("2024-03-01T13:00:00Z");
    issue["issue"]["closed_at"] = json!("2024-03-01T13:00:00Z");
    let (st, v) = github(&s, "issues", &issue, None).await;
    assert_eq!(st, 200, "{v}");

    // A bad signature is refused, audited, and stores nothing.
    let evil = json!({"ref": "refs/heads/main", "repository": repo(), "commits": [{"id": "1111111aaaaaaa",
        "message": "evil", "timestamp": "2024-03-01T09:00:00Z", "author": {"name": "x"}}]});
    let (st, _) = github(&s, "push", &evil, Some("sha256=00".into())).await;
    assert_eq!(st, 401);
    let (st, _) = github(&s, "push", &evil, Some(String::new())).await;
    assert_eq!(st, 401);
    let (_, log) = s.get("/api/v1/events?kind=change.*&limit=100").await;
    assert!(!log.to_string().contains("1111111aaaaaaa"), "nothing stored from a bad signature");
    let (_, audit) = s.get("/api/v1/audit?actor=webhook:github&outcome=denied").await;
    assert_eq!(audit["entries"].as_array().map(Vec::len), Some(2), "{audit}");
    assert_eq!(audit["entries"][0]["action"], "POST /api/v1/webhooks/github");

    // GitLab: push, merged MR, deployment, incident.
    let project = json!({"web_url": "https://gitlab.example.com/acme/billing", "git_http_url": "https://gitlab.example.com/acme/billing.git", "default_branch": "main"});
    let push = json!({"object_kind": "push", "ref": "refs/heads/main", "project": project, "commits": [
        {"id": "b1b1b1b1b1b1b1", "message": "Invoice", "timestamp": "2024-03-02T09:00:00+00:00", "author": {"name": "Bo"}}]});
    assert_eq!(gitlab(&s, "Push Hook", &push, TOKEN).await.0, 200);
    assert_eq!(gitlab(&s, "Push Hook", &push, "wrong").await.0, 401);
    let mr = json!({"object_kind": "merge_request", "user": {"username": "bo"}, "project": project, "object_attributes": {
        "iid": 3, "state": "merged", "merge_commit_sha": "c2c2c2c2c2c2c2", "title": "Invoices",
        "created_at": "2024-03-02 08:00:00 UTC", "updated_at": "2024-03-02 09:30:00 UTC"}});
    assert_eq!(gitlab(&s, "Merge Request Hook", &mr, TOKEN).await.0, 200);
    let dep = json!({"object_kind": "deployment", "status": "failed", "deployment_id": 15, "environment": "production",
        "short_sha": "b1b1b1b1", "ref": "main", "status_changed_at": "2024-03-02 10:10:00 +0000",
        "deployable_started_at": "2024-03-02 10:00:00 +0000", "project": project});
    assert_eq!(gitlab(&s, "Deployment Hook", &dep, TOKEN).await.0, 200);
    let inc = json!({"object_kind": "issue", "project": project, "labels": [], "object_attributes": {"iid": 5,
        "title": "Invoices wrong", "state": "opened", "issue_type": "incident", "severity": "high",
        "created_at": "2024-03-02 10:20:00 UTC"}});
    let (st, v) = gitlab(&s, "Issue Hook", &inc, TOKEN).await;
    assert_eq!(st, 200, "{v}");
    let unknown = json!({"object_kind": "push", "ref": "refs/heads/main", "project": {"web_url": "https://gitlab.example.com/x/y", "default_branch": "main"}, "commits": []});
    let (st, v) = gitlab(&s, "Push Hook", &unknown, TOKEN).await;
    assert_eq!(st, 422, "{v}");
    assert!(v["detail"].as_str().unwrap_or("").contains("no service has repository"), "{v}");

    // The metrics see it all.
    let (_, r) = s.get("/api/v1/dora?from=2024-03-01T00:00:00Z&to=2024-03-03T00:00:00Z&explain=true").await;
    assert_eq!(r["deploymentFrequency"]["deployments"], 1, "{r}");
    assert_eq!(r["changeFailureRate"]["total"], 2, "{r}");
    // GitHub's issue was labelled an incident 10 minutes after it opened; GitLab's was filed
    // as an incident, detected when opened.
    assert_eq!(
        (r["timeToDetect"]["median"].as_f64(), r["timeToDetect"]["p90"].as_f64()),
        (Some(300.0), Some(600.0)),
        "{r}"
    );
    assert_eq!(r["explain"]["incidents"], json!(["github-shop-9", "gitlab-billing-5"]));
    let (_, inc) = s.get("/api/v1/events?subject=incident/github-shop-9").await;
    let kinds: Vec<&str> =
        inc["events"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["incident.reported", "incident.updated"]);
    let last = &inc["events"][1]["data"];
    assert_eq!(
        (last["detectedAt"].as_str(), last["resolvedAt"].as_str()),
        (Some("2024-03-01T12:10:00.000Z"), Some("2024-03-01T13:00:00.000Z"))
    );
}

#[tokio::test]
async fn webhooks_are_refused_unless_configured() {
    let (s, _db) = crate::harness::start().await;
    let (st, v) = github(&s, "ping", &json!({"zen": "x"}), None).await;
    assert_eq!(st, 404, "{v}");
    assert!(v["detail"].as_str().unwrap_or("").contains("PAVE_GITHUB_WEBHOOK_SECRET"), "{v}");
}
