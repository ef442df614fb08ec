//! Release policy for real: `pave release create --scan` has the server scan the stored
//! artifact (secrets, dependency audit against its OSV records, SBOM) and attach the results;
//! an environment's `policy.require` gates block a release that fails them, naming the gate
//! and why; an admin override goes through, recorded as an event and in the audit trail;
//! reports made in CI are attached with `pave release attach`, count unless the policy says
//! `acceptUploads: false`, and never replace a scan Pave made.

use std::path::Path;

use pave_store::testing::fresh;
use reqwest::Method;
use serde_json::{Value, json};

use crate::deploy::service;
use crate::harness::{ADMIN, Server, reap, stderr, stdout};

/// A package-lock v3 installing `lodash` at `version`.
fn package_lock(version: &str) -> String {
    json!({
        "name": "shop", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
        "packages": {
            "": {"name": "shop", "version": "1.0.0", "dependencies": {"lodash": format!("^{version}")}},
            "node_modules/lodash": {"version": version,
                "resolved": format!("https://registry.npmjs.org/lodash/-/lodash-{version}.tgz"),
                "integrity": "sha512-AAAA"}
        }
    })
    .to_string()
}

/// A planted AWS key id (the shape of gitleaks' own test keys), spelled in two halves so this
/// file itself stays clean for the scanners that read Pave's sources.
const PLANTED_KEY: &str = concat!("AKIA", "QYLPMN5HHHFPZAM2");

fn artifact(dir: &Path, lodash: &str, leak: bool) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("sample.env"), "").expect("write");
    std::fs::write(dir.join("package-lock.json"), package_lock(lodash)).expect("write");
    let config = if leak { format!("aws_access_key_id = {PLANTED_KEY}\n") } else { "region = eu-west-1\n".to_owned() };
    std::fs::write(dir.join("config.ini"), config).expect("write");
}

