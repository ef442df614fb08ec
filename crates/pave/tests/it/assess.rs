//! `pave assess` on fixture repositories built here with git: tags, merges, a revert, a
//! hotfix, a monorepo path, a shallow clone.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::{pave_bin, stderr, stdout};

const DAY: i64 = 86_400;
const T0: i64 = 1_704_067_200; // 2024-01-01T00:00:00Z

/// Git in `dir` with both dates `at` seconds after [`T0`].
fn git(dir: &Path, at: i64, args: &[&str]) {
    pave_testkit::git_at(dir, T0 + at, args);
}

fn commit(dir: &Path, at: i64, file: &str, msg: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, format!("{msg}\n{at}\n")).expect("write");
    git(dir, at, &["add", "-A"]);
    git(dir, at, &["commit", "-q", "-m", msg]);
}

/// v1.0.0 (init) → v1.1.0 (two features) → v1.1.1 (hotfix) → v1.2.0 (a merged branch) →
/// v1.3.0 (reverts the branch's feature). A `nightly` tag is not a release.
fn fixture(dir: &Path) {
    git(dir, 0, &["init", "-q", "-b", "main"]);
    commit(dir, 0, "README.md", "init");
    git(dir, 3600, &["tag", "-a", "v1.0.0", "-m", "1.0.0"]);
    commit(dir, DAY, "cart.txt", "feat: cart");
    commit(dir, 2 * DAY, "svc/search.txt", "feat: search");
    git(dir, 2 * DAY + 3600, &["tag", "-a", "v1.1.0", "-m", "1.1.0"]);
    commit(dir, 2 * DAY + 5 * 3600, "cart.txt", "fix: cart total");
    git(dir, 2 * DAY + 6 * 3600, &["tag", "-a", "v1.1.1", "-m", "1.1.1"]);
    git(dir, 3 * DAY, &["checkout", "-q", "-b", "risky"]);
    commit(dir, 3 * DAY, "svc/risky.txt", "feat: risky");
    git(dir, 3 * DAY + 3600, &["checkout", "-q", "main"]);
    git(dir, 3 * DAY + 3600, &["merge", "-q", "--no-ff", "-m", "Merge branch risky", "risky"]);
    git(dir, 3 * DAY + 2 * 3600, &["tag", "-a", "v1.2.0", "-m", "1.2.0"]);
    git(dir, 4 * DAY, &["revert", "--no-edit", "HEAD^2"]);
    git(dir, 4 * DAY + 3600, &["tag", "-a", "v1.3.0", "-m", "1.3.0"]);
    git(dir, 4 * DAY + 7200, &["tag", "nightly"]);
}

fn assess(args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(pave_bin()).arg("assess").args(args).output().expect("run pave assess");
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), v, format!("{}{}", stdout(&out), stderr(&out)))
}

#[test]
fn assesses_tags_reverts_and_hotfixes() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let p = dir.path().to_str().expect("path");
    let (ok, v, text) = assess(&[p, "--json"]);
    assert!(ok, "{text}");
    let r = &v["report"];
    assert_eq!(v["releases"], 5, "{v}");
    assert_eq!(r["deploymentFrequency"]["deployments"], 5);
    // Failures: v1.1.0 (hotfixed by v1.1.1 after 5 h), v1.2.0 (reverted in v1.3.0 after 23 h).
    assert_eq!(r["changeFailureRate"]["rate"], 0.4);
    let findings: Vec<(String, String, String)> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["failed"].as_str().unwrap_or("").into(),
                f["fixedBy"].as_str().unwrap_or("").into(),
                f["heuristic"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        findings,
        [("v1.1.0".into(), "v1.1.1".into(), "hotfix".into()), ("v1.2.0".into(), "v1.3.0".into(), "revert".into())]
    );
    assert_eq!(r["recoveryTime"]["time"]["median"], 14.0 * 3600.0);
    assert_eq!(r["reworkRate"]["rate"], 0.4);
    // Lead times (h): v1.1.0 ships feat: cart (25) and feat: search (1); v1.1.1 the fix (1);
    // v1.2.0 the branch commit (2) and its merge (1); v1.3.0 the revert (1).
    assert_eq!(r["leadTime"]["commits"]["count"], 6);
    assert_eq!(r["leadTime"]["commits"]["median"], 3600.0);
    assert_eq!(r["leadTime"]["commits"]["p90"], 25.0 * 3600.0);

    // Each heuristic can be switched off.
    let (_, v, _) = assess(&[p, "--json", "--no-hotfixes", "--no-fix-commits"]);
    assert_eq!(v["report"]["changeFailureRate"]["rate"], 0.2);
    // The table and the HTML page.
    let html = dir.path().join("report.html");
    let (ok, _, text) = assess(&[p, "--html", html.to_str().expect("path"), "--revenue-per-hour", "1000"]);
    assert!(ok, "{text}");
    assert!(text.contains("Change failure rate") && text.contains("v1.2.0 -> fixed by v1.3.0"), "{text}");
    let page = std::fs::read_to_string(&html).expect("html written");
    assert!(page.contains("<svg") && page.contains("Cost of recovery time") && page.contains("28.00 hours"), "{page}");
    assert!(page.contains("<strong>28,000 currency units</strong>"), "{page}");
    assert!(
        !page.contains("<script") && !page.contains("src=\"http") && !page.contains("href=\"http"),
        "self-contained"
    );
}

