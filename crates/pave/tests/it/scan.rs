//! `pave scan secrets` as a CI gate: exit codes, text/JSON/SARIF reports, redaction,
//! accepted findings (baseline, .paveignore), history scans, and bad configurations.

use std::path::Path;
use std::process::{Command, Output};

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

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.org")
        .env("GIT_COMMITTER_NAME", "Ada Lovelace")
        .env("GIT_COMMITTER_EMAIL", "ada@example.org")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
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
    let out = Command::new("git").args(["rev-parse", "HEAD"]).current_dir(d).output().expect("git");
    let first = stdout(&out).trim().to_owned();
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
