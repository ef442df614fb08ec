//! Delivery facts in through the API and the CLI, DORA metrics out.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{ADMIN, Server, start, stderr, stdout};

/// Hours after 2024-01-01T00:00Z as RFC 3339.
fn t(hours: f64) -> String {
    let ms = 1_704_067_200_000i64 + (hours * 3_600_000.0) as i64;
    pave_model::Timestamp(ms).to_string()
}

fn deployment(id: &str, env: &str, start: f64, status: &str, kind: &str, commit: Option<&str>) -> Value {
    let mut d = json!({"type": "deployment", "id": id, "service": "api", "environment": env, "version": id,
        "startedAt": t(start), "finishedAt": t(start + 0.1), "status": status, "kind": kind});
    if let Some(c) = commit {
        d["commit"] = json!(c);
    }
    d
}

async fn setup(s: &Server) {
    let docs = json!({"documents": [
        {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "stream-aligned"}},
        {"kind": "Service", "metadata": {"name": "api"}, "spec": {"owner": "core"}},
        {"kind": "Environment", "metadata": {"name": "staging"}, "spec": {"order": 1}},
        {"kind": "Environment", "metadata": {"name": "prod"}, "spec": {"order": 2, "production": true}},
    ]});
    let (st, v) = s.send(Method::POST, "/api/v1/apply", ADMIN, docs).await;
    assert_eq!(st, 200, "{v}");
}

/// The same week as pave-dora's unit test, reported over HTTP.
fn week() -> Value {
    json!({"events": [
        {"type": "change", "sha": "c000001", "service": "api", "authoredAt": t(0.0), "committedAt": t(0.0)},
        {"type": "change", "sha": "c000002", "service": "api", "authoredAt": t(10.0), "committedAt": t(10.0), "mergedAt": t(11.0)},
        {"type": "change", "sha": "c000003", "service": "api", "authoredAt": t(30.0), "committedAt": t(30.0)},
        deployment("d1", "prod", 1.0, "succeeded", "planned", Some("c000001")),
        deployment("d2", "prod", 12.0, "succeeded", "planned", Some("c000002")),
        deployment("d3", "prod", 31.0, "failed", "planned", Some("c000003")),
        deployment("d4", "prod", 33.0, "succeeded", "unplanned", Some("c000003")),
        deployment("d5", "prod", 50.0, "succeeded", "planned", None),
        deployment("d6", "staging", 52.0, "succeeded", "planned", None),
        {"type": "deployment", "id": "d7", "service": "api", "environment": "prod", "version": "d7",
         "startedAt": t(60.0), "finishedAt": t(60.5), "status": "rolled-back"},
        {"type": "incident", "id": "i1", "service": "api", "openedAt": t(51.0), "detectedAt": t(51.5),
         "resolvedAt": t(53.0), "severity": "sev2", "deployment": "d5"},
    ]})
}