#[test]
fn branch_mode_path_filter_and_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let p = dir.path().to_str().expect("path");
    let (ok, v, text) = assess(&[p, "--json", "--branch", "main"]);
    assert!(ok, "{text}");
    assert_eq!(v["releases"], 1, "one first-parent merge: {v}");

    let (ok, v, text) = assess(&[p, "--json", "--path", "svc"]);
    assert!(ok, "{text}");
    assert_eq!(v["service"], "svc");
    assert_eq!(v["releases"], 3, "v1.1.0, v1.2.0 and v1.3.0 touch svc/: {v}");

    let (ok, _, text) = assess(&[p, "--tag-pattern", "release-*"]);
    assert!(!ok && text.contains("no releases found"), "{text}");
    let (ok, _, text) = assess(&["/nonexistent/repo"]);
    assert!(!ok && text.contains("not a git repository"), "{text}");
    let (ok, _, text) = assess(&[p, "--branch", "nope"]);
    assert!(!ok && text.contains("no branch or reference named \"nope\""), "{text}");
}

#[test]
fn shallow_clones_are_assessed_with_a_warning() {
    let src = tempfile::tempdir().expect("tempdir");
    fixture(src.path());
    let dst = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", src.path().display());
    let clone = dst.path().join("shallow");
    git(dst.path(), 0, &["clone", "-q", "--depth", "1", &url, clone.to_str().expect("path")]);
    git(
        &clone,
        0,
        &[
            "fetch",
            "-q",
            "--depth",
            "1",
            "origin",
            "+refs/tags/v1.2.0:refs/tags/v1.2.0",
            "+refs/tags/v1.3.0:refs/tags/v1.3.0",
        ],
    );
    let (ok, v, text) = assess(&[clone.to_str().expect("path"), "--json"]);
    assert!(ok, "{text}");
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("shallow clone: history stops at"), "{warnings}");
    assert_eq!(v["releases"], 2, "{v}");
    // Two releases 23 hours apart: no rate and no level, said so.
    assert_eq!(v["judged"], false, "{v}");
    assert!(warnings.contains("too short to judge"), "{warnings}");
    assert_eq!(v["report"]["deploymentFrequency"]["perDay"], Value::Null);
    assert_eq!(v["report"]["deploymentFrequency"]["level"], Value::Null);
}

fn rev(dir: &Path, name: &str) -> String {
    pave_testkit::git(dir, &["rev-parse", &format!("{name}^{{commit}}")])
}