fn osv_db() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../pave-deps/tests/data/osv").to_str().expect("utf-8").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_policy_blocks_what_fails_its_gates_and_an_admin_override_is_audited() {
    let db = fresh().await;
    let osv = osv_db();
    let mut server = Server::start_on(&db, &["--osv-db", &osv]);
    let docs = json!({"documents": [
        {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "platform"}},
        {"kind": "Environment", "metadata": {"name": "dev"}, "spec": {"order": 1}},
        {"kind": "Environment", "metadata": {"name": "prod"}, "spec": {"order": 2, "production": true,
            "policy": {"require": ["secrets-clean", {"no-vulns-above": "medium"}, "sbom"]}}},
        service(json!({"strategy": "rolling"}), 1),
    ]});
    let (s, v) = server.send(Method::POST, "/api/v1/apply", ADMIN, docs).await;
    assert_eq!(s, 200, "{v}");
    // A policy naming an unknown gate is refused with the field.
    let bad = json!({"documents": [{"kind": "Environment", "metadata": {"name": "qa"},
        "spec": {"order": 3, "policy": {"require": ["signed"]}}}]});
    let (s, v) = server.send(Method::POST, "/api/v1/apply", ADMIN, bad).await;
    assert_eq!(s, 422, "{v}");
    assert!(v.to_string().contains("unknown gate \\\"signed\\\""), "{v}");

    let work = tempfile::tempdir().expect("tempdir");
    let (v1, v2, v3) = (work.path().join("1.0.0"), work.path().join("1.0.1"), work.path().join("1.0.2"));
    artifact(&v1, "4.17.15", true);
    artifact(&v2, "4.17.21", false);
    artifact(&v3, "4.17.21", false);
    let create = |version: &str, dir: &Path, scan: bool| {
        let mut args =
            vec!["release", "create", "shop", "--version", version, "--artifact", dir.to_str().expect("utf-8")];
        if scan {
            args.push("--scan");
        }
        server.cli(&args, Some(ADMIN))
    };

    // 1.0.0 carries a secret and a high-severity lodash: scanned, shown failing prod's policy.
    let out = create("1.0.0", &v1, true);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(shown.contains("secrets: 1 finding(s)"), "{shown}");
    assert!(shown.contains("high     lodash 4.17.15 GHSA-35jh-r3h4-6jhm -> 4.17.21"), "{shown}");
    assert!(shown.contains("policy of prod: FAILS"), "{shown}");
    let (_, rel) = server.get("/api/v1/services/shop/releases/1.0.0").await;
    assert_eq!(rel["scans"]["secrets"]["origin"]["source"], "pave", "{rel}");
    assert!(shown.contains("scanned by Pave"), "{shown}");
    assert_eq!(rel["scans"]["secrets"]["findings"][0]["rule"], "aws-access-key-id", "{rel}");
    assert!(!rel.to_string().contains(PLANTED_KEY), "the secret itself is never stored: {rel}");
    assert_eq!(rel["policy"][0]["environment"], "prod");
    assert_eq!(rel["policy"][0]["passed"], false);
    let (s, sbom, _) =
        server.request(Method::GET, "/api/v1/services/shop/releases/1.0.0/sbom", Some(ADMIN), None).await;
    assert_eq!(s, 200);
    assert_eq!((sbom["bomFormat"].as_str(), sbom["specVersion"].as_str()), (Some("CycloneDX"), Some("1.5")));
    assert!(sbom.to_string().contains("pkg:npm/lodash@4.17.15"), "{sbom}");

    // dev has no policy; prod refuses, naming each failed gate and why.
    let out = server.cli(&["deploy", "shop", "1.0.0", "--env", "dev"], Some(ADMIN));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = server.cli(&["deploy", "shop", "1.0.0", "--env", "prod"], Some(ADMIN));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("does not meet the environment's release policy (403)"), "{err}");
    assert!(
        err.contains("secrets-clean: the secret scan found 1 secret (aws-access-key-id), first at config.ini:1"),
        "{err}"
    );
    assert!(
        err.contains("no-vulns-above: medium: 2 vulnerabilities above medium: GHSA-35jh-r3h4-6jhm (high) in npm lodash 4.17.15, fix: 4.17.21; GHSA-p6mc-m468-83gw (high)"),
        "{err}"
    );
    assert!(!err.contains("sbom:"), "the sbom gate passed: {err}");

    // A developer cannot override; an admin can, with a reason, and it is on record.
    let dev = server.token("dev", "developer").await;
    let out = server.cli(&["deploy", "shop", "1.0.0", "--env", "prod", "--override", "hotfix"], Some(&dev));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("only an admin can override"), "{}", stderr(&out));
    let out = server.cli(
        &["deploy", "shop", "1.0.0", "--env", "prod", "--override", "INC-42: the key is revoked, lodash unreachable"],
        Some(ADMIN),
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let (_, events) = server.get("/api/v1/events?limit=1000").await;
    let overrides: Vec<&Value> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "deployment.override" && e["data"]["skipped"] == "release policy")
        .collect();
    assert_eq!(overrides.len(), 1, "{events}");
    assert_eq!(overrides[0]["data"]["gates"].as_array().map(Vec::len), Some(2), "{}", overrides[0]);
    assert_eq!(overrides[0]["data"]["reason"], "INC-42: the key is revoked, lodash unreachable");
    let (_, audit) = server.get("/api/v1/audit?limit=1000").await;
    let entry = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == "POST /api/v1/deployments" && e["detail"]["override"].is_string())
        .unwrap_or_else(|| panic!("no audited override: {audit}"));
    assert_eq!(
        entry["detail"]["overridden"],
        json!(["policy gate secrets-clean", "policy gate no-vulns-above: medium"]),
        "{entry}"
    );
    let denied = audit["entries"].as_array().expect("entries").iter().any(|e| {
        e["action"] == "POST /api/v1/deployments" && e["outcome"] == "denied" && e["detail"]["error"] == "policy-failed"
    });
    assert!(denied, "the refused deployment is audited with its problem type: {audit}");

    // 1.0.1 is clean: scanned, it passes prod's policy.
    let out = create("1.0.1", &v2, true);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("policy of prod: passes"), "{}", stdout(&out));
    for env in ["dev", "prod"] {
        let out = server.cli(&["deploy", "shop", "1.0.1", "--env", env], Some(ADMIN));
        assert!(out.status.success(), "{env}: {}{}", stdout(&out), stderr(&out));
    }

    // 1.0.2 has no scans: prod refuses; reports made "in CI" and attached make it pass.
    let out = create("1.0.2", &v3, false);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.cli(&["deploy", "shop", "1.0.2", "--env", "dev"], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.cli(&["deploy", "shop", "1.0.2", "--env", "prod"], Some(ADMIN));
    assert!(stderr(&out).contains("no secret scan is attached to the release"), "{}", stderr(&out));
    let reports = work.path().join("reports");
    std::fs::create_dir_all(&reports).expect("mkdir");
    let dir = v3.to_str().expect("utf-8");
    let (sec, dep, bom) = (reports.join("secrets.json"), reports.join("deps.json"), reports.join("sbom.json"));
    let ci = [
        vec!["scan", "secrets", dir, "-f", "json", "-o", sec.to_str().expect("utf-8")],
        vec!["scan", "deps", dir, "--db", osv.as_str(), "-f", "json", "-o", dep.to_str().expect("utf-8")],
        vec!["sbom", dir, "-o", bom.to_str().expect("utf-8")],
    ];
    for args in &ci {
        let out = server.cli(args, None);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    // A broken report is refused by name and attaches nothing.
    std::fs::write(reports.join("broken.json"), r#"{"tool": "pave"}"#).expect("write");
    let out = server.cli(
        &["release", "attach", "shop", "1.0.2", "--secrets", reports.join("broken.json").to_str().expect("utf-8")],
        Some(ADMIN),
    );
    assert!(stderr(&out).contains("secrets report: a Pave report has a `findings` list"), "{}", stderr(&out));
    let out = server.cli(
        &[
            "release",
            "attach",
            "shop",
            "1.0.2",
            "--secrets",
            sec.to_str().expect("utf-8"),
            "--deps",
            dep.to_str().expect("utf-8"),
            "--sbom",
            bom.to_str().expect("utf-8"),
        ],
        Some(ADMIN),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("policy of prod: passes"), "{}", stdout(&out));
    let out = server.cli(&["release", "show", "shop", "1.0.2"], Some(ADMIN));
    assert!(
        stdout(&out).contains("ok   no-vulns-above: medium: 1 package audited, 0 vulnerabilities"),
        "{}",
        stdout(&out)
    );
    let out = server.cli(&["deploy", "shop", "1.0.2", "--env", "prod"], Some(ADMIN));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // A policy that trusts only Pave's own scans: the uploaded reports no longer count...
    let strict = json!({"documents": [{"kind": "Environment", "metadata": {"name": "prod"}, "spec": {"order": 2,
        "production": true, "policy": {"require": ["secrets-clean", {"no-vulns-above": "medium"}, "sbom"],
        "acceptUploads": false}}}]});
    let (s, v) = server.send(Method::POST, "/api/v1/apply", ADMIN, strict).await;
    assert_eq!(s, 200, "{v}");
    let out = server.cli(&["release", "show", "shop", "1.0.2"], Some(ADMIN));
    assert!(stdout(&out).contains("policy of prod: FAILS"), "{}", stdout(&out));
    assert!(stdout(&out).contains("only scans Pave made of the artifact count here"), "{}", stdout(&out));
    // ...until Pave scans the artifact itself; and an upload cannot replace what Pave made.
    let out = server.cli(&["release", "scan", "shop", "1.0.2"], Some(ADMIN));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("policy of prod: passes"), "{}", stdout(&out));
    let out = server.cli(&["release", "attach", "shop", "1.0.2", "--sbom", bom.to_str().expect("utf-8")], Some(ADMIN));
    assert!(stderr(&out).contains("carries an SBOM Pave made of its artifact"), "{}", stderr(&out));
    // Reports of another artifact are refused.
    let (s, v) = server
        .send(
            Method::POST,
            "/api/v1/services/shop/releases/1.0.2/scans",
            ADMIN,
            json!({"digest": "sha256:0000", "sbom": {"bomFormat": "CycloneDX", "specVersion": "1.5"}}),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    server.stop();
    reap(db.dir.path());
}

/// A release whose artifact holds hostile lockfiles is scanned, not refused with a 500: each
/// is a note, the audit records it and the dependency gates fail as incomplete. RustSec's
/// notices (an unmaintained `atty`) pass `no-vulns-above` and fail only `no-notices`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_lockfiles_are_notes_and_rustsec_notices_gate_only_when_asked() {
    let db = fresh().await;
    let osv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pave-deps/tests/data/osv-notices");
    let mut server = Server::start_on(&db, &["--osv-db", osv.to_str().expect("utf-8")]);
    let docs = json!({"documents": [
        {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "platform"}},
        {"kind": "Environment", "metadata": {"name": "prod"}, "spec": {"order": 1, "production": true,
            "policy": {"require": [{"no-vulns-above": "high"}]}}},
        {"kind": "Environment", "metadata": {"name": "vault"}, "spec": {"order": 2,
            "policy": {"require": [{"no-vulns-above": "high"}, {"no-notices": "unmaintained"}]}}},
        service(json!({"strategy": "rolling"}), 1),
    ]});
    let (s, v) = server.send(Method::POST, "/api/v1/apply", ADMIN, docs).await;
    assert_eq!(s, 200, "{v}");
    let work = tempfile::tempdir().expect("tempdir");
    let atty = "version = 4\n\n[[package]]\nname = \"atty\"\nversion = \"0.2.14\"\n\
                source = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
    let clean = work.path().join("1.0.0");
    std::fs::create_dir_all(&clean).expect("mkdir");
    std::fs::write(clean.join("Cargo.lock"), atty).expect("write");
    let hostile = work.path().join("1.0.1");
    std::fs::create_dir_all(hostile.join("web")).expect("mkdir");
    std::fs::write(hostile.join("Cargo.lock"), atty).expect("write");
    std::fs::write(hostile.join("requirements.txt"), "-r /etc/passwd\n").expect("write");
    let bomb = format!("lockfileVersion: '9.0'\nx: {}1{}\n", "[".repeat(40_000), "]".repeat(40_000));
    std::fs::write(hostile.join("web/pnpm-lock.yaml"), bomb).expect("write");
    let create = |version: &str, dir: &Path| {
        let args =
            ["release", "create", "shop", "--version", version, "--artifact", dir.to_str().expect("utf-8"), "--scan"];
        server.cli(&args, Some(ADMIN))
    };

    let out = create("1.0.0", &clean);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(shown.contains("deps:    0 vulnerabilities in 1 packages"), "{shown}");
    assert!(shown.contains("warning unmaintained atty 0.2.14 RUSTSEC-2024-0375"), "{shown}");
    let (_, rel) = server.get("/api/v1/services/shop/releases/1.0.0").await;
    assert_eq!(rel["policy"][0]["passed"], true, "an unmaintained crate is no critical vulnerability: {rel}");
    assert_eq!(rel["policy"][1]["passed"], false, "{rel}");
    assert_eq!(
        rel["policy"][1]["gates"][1]["reason"],
        "1 unmaintained notice: RUSTSEC-2024-0375 (unmaintained) in crates.io atty 0.2.14",
        "{rel}"
    );

    let out = create("1.0.1", &hostile);
    assert!(out.status.success(), "the scan runs: {}{}", stdout(&out), stderr(&out));
    let shown = stdout(&out);
    assert!(
        shown.contains("note: lockfile requirements.txt: line 1: includes /etc/passwd, which cannot be read"),
        "{shown}"
    );
    assert!(shown.contains("note: lockfile web/pnpm-lock.yaml: refused before parsing: line 2: collections nested deeper than 64 levels"), "{shown}");
    let (_, rel) = server.get("/api/v1/services/shop/releases/1.0.1").await;
    assert_eq!(rel["scans"]["deps"]["unreadable"].as_array().map(Vec::len), Some(2), "{rel}");
    assert_eq!(rel["scans"]["deps"]["packages"], 1, "the readable lockfile is audited: {rel}");
    let reason = rel["policy"][0]["gates"][0]["reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("the dependency audit is incomplete: 2 lockfiles could not be read"), "{rel}");
    server.stop();
    reap(db.dir.path());
}
