//! `pave scan secrets` as a CI gate: exit codes, text/JSON/SARIF reports, redaction,
//! accepted findings (baseline, .paveignore), history scans, and bad configurations.

use std::path::Path;
use std::process::{Command, Output};

use pave_testkit::{git, git_at};
use serde_json::Value;

use crate::harness::{pave_bin, stderr, stdout};

fn scan(args: &[&str]) -> Output {
    Command::new(pave_bin()).arg("scan").arg("secrets").args(args).output().expect("pave runs")
}

/// Token-shaped strings made up for the test, assembled at run time.
fn github_token() -> String {
    ["ghp_", "7kQ2pL9xW4mN8vB3cT6yR1sD5fG0hJ2kLa4z"].concat()
}

fn aws_key() -> String {
    ["AKIA", "QYLPMN5HHHFPZAM2"].concat()
}

fn write(dir: &Path, path: &str, text: &str) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
    std::fs::write(full, text).expect("write");
}

#[test]
fn a_working_tree_scan_gates_reports_and_redacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = github_token();
    write(dir.path(), "src/main.rs", "fn main() {}\n");
    write(dir.path(), "deploy/release.sh", &format!("#!/bin/sh\n\nexport GH_TOKEN={token}\n"));
    write(dir.path(), "config/aws.env", &format!("AWS_ACCESS_KEY_ID={}\n", aws_key()));
    let root = dir.path().to_str().expect("utf-8");

    let out = scan(&[root]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("deploy/release.sh:3:17  github-token  ghp_*****"), "{text}");
    assert!(text.contains("config/aws.env:1:19  aws-access-key-id  AKIA*****"), "{text}");
    assert!(!text.contains(&token) && !stderr(&out).contains(&token), "redacted by default");
    assert!(stderr(&out).contains("2 secret(s) found in 3 files"), "{}", stderr(&out));

    let out = scan(&[root, "-f", "json", "--no-redact"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("json");
    let gh =
        report["findings"].as_array().expect("findings").iter().find(|f| f["ruleId"] == "github-token").expect("gh");
    assert_eq!(gh["secret"], token.as_str());
    assert_eq!((gh["startLine"].as_u64(), gh["file"].as_str()), (Some(3), Some("deploy/release.sh")));
    assert_eq!(gh["fingerprint"], "deploy/release.sh:github-token:3");
    assert_eq!(report["summary"]["files"], 3);

    let out = scan(&[root, "-f", "sarif"]);
    let sarif: Value = serde_json::from_str(&stdout(&out)).expect("sarif");
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "pave");
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    let r = results.iter().find(|r| r["ruleId"] == "github-token").expect("result");
    let rule = &run["tool"]["driver"]["rules"][r["ruleIndex"].as_u64().expect("index") as usize];
    assert_eq!(rule["id"], "github-token");
    let region = &r["locations"][0]["physicalLocation"]["region"];
    assert_eq!((region["startLine"].as_u64(), region["startColumn"].as_u64()), (Some(3), Some(17)));
    assert_eq!(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "deploy/release.sh");
    assert!(!stdout(&out).contains(&token));

    // Accepted findings: a baseline of the current state, then a secret hash in .paveignore.
    let base = dir.path().join("baseline.json");
    let out = scan(&[root, "-f", "json", "-o", base.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let out = scan(&[root, "--baseline", base.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("2 accepted"), "{}", stderr(&out));
    let hash = gh["secretHash"].as_str().expect("hash");
    write(dir.path(), ".paveignore", &format!("# rotated on 2026-11-28\n{hash}\n"));
    let out = scan(&[root]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stdout(&out).contains("github-token") && stdout(&out).contains("aws-access-key-id"), "{}", stdout(&out));
}

#[test]
fn history_scan_finds_a_secret_committed_then_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    write(d, "README.md", "# app\n");
    write(d, "app/settings.py", &format!("DEBUG = False\nGITHUB_TOKEN = \"{}\"\n", github_token()));
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "add settings"]);
    let first = git(d, &["rev-parse", "HEAD"]);
    write(d, "app/settings.py", "DEBUG = False\nGITHUB_TOKEN = os.environ[\"GITHUB_TOKEN\"]\n");
    git(d, &["commit", "-q", "-am", "read the token from the environment"]);
    // A branch holds the same file unchanged: one blob, scanned once.
    git(d, &["branch", "feature"]);
    let root = d.to_str().expect("utf-8");

    let out = scan(&[root]);
    assert_eq!(out.status.code(), Some(0), "the working tree is clean now: {}", stdout(&out));
    let out = scan(&[root, "--git", "-f", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("json");
    let findings = report["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{report:#}");
    let f = &findings[0];
    assert_eq!(
        (f["ruleId"].as_str(), f["file"].as_str(), f["startLine"].as_u64()),
        (Some("github-token"), Some("app/settings.py"), Some(2))
    );
    assert_eq!(f["commit"]["sha"], first.as_str());
    assert_eq!(
        (f["commit"]["author"].as_str(), f["commit"]["email"].as_str()),
        (Some("Ada Lovelace"), Some("ada@example.org"))
    );
    assert_eq!(f["commit"]["message"], "add settings");
    assert!(f["commit"]["date"].as_str().is_some_and(|d| d.ends_with('Z')), "{f}");
    assert_eq!(f["fingerprint"], format!("{first}:app/settings.py:github-token:2"));
    assert_eq!(report["summary"]["commits"], 2);
    assert_eq!(report["summary"]["files"], 3, "README, and two versions of settings.py");

    // A commit-less fingerprint accepts it in every commit.
    write(d, ".paveignore", "app/settings.py:github-token:2\n");
    assert_eq!(scan(&[root, "--git"]).status.code(), Some(0));
}

/// Commits all made in one second, the last one with a clock an hour behind: the secret is
/// credited to the commit that added it, and later edits of its file do not report it again.
#[test]
fn history_scan_credits_the_introducing_commit_once_when_clocks_tie_or_run_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let commit_at = |at: i64, msg: &str| {
        git_at(d, at, &["commit", "-q", "-m", msg]);
        git(d, &["rev-parse", "HEAD"])
    };
    let same = 1_700_000_000;
    git(d, &["init", "-q", "-b", "main"]);
    write(d, "README.md", "# app\n");
    git(d, &["add", "."]);
    commit_at(same, "init");
    let mut shas = Vec::new();
    for i in 0..6 {
        write(d, &format!("notes/{i}.txt"), &format!("note {i}\n"));
        if i == 2 {
            write(d, "config/aws.env", &format!("AWS_KEY={}\n", aws_key()));
        }
        if i > 2 {
            // Edits that keep the secret.
            write(d, "config/aws.env", &format!("# edit {i}\nAWS_KEY={}\n", aws_key()));
        }
        git(d, &["add", "."]);
        shas.push(commit_at(same, &format!("change {i}")));
    }
    write(d, "config/aws.env", &format!("# late clock\nAWS_KEY={}\n", aws_key()));
    git(d, &["add", "."]);
    commit_at(1_699_996_400, "edit behind the clock");
    let root = d.to_str().expect("utf-8");
    let out = scan(&[root, "--git", "-f", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("json");
    let findings = report["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "one secret, reported once: {report:#}");
    assert_eq!(findings[0]["commit"]["sha"], shas[2].as_str(), "{report:#}");
    assert_eq!(findings[0]["commit"]["message"], "change 2");
    assert_eq!(report["summary"]["files"], 12, "README, six notes and five versions of aws.env");
}

#[test]
fn bad_configurations_and_paths_are_named_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a.txt", "nothing\n");
    let root = dir.path().to_str().expect("utf-8");
    let cases = [
        ("[[rules]\nid = 'x'\n", "rules.toml"),
        ("[[rules]]\nid = 'x'\nregex = 'a'\nsecretgroup = 1\n", "unknown field `secretgroup`"),
        ("[[rules]]\nid = 'broken'\nregex = '(a'\n", "rule \"broken\" regex does not compile"),
        ("[extend]\npath = 'missing.toml'\n", "missing.toml"),
    ];
    for (toml, needle) in cases {
        let cfg = dir.path().join("rules.toml");
        std::fs::write(&cfg, toml).expect("write");
        let out = scan(&[root, "--config", cfg.to_str().expect("utf-8")]);
        assert_eq!(out.status.code(), Some(2), "{toml}");
        assert!(stderr(&out).contains(needle), "{toml}: {}", stderr(&out));
    }
    let out = scan(&["/no/such/dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/no/such/dir does not exist"), "{}", stderr(&out));
    let out = scan(&[root, "--baseline", root]);
    assert_eq!(out.status.code(), Some(2));
    let out = scan(&[root, "--git"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a git repository"), "{}", stderr(&out));
}

/// A project with one lockfile of every kind, under their real names (samples from
/// pave-deps' test data), and the OSV records beside them.
fn project() -> (tempfile::TempDir, std::path::PathBuf) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pave-deps/tests/data");
    let dir = tempfile::tempdir().expect("tempdir");
    let put = |from: &str, to: &str| {
        let dest = dir.path().join(to);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(data.join("lockfiles").join(from), dest).expect("copy sample");
    };
    put("package-lock.v3.json", "web/package-lock.json");
    put("yarn.v1.lock", "legacy-web/yarn.lock");
    put("package.js-sample.json", "legacy-web/package.json");
    put("pnpm-lock.v9.0.yaml", "admin/pnpm-lock.yaml");
    put("Cargo.v4.lock", "Cargo.lock");
    put("poetry.lock", "ml/poetry.lock");
    put("requirements.pip-compile-hashes.txt", "tools/requirements.txt");
    put("go.mod", "gateway/go.mod");
    put("Gemfile.lock", "site/Gemfile.lock");
    put("composer.lock", "cms/composer.lock");
    // Installed packages carry lockfiles of their own: never read.
    put("package-lock.v1.json", "web/node_modules/dep/package-lock.json");
    (dir, data.join("osv"))
}

fn deps(args: &[&str]) -> Output {
    Command::new(pave_bin()).arg("scan").arg("deps").args(args).output().expect("pave runs")
}

#[test]
fn dependency_audit_finds_fixes_and_gates_by_severity() {
    let (dir, db) = project();
    let root = dir.path().to_str().expect("utf-8");
    let db = db.to_str().expect("utf-8");
    let out = deps(&[root, "--db", db, "-f", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(report["lockfiles"].as_array().map(Vec::len), Some(9), "{}", report["lockfiles"]);
    let findings = report["findings"].as_array().expect("findings");
    let find = |pkg: &str, id: &str| {
        findings
            .iter()
            .find(|f| f["package"] == pkg && f["ids"].as_array().is_some_and(|ids| ids.iter().any(|i| i == id)))
            .unwrap_or_else(|| panic!("{pkg} {id} not found in {findings:#?}"))
    };
    let lodash = find("lodash", "GHSA-35jh-r3h4-6jhm");
    assert_eq!((lodash["version"].as_str(), lodash["upgradeTo"].as_str()), (Some("4.17.15"), Some("4.17.21")));
    let lockfiles: Vec<&str> = lodash["lockfiles"].as_array().expect("list").iter().filter_map(Value::as_str).collect();
    assert!(
        lockfiles.contains(&"web/package-lock.json") && lockfiles.contains(&"legacy-web/yarn.lock"),
        "{lockfiles:?}"
    );
    assert_eq!(find("minimist", "GHSA-xvch-5gv4-984h")["severity"], "critical");
    assert_eq!(find("requests", "PYSEC-2018-28")["ids"], serde_json::json!(["GHSA-x84v-xcm2-53pg", "PYSEC-2018-28"]));
    find("smallvec", "RUSTSEC-2021-0003");
    find("github.com/gin-gonic/gin", "GO-2023-1737");
    find("nokogiri", "GHSA-crjr-9rc5-ghw8");
    find("twig/twig", "GHSA-52m2-vc4m-jj33");
    assert!(!stdout(&out).contains("node_modules"), "installed packages' lockfiles are not read");

    // --fail-on: critical still fails (minimist), --fail-on never reports and passes.
    assert_eq!(deps(&[root, "--db", db, "--fail-on", "critical"]).status.code(), Some(1));
    let out = deps(&[root, "--db", db, "--fail-on", "never"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("critical npm minimist 1.2.0 (GHSA-xvch-5gv4-984h)  upgrade to 1.2.6"),
        "{}",
        stdout(&out)
    );

    let out = deps(&[root, "--db", db, "-f", "sarif"]);
    let sarif: Value = serde_json::from_str(&stdout(&out)).expect("sarif");
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().expect("results");
    assert!(results.iter().any(|r| r["ruleId"] == "GHSA-xvch-5gv4-984h"
        && r["level"] == "error"
        && r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "web/package-lock.json"));

    // Bad input: named, exit 2.
    let out = deps(&[root, "--db", "/no/such/db"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/no/such/db"), "{}", stderr(&out));
    std::fs::write(dir.path().join("site/Gemfile.lock"), "GEM\n  specs:\n    rack\n").expect("write");
    let out = deps(&[root, "--db", db]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("site/Gemfile.lock") && stderr(&out).contains("rack"), "{}", stderr(&out));
    let empty = tempfile::tempdir().expect("tempdir");
    let out = deps(&[empty.path().to_str().expect("utf-8"), "--db", db]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no lockfile"), "{}", stderr(&out));
}

/// A Cargo.lock installing `atty` (unmaintained, unsound: RustSec notices) and a vulnerable
/// `smallvec`.
const ATTY_LOCK: &str = "version = 4\n\n[[package]]\nname = \"atty\"\nversion = \"0.2.14\"\n\
    source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n[[package]]\nname = \"smallvec\"\n\
    version = \"1.6.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";

#[test]
fn rustsec_notices_are_warnings_and_gate_only_when_denied() {
    let db = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pave-deps/tests/data/osv-notices");
    let db = db.to_str().expect("utf-8");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_str().expect("utf-8");
    std::fs::write(dir.path().join("Cargo.lock"), ATTY_LOCK).expect("write");
    let out = deps(&[root, "--db", db, "-f", "json", "--fail-on", "never"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("json");
    let ids = |key: &str| -> Vec<String> {
        report[key].as_array().expect("list").iter().map(|f| f["ids"][0].as_str().unwrap_or("").to_owned()).collect()
    };
    assert_eq!(ids("findings"), ["RUSTSEC-2021-0003"]);
    assert_eq!(ids("warnings"), ["RUSTSEC-2021-0145", "RUSTSEC-2024-0375"]);
    assert_eq!(report["warnings"][1]["informational"], "unmaintained");
    assert!(stderr(&out).contains("1 vulnerability and 2 warning(s)"), "{}", stderr(&out));

    let out = deps(&[root, "--db", db, "--fail-on", "never"]);
    assert!(
        stdout(&out).contains("warning unmaintained crates.io atty 0.2.14 (RUSTSEC-2024-0375)"),
        "{}",
        stdout(&out)
    );
    let out = deps(&[root, "--db", db, "-f", "sarif", "--fail-on", "never"]);
    let sarif: Value = serde_json::from_str(&stdout(&out)).expect("sarif");
    let atty = sarif["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["ruleId"] == "RUSTSEC-2024-0375")
        .cloned()
        .expect("atty result");
    assert_eq!(atty["level"], "warning");
    assert!(atty["message"]["text"].as_str().unwrap_or("").contains("atty 0.2.14 is unmaintained"), "{atty}");

    // Only notices left: they pass --fail-on low (a vulnerability of unknown severity would
    // not), and fail with --deny-warnings.
    let only_atty = ATTY_LOCK.split("\n\n[[package]]\nname = \"smallvec\"").next().expect("split");
    std::fs::write(dir.path().join("Cargo.lock"), only_atty).expect("write");
    assert_eq!(deps(&[root, "--db", db]).status.code(), Some(0));
    assert_eq!(deps(&[root, "--db", db, "--deny-warnings"]).status.code(), Some(1));
}

/// Hostile lockfiles are named on stderr and skipped; the others are still audited and in
/// the SBOM (`pave scan deps` exits 2, the audit being incomplete; `pave sbom` succeeds).
#[test]
fn hostile_lockfiles_are_named_and_the_rest_still_scanned() {
    let db = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pave-deps/tests/data/osv-notices");
    let db = db.to_str().expect("utf-8");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_str().expect("utf-8");
    let put = |path: &str, text: &str| {
        let dest = dir.path().join(path);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::write(dest, text).expect("write");
    };
    put("Cargo.lock", ATTY_LOCK);
    put("web/pnpm-lock.yaml", &format!("lockfileVersion: '9.0'\nx: {}1{}\n", "[".repeat(50_000), "]".repeat(50_000)));
    put("api/package-lock.json", &format!("{}1{}", "[".repeat(50_000), "]".repeat(50_000)));
    put("py/requirements.txt", "-r /dev/zero\n");
    let out = deps(&[root, "--db", db, "-f", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    for named in [
        "warning: lockfile api/package-lock.json: not JSON",
        "warning: lockfile py/requirements.txt: line 1: includes /dev/zero, which cannot be read",
        "warning: lockfile web/pnpm-lock.yaml: refused before parsing: line 2: collections nested deeper than 64 levels",
    ] {
        assert!(err.contains(named), "{named:?} not in {err}");
    }
    let report: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(report["findings"][0]["package"], "smallvec", "{report}");
    assert_eq!(report["unreadable"].as_array().map(Vec::len), Some(3), "{report}");
    let out = deps(&[root, "--db", db, "-f", "sarif"]);
    let sarif: Value = serde_json::from_str(&stdout(&out)).expect("sarif");
    let run = &sarif["runs"][0]["invocations"][0];
    assert_eq!(run["executionSuccessful"], false, "{sarif}");
    assert_eq!(
        run["toolExecutionNotifications"][2]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "web/pnpm-lock.yaml"
    );

    let out = Command::new(pave_bin()).args(["sbom", root]).output().expect("pave runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("web/pnpm-lock.yaml: refused before parsing"), "{}", stderr(&out));
    let bom: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(bom["components"].as_array().map(Vec::len), Some(2), "atty and smallvec");
}

#[test]
fn sbom_is_valid_cyclonedx_with_purls() {
    let (dir, _) = project();
    let bom_path = dir.path().join("bom.cdx.json");
    let out = Command::new(pave_bin())
        .args(["sbom", dir.path().to_str().expect("utf-8"), "-o", bom_path.to_str().expect("utf-8")])
        .output()
        .expect("pave runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let bom: Value = serde_json::from_str(&std::fs::read_to_string(&bom_path).expect("bom")).expect("json");
    assert_eq!((bom["bomFormat"].as_str(), bom["specVersion"].as_str()), (Some("CycloneDX"), Some("1.5")));
    let purls: Vec<&str> =
        bom["components"].as_array().expect("components").iter().filter_map(|c| c["purl"].as_str()).collect();
    for want in [
        "pkg:npm/lodash@4.17.15",
        "pkg:npm/%40xmldom/xmldom@0.7.5",
        "pkg:cargo/smallvec@1.6.0",
        "pkg:pypi/requests@2.19.0",
        "pkg:golang/github.com/gin-gonic/gin@v1.6.3",
        "pkg:gem/nokogiri@1.13.3",
        "pkg:composer/twig/twig@v2.14.10",
    ] {
        assert!(purls.contains(&want), "{want} not in {purls:?}");
    }
    // The official schema (cyclonedx-python-lib bundles it), plus purl syntax and unique refs.
    let python = match std::env::var("PAVE_CDX_PYTHON") {
        Ok(p) => p,
        Err(_) => {
            eprintln!(
                "\n!!! the CycloneDX validator is not installed (scripts/test.sh installs it): schema check SKIPPED !!!\n"
            );
            assert!(
                std::env::var("PAVE_REQUIRE_CDX").as_deref() != Ok("1"),
                "PAVE_REQUIRE_CDX=1 but PAVE_CDX_PYTHON is unset"
            );
            return;
        }
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sbom/validate.py");
    let out = Command::new(python).arg(script).args(["--spec", "1.5"]).arg(&bom_path).output().expect("python runs");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("VALID"), "{}", stdout(&out));
}