#[tokio::test]
async fn metrics_from_reported_events() {
    let (s, _db) = start().await;
    setup(&s).await;
    let (st, v) = s.send(Method::POST, "/api/v1/events", ADMIN, week()).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["summary"]["created"], 11);

    // Reporting the same batch again changes nothing and appends no event.
    let (_, before) = s.get("/api/v1/events?kind=deployment.*,incident.*,change.*&limit=1000").await;
    let (st, v) = s.send(Method::POST, "/api/v1/events", ADMIN, week()).await;
    assert_eq!((st, &v["summary"]["unchanged"]), (200, &json!(11)), "{v}");
    let (_, after) = s.get("/api/v1/events?kind=deployment.*,incident.*,change.*&limit=1000").await;
    assert_eq!(before["events"].as_array().map(Vec::len), after["events"].as_array().map(Vec::len));
    assert_eq!(after["events"].as_array().map(Vec::len), Some(11));

    let q = format!("/api/v1/dora?from={}&to={}&explain=true", t(0.0), t(168.0));
    let (st, r) = s.get(&q).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["scope"]["environments"], json!(["prod"]));
    assert_eq!(r["deploymentFrequency"]["deployments"], 4);
    assert_eq!(r["deploymentFrequency"]["level"]["level"], "high");
    assert_eq!(r["leadTime"]["commits"]["median"], 7560.0);
    assert_eq!(r["leadTime"]["commits"]["p90"], 11160.0);
    assert_eq!(r["changeFailureRate"]["rate"], 0.5);
    assert_eq!(r["recoveryTime"]["time"]["median"], 7560.0);
    assert_eq!(r["timeToDetect"]["median"], 1800.0);
    assert_eq!(r["reworkRate"]["count"], 1);
    assert_eq!(r["explain"]["failed"], json!(["d3", "d5", "d7"]));
    // Named fields with their unit (issue 16 item 34), not positional arrays.
    let lead = &r["explain"]["commits"][0];
    assert!(lead["deployment"].is_string() && lead["commit"].is_string(), "{lead}");
    assert!(lead["leadTimeSeconds"].as_f64().is_some_and(|s| s > 0.0), "{lead}");
    assert!(r["explain"]["recoveries"][0]["recoverySeconds"].is_number(), "{}", r["explain"]["recoveries"]);
    assert_eq!(r["benchmark"], "dora-2024");

    // The incident re-reported without its resolution: updated, and the failure is open.
    let mut open = week()["events"][10].clone();
    open.as_object_mut().expect("object").remove("resolvedAt");
    let (_, v) = s.send(Method::POST, "/api/v1/events", ADMIN, json!({"events": [open]})).await;
    assert_eq!(v["results"][0]["action"], "updated", "{v}");
    let (_, r) = s.get(&q).await;
    assert_eq!(r["recoveryTime"]["open"], 1);

    // The 2023 table and a weekly series.
    let (_, r) = s.get(&format!("/api/v1/dora?from={}&to={}&benchmark=dora-2023&series=week", t(0.0), t(336.0))).await;
    assert_eq!(r["benchmark"], "dora-2023");
    assert_eq!(r["series"].as_array().map(Vec::len), Some(2));
    assert_eq!(r["series"][1]["deploymentFrequency"]["deployments"], 0);
}

#[tokio::test]
async fn bad_events_are_refused_whole() {
    let (s, _db) = start().await;
    setup(&s).await;
    let cases = [
        (
            json!({"events": [deployment("x1", "prod", 1.0, "succeeded", "planned", None), {"type": "deployment", "id": "x2",
            "service": "ghost", "environment": "prod", "version": "1", "startedAt": t(1.0), "finishedAt": t(2.0), "status": "succeeded"}]}),
            "service \"ghost\" does not exist",
        ),
        (
            json!({"events": [{"type": "deployment", "id": "x3", "service": "api", "environment": "prod", "version": "1",
            "startedAt": t(2.0), "finishedAt": t(1.0), "status": "succeeded"}]}),
            "finishedAt",
        ),
        (
            json!({"events": [deployment("x4", "prod", 1.0, "succeeded", "planned", None), deployment("x4", "prod", 2.0, "succeeded", "planned", None)]}),
            "appears twice",
        ),
        (
            json!({"events": [{"type": "incident", "id": "i9", "service": "api", "openedAt": t(1.0), "deployment": "nope"}]}),
            "deployment \"nope\" does not exist",
        ),
        (json!({"events": [{"type": "deploy"}]}), "unknown type"),
    ];
    for (body, needle) in cases {
        let (st, v) = s.send(Method::POST, "/api/v1/events", ADMIN, body).await;
        assert_eq!(st, 422, "{v}");
        assert!(v["detail"].as_str().unwrap_or("").contains(needle), "{needle}: {v}");
    }
    let (_, r) = s.get(&format!("/api/v1/dora?from={}&to={}", t(0.0), t(168.0))).await;
    assert_eq!(r["changeFailureRate"]["total"], 0, "nothing from a refused batch was stored: {r}");
    let (st, _) = s.get("/api/v1/dora?series=daily").await;
    assert_eq!(st, 400);
    let (st, _) = s.get("/api/v1/dora?team=nobody").await;
    assert_eq!(st, 404);
    // Viewers may read metrics but not report facts.
    let viewer = s.token("reader", "viewer").await;
    assert_eq!(s.request(Method::GET, "/api/v1/dora", Some(&viewer), None).await.0, 200);
    assert_eq!(s.send(Method::POST, "/api/v1/events", &viewer, week()).await.0, 403);
}