#[tokio::test]
async fn ci_reports_the_commits_a_deployment_shipped_from_its_checkout() {
    let repo = tempfile::tempdir().expect("tempdir");
    fixture(repo.path());
    let (s, _db) = crate::harness::start().await;
    let docs = serde_json::json!({"documents": [
        {"kind": "Team", "metadata": {"name": "core"}, "spec": {"type": "stream-aligned"}},
        {"kind": "Service", "metadata": {"name": "shop"}, "spec": {"owner": "core"}},
        {"kind": "Environment", "metadata": {"name": "production"}, "spec": {"order": 1, "production": true}},
    ]});
    assert_eq!(s.send(reqwest::Method::POST, "/api/v1/apply", crate::harness::ADMIN, docs).await.0, 200);
    let path = repo.path().to_str().expect("path");
    let (v100, v110, v120) = (rev(repo.path(), "v1.0.0"), rev(repo.path(), "v1.1.0"), rev(repo.path(), "v1.2.0"));
    let deploy = |id: &str, commit: &str, previous: &str, at: &str| {
        s.cli(
            &[
                "event",
                "deployment",
                "--service",
                "shop",
                "--env",
                "production",
                "--version",
                id,
                "--id",
                id,
                "--repo",
                path,
                "--commit",
                commit,
                "--previous-commit",
                previous,
                "--started",
                at,
                "--finished",
                at,
            ],
            Some(crate::harness::ADMIN),
        )
    };
    // v1.1.0 after v1.0.0 ships "feat: cart" and "feat: search".
    let out = deploy("r110", &v110, &v100, "2024-01-03T02:00:00Z");
    assert!(stdout(&out).contains("with 2 shipped commit(s)"), "{}{}", stdout(&out), stderr(&out));
    // v1.2.0 after v1.1.0 ships the fix, the branch commit and its merge: merges are followed.
    let out = deploy("r120", &v120, &v110, "2024-01-04T03:00:00Z");
    assert!(stdout(&out).contains("with 3 shipped commit(s)"), "{}{}", stdout(&out), stderr(&out));
    // A previous commit that is gone (force-pushed) attributes the deployed commit only.
    let gone = "0123456789abcdef0123456789abcdef01234567";
    let out = deploy("r120b", &v120, gone, "2024-01-04T04:00:00Z");
    assert!(stderr(&out).contains("force-pushed"), "{}", stderr(&out));
    assert!(stdout(&out).contains("with 1 shipped commit(s)"), "{}", stdout(&out));
    let (_, r) = s.get("/api/v1/dora?from=2024-01-01T00:00:00Z&to=2024-01-10T00:00:00Z&explain=true").await;
    let shipped: Vec<&str> =
        r["explain"]["commits"].as_array().expect("commits").iter().filter_map(|c| c["deployment"].as_str()).collect();
    assert_eq!(shipped.iter().filter(|d| **d == "r110").count(), 2, "{r}");
    assert_eq!(shipped.iter().filter(|d| **d == "r120").count(), 3, "{r}");
}

/// A repository with tags `names[i]` at `days[i]` days, each on a new commit.
fn tagged(dir: &Path, tags: &[(&str, i64)]) {
    git(dir, 0, &["init", "-q", "-b", "main"]);
    commit(dir, 0, "README.md", "init");
    for (i, (name, at)) in tags.iter().enumerate() {
        commit(dir, *at, &format!("f{i}.txt"), &format!("feat: change {i}"));
        git(dir, *at + 60, &["tag", "-a", name, "-m", name]);
    }
}

fn levels(report: &Value) -> Vec<Value> {
    ["deploymentFrequency", "leadTime", "changeFailureRate", "recoveryTime", "reworkRate"]
        .iter()
        .map(|k| report[*k]["level"].clone())
        .collect()
}

#[test]
fn windows_too_short_to_judge_give_no_level() {
    // One release: the window is the second after it (once 86,400 a day, "elite").
    let dir = tempfile::tempdir().expect("tempdir");
    tagged(dir.path(), &[("v1.0.0", DAY)]);
    let p = dir.path().to_str().expect("path");
    let (ok, v, text) = assess(&[p, "--json"]);
    assert!(ok, "{text}");
    assert_eq!(v["judged"], false, "{v}");
    assert!(v["warnings"][0].as_str().is_some_and(|w| w.contains("1 s long with 1 release(s)")), "{v}");
    assert_eq!(v["report"]["deploymentFrequency"]["perDay"], Value::Null);
    assert!(levels(&v["report"]).iter().all(Value::is_null), "{v}");
    let (ok, _, text) = assess(&[p]);
    assert!(ok && text.contains("warning: the window is 1 s long") && !text.contains("86400"), "{text}");
    assert!(!text.contains("elite"), "{text}");

    // Two releases an hour apart (once 48 a day).
    let dir = tempfile::tempdir().expect("tempdir");
    tagged(dir.path(), &[("v1.0.0", DAY), ("v1.1.0", DAY + 3600)]);
    let p = dir.path().to_str().expect("path");
    let (ok, v, text) = assess(&[p, "--json"]);
    assert!(ok, "{text}");
    assert_eq!(v["judged"], false, "{v}");
    assert!(levels(&v["report"]).iter().all(Value::is_null), "{v}");
    // The same history over a month the user names is judged.
    let (ok, v, text) = assess(&[p, "--json", "--since", "2024-01-01T00:00:00Z", "--until", "2024-02-01T00:00:00Z"]);
    assert!(ok, "{text}");
    assert_eq!(v["judged"], true, "{v}");
    assert!(v["report"]["deploymentFrequency"]["level"].is_object(), "{v}");
    let html = dir.path().join("r.html");
    let (ok, _, text) = assess(&[p, "--html", html.to_str().expect("path")]);
    assert!(ok, "{text}");
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.contains("Warning: the window is") && page.contains("no rate: the window is too short"), "{page}");
}