#[tokio::test]
async fn cli_reports_and_shows_metrics() {
    let (s, _db) = start().await;
    setup(&s).await;
    let out = s.cli(&["event", "change", "--sha", "abcdef1", "--service", "api", "--committed", &t(0.0)], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.cli(
        &[
            "event",
            "deployment",
            "--service",
            "api",
            "--env",
            "prod",
            "--version",
            "1.0.0",
            "--commit",
            "abcdef1",
            "--started",
            &t(2.0),
            "--finished",
            &t(2.5),
            "--id",
            "rel-1",
        ],
        Some(ADMIN),
    );
    assert!(stdout(&out).contains("deployment rel-1 created"), "{} {}", stdout(&out), stderr(&out));
    let out = s.cli(
        &[
            "event",
            "incident",
            "--id",
            "inc-1",
            "--service",
            "api",
            "--opened",
            &t(3.0),
            "--detected",
            &t(3.25),
            "--resolved",
            &t(4.0),
            "--deployment",
            "rel-1",
        ],
        Some(ADMIN),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.cli(
        &["event", "deployment", "--service", "api", "--env", "prod", "--version", "1", "--status", "sideways"],
        Some(ADMIN),
    );
    assert!(stderr(&out).contains("--status \"sideways\" is not valid"), "{}", stderr(&out));

    let out = s.cli(&["dora", "--from", &t(0.0), "--to", &t(24.0)], Some(ADMIN));
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("Deployment frequency"), "{text}");
    let row = |name: &str| {
        text.lines().find(|l| l.starts_with(name)).map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    assert_eq!(
        row("Lead time").as_deref(),
        Some("Lead time for changes median 2h 30m, p90 2h 30m (1 items) elite"),
        "{text}"
    );
    assert_eq!(row("Change failure").as_deref(), Some("Change failure rate 100.0% (1 of 1) low"), "{text}");
    let out = s.cli(&["dora", "--from", &t(0.0), "--to", &t(24.0), "--service", "api", "-o", "json"], Some(ADMIN));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    // The deployment went live at 2.5 h and its incident was resolved at 4 h.
    assert_eq!(v["recoveryTime"]["time"]["median"], 5400.0);
}

#[tokio::test]
async fn users_can_bring_their_own_benchmark_table() {
    let (s, _db) = start().await;
    setup(&s).await;
    s.send(Method::POST, "/api/v1/events", ADMIN, week()).await;
    let table = json!({"name": "ours", "metrics": {"reworkRate": {"unit": "ratio", "better": "lower",
        "levels": [{"level": "good", "max": 0.1, "label": "under 10%"}, {"level": "poor", "min": 0.1, "label": "10% or more"}]}}});
    let body = json!({"from": t(0.0), "to": t(168.0), "benchmarkTable": table});
    let (st, r) = s.send(Method::POST, "/api/v1/dora", ADMIN, body).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["benchmark"], "ours");
    assert_eq!(r["reworkRate"]["level"]["level"], "poor"); // 1 of 6
    assert!(r["leadTime"]["level"].is_null(), "a table without lead-time levels gives none");
    let bad = json!({"benchmarkTable": {"name": "x", "metrics": {"leadTime": {"unit": "s", "better": "lower", "levels": [{"level": "a"}]}}}});
    let (st, v) = s.send(Method::POST, "/api/v1/dora", ADMIN, bad).await;
    assert_eq!(st, 422, "{v}");
    // A query is not a change: it is not audited even though it is a POST.
    let (_, audit) = s.get("/api/v1/audit?limit=100").await;
    assert!(!audit.to_string().contains("/api/v1/dora"), "{audit}");
}

/// Flag changes sit beside deployments: in the DORA report and on the timeline around an
/// incident, scoped by environment and owner.
#[tokio::test]
async fn flag_changes_show_in_dora_and_the_incident_timeline() {
    let (s, _db) = start().await;
    setup(&s).await;
    let now = pave_model::Timestamp(pave_model::clock::now_ms());
    let ago = |hours: f64| pave_model::Timestamp(now.0 - (hours * 3_600_000.0) as i64).to_string();
    let facts = json!({"events": [
        {"type": "deployment", "id": "dep-now", "service": "api", "environment": "prod", "version": "9",
         "startedAt": ago(2.0), "finishedAt": ago(1.9), "status": "succeeded"},
        {"type": "deployment", "id": "dep-old", "service": "api", "environment": "prod", "version": "8",
         "startedAt": ago(30.0), "finishedAt": ago(29.9), "status": "succeeded"},
        {"type": "incident", "id": "inc-7", "service": "api", "openedAt": ago(1.0), "severity": "sev1",
         "title": "checkout errors"},
    ]});
    let (st, v) = s.send(Method::POST, "/api/v1/events", ADMIN, facts).await;
    assert_eq!(st, 200, "{v}");
    for args in [
        &[
            "flags",
            "create",
            "checkout.kill",
            "--type",
            "kill-switch",
            "--owner",
            "core",
            "--env",
            "prod",
            "--env",
            "staging",
        ][..],
        &["flags", "enable", "checkout.kill", "--env", "prod"],
        &["flags", "create", "search.v2", "--owner", "search", "--env", "staging"],
        &["flags", "disable", "checkout.kill", "--env", "prod"],
    ] {
        let out = s.cli(args, Some(ADMIN));
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }

    // The incident's timeline: the deployment before it, the incident, and the kill switch.
    let out = s.cli(&["timeline", "--incident", "inc-7", "-o", "json"], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("json");
    let what: Vec<String> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| format!("{} {}", e["type"].as_str().unwrap(), e["id"].as_str().or(e["flag"].as_str()).unwrap()))
        .collect();
    assert_eq!(
        what,
        [
            "deployment dep-now",
            "incident inc-7",
            "flag checkout.kill",
            "flag checkout.kill",
            "flag search.v2",
            "flag checkout.kill"
        ],
        "{v}"
    );
    let last = &v["entries"][5];
    assert_eq!((last["action"].as_str(), last["actor"].as_str()), (Some("updated"), Some("admin")), "{last}");
    assert_eq!(
        last["environments"],
        json!([{"environment": "prod", "enabled": false, "enabledBefore": true,
        "exposure": "off", "exposureBefore": "on"}])
    );
    assert_eq!(v["incident"]["id"], "inc-7");

    // Scoped to prod and the api's team: the staging-only flag of another team drops out.
    let out = s.cli(&["timeline", "--env", "prod", "--service", "api"], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("flag checkout.kill updated") && text.contains("prod: on -> off"), "{text}");
    assert!(text.contains("deploy api 9") && text.contains("incident inc-7"), "{text}");
    assert!(!text.contains("search.v2") && !text.contains("dep-old"), "{text}");

    // DORA: the flag changes counted beside the deployments, with the switch-off.
    let (st, v) = s.send(Method::POST, "/api/v1/dora", ADMIN, json!({"from": "1d", "explain": true})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["flagChanges"]["count"], 3, "{v}");
    assert_eq!((v["flagChanges"]["flags"].as_u64(), v["flagChanges"]["turnedOff"].as_u64()), (Some(1), Some(1)));
    assert_eq!(
        v["explain"]["flagChanges"],
        json!(["checkout.kill@prod created", "checkout.kill@prod updated", "checkout.kill@prod updated"])
    );
    let out = s.cli(&["dora", "--from", "1d"], Some(ADMIN));
    assert!(stdout(&out).contains("Flag changes: 3 to 1 flags"), "{}", stdout(&out));

    // Bad requests name the problem.
    for (path, status, needle) in [
        ("/api/v1/timeline?incident=nope", 404, "nope\\\" does not exist"),
        ("/api/v1/timeline?limit=0", 400, "limit 0 is out of range"),
        ("/api/v1/timeline?incident=inc-7&from=2h", 400, "not both"),
        ("/api/v1/timeline?incident=inc-7&before=soon", 400, "is not a span"),
        ("/api/v1/timeline?color=red", 400, "color"),
    ] {
        let resp = s.http.get(format!("{}{path}", s.url)).bearer_auth(ADMIN).send().await.expect("request");
        assert_eq!(resp.status().as_u16(), status, "{path}");
        let body = resp.text().await.expect("body");
        assert!(body.contains(needle), "{path}: {body}");
    }
}