#[test]
fn bad_numbers_missing_paths_and_mergeless_branches_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let p = dir.path().to_str().expect("path");
    for bad in ["NaN", "-1", "inf", "-inf", "soon"] {
        let (ok, _, text) = assess(&[p, "--hotfix-window-days", bad]);
        assert!(!ok && text.contains("--hotfix-window-days"), "{bad}: {text}");
        let (ok, _, text) = assess(&[p, "--revenue-per-hour", bad]);
        assert!(!ok && text.contains("--revenue-per-hour"), "{bad}: {text}");
    }
    let (ok, _, text) = assess(&[p, "--hotfix-window-days", "0"]);
    assert!(ok, "zero is a window: {text}");

    // A path no release has is an error, not "0 releases ... 1970-01-01".
    let (ok, _, text) = assess(&[p, "--path", "nope"]);
    assert!(!ok && text.contains("no release of") && text.contains("contains nope"), "{text}");
    assert!(!text.contains("1970"), "{text}");

    // A linear branch has no merges to count: said so, not "no --branch given".
    let lin = tempfile::tempdir().expect("tempdir");
    tagged(lin.path(), &[("v1.0.0", DAY)]);
    let (ok, _, text) = assess(&[lin.path().to_str().expect("path"), "--branch", "main"]);
    assert!(!ok && text.contains("has no merge") && !text.contains("no --branch given"), "{text}");
}

#[test]
fn reverts_by_abbreviated_id_count_and_evidence_reads_as_text() {
    // `git revert --reference` names the reverted commit by an abbreviated id.
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    git(d, 0, &["init", "-q", "-b", "main"]);
    commit(d, 0, "README.md", "init");
    git(d, 60, &["tag", "-a", "v1.0.0", "-m", "1.0.0"]);
    commit(d, 10 * DAY, "risky.txt", "feat: risky");
    git(d, 10 * DAY + 60, &["tag", "-a", "v1.1.0", "-m", "1.1.0"]);
    git(d, 12 * DAY, &["revert", "--reference", "--no-edit", "HEAD"]);
    git(d, 12 * DAY + 60, &["tag", "-a", "v1.2.0", "-m", "1.2.0"]);
    let p = d.to_str().expect("path");
    let (ok, v, text) = assess(&[p, "--json"]);
    assert!(ok, "{text}");
    let findings = v["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{v}");
    assert_eq!((findings[0]["failed"].as_str(), findings[0]["fixedBy"].as_str()), (Some("v1.1.0"), Some("v1.2.0")));
    assert_eq!(findings[0]["heuristic"], "revert");
    assert_eq!(findings[0]["recoverySeconds"], 2 * DAY);
    let detail = findings[0]["detail"].as_str().expect("detail");
    assert!(detail.contains("in v1.2.0 reverts") && detail.contains("shipped in v1.1.0"), "{detail}");
    let html = d.join("r.html");
    let (ok, _, text) = assess(&[p, "--html", html.to_str().expect("path")]);
    assert!(ok, "{text}");
    let page = std::fs::read_to_string(&html).expect("html");
    for out in [detail, text.as_str(), page.as_str()] {
        assert!(!out.contains("Some(") && !out.contains("None "), "{out}");
    }
}

#[test]
fn a_pattern_matching_several_release_lines_is_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    tagged(
        dir.path(),
        &[
            ("tokio-1.0.0", DAY),
            ("tokio-macros-1.0.0", 2 * DAY),
            ("tokio-1.1.0", 3 * DAY),
            ("tokio-util-0.7.0", 4 * DAY),
        ],
    );
    let p = dir.path().to_str().expect("path");
    let (ok, v, text) = assess(&[p, "--json", "--tag-pattern", "tokio-*"]);
    assert!(ok, "{text}");
    let w = v["warnings"].to_string();
    assert!(w.contains("3 release lines (tokio-* (2), tokio-macros-* (1), tokio-util-* (1))"), "{w}");
    let (ok, v, text) = assess(&[p, "--json", "--tag-pattern", "tokio-?.*"]);
    assert!(ok, "{text}");
    assert_eq!(v["releases"], 2);
    assert!(!v["warnings"].to_string().contains("release lines"), "{v}");
}
