//! A DORA baseline from git history alone: release tags (or merges to a release branch) are
//! the deployments, and failures and rework are read from the history. Every heuristic is
//! named in the report and can be switched off:
//!
//! - **revert**: a commit that reverts (`This reverts commit <sha>`, the id full or, as
//!   `git revert --reference` writes it, abbreviated) a commit shipped by an earlier release
//!   marks that release failed; the release shipping the revert fixed it and is rework.
//! - **hotfix**: a release that only bumps the patch number of the release before it (same
//!   major and minor, higher patch) and comes within the hotfix window (7 days unless set),
//!   or whose name says `hotfix`, marks the release before it failed and is itself rework;
//!   recovery is the time between the two. (A patch release weeks later is routine work.)
//! - **fix-only**: a release whose commits are all conventional `fix:` commits marks the
//!   release before it failed and is rework.
//!
//! A failed release fixed more than once (a hotfix, then a revert) is restored by its first
//! fix: DORA's failed deployment recovery time is the time to restore service, and the first
//! fix restores it. That fix resolves the release's one incident; every later fix is still a
//! rework release and is listed, with no recovery time. Every rework release is listed as
//! the fix of some failed release, so the report explains each release it counts.
//!
//! Other choices, stated in the report: the first release ships no attributed commits (the
//! history before it would swamp lead time); with a path filter, only commits touching the
//! path count and releases that ship none of them are not deployments of the service.

use std::collections::HashMap;

use pave_model::Timestamp;
use pave_model::delivery::{Change, Deployment, DeploymentKind, DeploymentStatus, Incident};
use serde::Serialize;

/// A release, in chronological order.
#[derive(Debug, Clone)]
pub struct Release {
    pub name: String,
    /// Seconds since the epoch.
    pub time: i64,
    pub tip: String,
}

/// A commit, with the release that first shipped it.
#[derive(Debug, Clone)]
pub struct HistoryCommit {
    /// The object id in hexadecimal.
    pub sha: String,
    pub author_time: i64,
    pub commit_time: i64,
    /// The first message line; only reverts and `fix:` commits need one (see [`wants_summary`]).
    pub summary: Option<Box<str>>,
    pub reverts: Option<String>,
    pub release: usize,
    /// Passes the path filter (always true without one).
    pub relevant: bool,
}

/// Whether the heuristics need a commit's first message line: fixes and reverts.
pub fn wants_summary(summary: &str) -> bool {
    is_fix(summary) || summary.starts_with("Revert")
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Heuristics {
    pub reverts: bool,
    pub hotfixes: bool,
    pub fix_commits: bool,
    /// A patch release later than this after the previous release is not a hotfix.
    pub hotfix_window_seconds: i64,
}

impl Default for Heuristics {
    fn default() -> Self {
        Heuristics { reverts: true, hotfixes: true, fix_commits: true, hotfix_window_seconds: 7 * 86_400 }
    }
}

/// One fix of a failed release the history shows: every rework release is the `fixed_by`
/// of at least one, so the report explains each release it counts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub failed: String,
    pub fixed_by: String,
    /// `revert`, `hotfix` or `fix-only`.
    pub heuristic: &'static str,
    pub detail: String,
    /// From the failed release to this fix, when this fix restored it (the first fix of
    /// it); `None` for a later fix of a release already restored, which is rework only.
    pub recovery_seconds: Option<i64>,
}

/// The facts the history yields, ready for [`crate::compute`].
#[derive(Debug, Default)]
pub struct Assessment {
    pub deployments: Vec<Deployment>,
    pub changes: Vec<Change>,
    pub incidents: Vec<Incident>,
    pub findings: Vec<Finding>,
    /// Releases that shipped nothing relevant (path filter).
    pub skipped: usize,
}

/// `v1.2.3`, `1.2.3`, `release-1.2.3` → `(1, 2, 3)`; pre-releases (`1.2.3-rc.1`) are `None`.
pub fn version(name: &str) -> Option<(u64, u64, u64)> {
    let start = name.find(|c: char| c.is_ascii_digit())?;
    let mut parts = name[start..].splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next()?.parse().ok()?;
    Some((major, minor, patch))
}

/// The default release-tag rule: `v` optional, then `MAJOR.MINOR.PATCH`, nothing after.
pub fn is_semver_tag(name: &str) -> bool {
    let v = name.strip_prefix('v').unwrap_or(name);
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Glob match with `*` (any run) and `?` (one character).
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The release line a tag belongs to: its name up to the version (`tokio-macros-2.1.0` →
/// `tokio-macros-`, `v1.2.3` → `v`, `foo2-1.0.0` → `foo2-`). The version is the first run
/// of digits followed by `.` and a digit; a name with none is a line of its own.
pub fn release_line(name: &str) -> &str {
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()) {
            let end = i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
                return &name[..i];
            }
            i = end;
        } else {
            i += 1;
        }
    }
    name
}

/// The release lines among `names` with how many tags each has, most tags first: a
/// pattern matching several (`tokio-*` over `tokio-1.0.0` and `tokio-macros-2.0.0`) mixes
/// the releases of different things into one stream of deployments.
pub fn release_lines<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<(&'a str, usize)> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for n in names {
        *counts.entry(release_line(n)).or_default() += 1;
    }
    let mut lines: Vec<(&str, usize)> = counts.into_iter().collect();
    lines.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    lines
}

/// The shortest window whose figures are rated against a benchmark. Over a shorter one a
/// single release reads as thousands a day (one release in the one second after it) and two
/// an hour apart as 48 a day: rates, not facts.
pub const MIN_JUDGED_WINDOW_SECONDS: i64 = 7 * 86_400;

/// Why the window `[from, to)` (milliseconds) holding `releases` releases is too short to
/// judge, or `None` when it is long enough.
pub fn too_short_to_judge(from_ms: i64, to_ms: i64, releases: usize) -> Option<String> {
    let seconds = (to_ms - from_ms) / 1000;
    if seconds >= MIN_JUDGED_WINDOW_SECONDS {
        return None;
    }
    let span = match seconds {
        s if s < 3600 => format!("{s} s"),
        s if s < 86_400 => format!("{:.1} hours", s as f64 / 3600.0),
        s => format!("{:.1} days", s as f64 / 86_400.0),
    };
    Some(format!(
        "the window is {span} long with {releases} release(s): too short to judge, so no level is given \
         (at least {} days are needed; widen it with --since/--until, or assess a longer or unshallow history)",
        MIN_JUDGED_WINDOW_SECONDS / 86_400
    ))
}

fn is_fix(summary: &str) -> bool {
    let s = summary.trim_start().to_ascii_lowercase();
    s.starts_with("fix:") || s.starts_with("fix(") || s.starts_with("fix!:")
}

/// Builds deployments, changes and incidents from the history.
pub fn assess(releases: &[Release], commits: &[HistoryCommit], h: Heuristics, service: &str) -> Assessment {
    let mut shipped: Vec<Vec<usize>> = vec![Vec::new(); releases.len()];
    for (i, c) in commits.iter().enumerate() {
        if c.relevant && c.release < releases.len() {
            shipped[c.release].push(i);
        }
    }
    // A release that ships nothing relevant is no deployment of this service (with a path
    // filter); without one, every release counts. The first release's own history is not
    // attributed to it.
    let any_filter = commits.iter().any(|c| !c.relevant);
    let counted: Vec<bool> = (0..releases.len()).map(|r| !any_filter || !shipped[r].is_empty()).collect();
    let previous: Vec<Option<usize>> = {
        let mut last = None;
        (0..releases.len())
            .map(|r| {
                let p = last;
                if counted[r] {
                    last = Some(r);
                }
                p
            })
            .collect()
    };

    // Every (failed release, fixing release) pair, the first heuristic kept when several
    // find the same pair.
    let mut fixes: Vec<(usize, usize, &'static str, String)> = Vec::new();
    let mut pairs = std::collections::HashSet::new();
    let mut note = |failed: usize, fix: usize, heuristic: &'static str, detail: String| {
        if pairs.insert((failed, fix)) {
            fixes.push((failed, fix, heuristic, detail));
        }
    };
    let by_sha: HashMap<&str, usize> = commits.iter().enumerate().map(|(i, c)| (c.sha.as_str(), i)).collect();
    let short = |sha: &str| sha[..sha.len().min(10)].to_owned();
    for r in (0..releases.len()).filter(|r| counted[*r]) {
        if h.reverts {
            for &ci in &shipped[r] {
                let Some(target) = commits[ci].reverts.as_deref() else { continue };
                let Some(&ti) = by_sha.get(target) else { continue };
                let q = commits[ti].release;
                if q < r && counted[q] {
                    let revert = match commits[ci].summary.as_deref() {
                        Some(s) => format!("{s} ({})", short(&commits[ci].sha)),
                        None => format!("commit {}", short(&commits[ci].sha)),
                    };
                    let detail = format!(
                        "{revert} in {} reverts {} shipped in {}",
                        releases[r].name,
                        short(target),
                        releases[q].name
                    );
                    note(q, r, "revert", detail);
                }
            }
        }
        let Some(p) = previous[r] else { continue };
        if h.hotfixes {
            let soon = releases[r].time - releases[p].time <= h.hotfix_window_seconds;
            let bumped = soon
                && match (version(&releases[p].name), version(&releases[r].name)) {
                    (Some(a), Some(b)) => a.0 == b.0 && a.1 == b.1 && b.2 > a.2,
                    _ => false,
                };
            if bumped || releases[r].name.to_ascii_lowercase().contains("hotfix") {
                let detail = format!("{} is a patch release after {}", releases[r].name, releases[p].name);
                note(p, r, "hotfix", detail);
            }
        }
        if h.fix_commits
            && !shipped[r].is_empty()
            && shipped[r].iter().all(|&ci| commits[ci].summary.as_deref().is_some_and(is_fix))
        {
            let detail = format!("{} ships only fix: commits ({})", releases[r].name, shipped[r].len());
            note(p, r, "fix-only", detail);
        }
    }

    // A failed release is restored by its first fix — DORA's failed deployment recovery
    // time is the time to restore service — and later fixes of it are rework, not recovery.
    fixes.sort_by_key(|(failed, fix, ..)| (releases[*failed].time, *failed, releases[*fix].time, *fix));
    let mut rework = vec![false; releases.len()];
    for (_, fix, ..) in &fixes {
        rework[*fix] = true;
    }

    let ms = |s: i64| Timestamp(s * 1000);
    let mut out = Assessment { skipped: counted.iter().filter(|c| !**c).count(), ..Default::default() };
    for (r, rel) in releases.iter().enumerate().filter(|(r, _)| counted[*r]) {
        let first = previous[r].is_none();
        out.deployments.push(Deployment {
            id: rel.name.clone(),
            service: service.to_owned(),
            environment: "production".into(),
            version: rel.name.clone(),
            commit: Some(rel.tip.clone()),
            previous_commit: None,
            commits: if first { Vec::new() } else { shipped[r].iter().map(|&ci| commits[ci].sha.clone()).collect() },
            started_at: ms(rel.time),
            finished_at: ms(rel.time),
            status: DeploymentStatus::Succeeded,
            kind: if rework[r] { DeploymentKind::Unplanned } else { DeploymentKind::Planned },
        });
    }
    out.changes = commits
        .iter()
        .filter(|c| c.relevant)
        .map(|c| Change {
            sha: c.sha.clone(),
            service: service.to_owned(),
            author: String::new(),
            message: String::new(),
            authored_at: ms(c.author_time),
            committed_at: ms(c.commit_time),
            merged_at: None,
        })
        .collect();
    let mut findings = Vec::with_capacity(fixes.len());
    let mut restored_by: Option<(usize, usize)> = None;
    for (q, fix, heuristic, detail) in fixes {
        let restoring = restored_by.is_none_or(|(failed, _)| failed != q);
        let recovery = (releases[fix].time - releases[q].time).max(0);
        if restoring {
            restored_by = Some((q, fix));
            out.incidents.push(Incident {
                id: format!("history:{}", releases[q].name),
                service: service.to_owned(),
                opened_at: ms(releases[q].time),
                detected_at: None,
                resolved_at: Some(ms(releases[q].time + recovery)),
                severity: "unknown".into(),
                deployment: Some(releases[q].name.clone()),
                title: Some(detail.clone()),
            });
        }
        let detail = match restored_by {
            Some((_, first)) if !restoring => {
                format!(
                    "{detail}; {} was already restored by {}, so this is rework, not recovery",
                    releases[q].name, releases[first].name
                )
            }
            _ => detail,
        };
        findings.push(Finding {
            failed: releases[q].name.clone(),
            fixed_by: releases[fix].name.clone(),
            heuristic,
            detail,
            recovery_seconds: restoring.then_some(recovery),
        });
    }
    out.findings = findings;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(name: &str, hours: i64) -> Release {
        Release { name: name.into(), time: hours * 3600, tip: format!("{:0>40}", hours) }
    }

    fn commit(sha: &str, hours: i64, summary: &str, release: usize) -> HistoryCommit {
        HistoryCommit {
            sha: format!("{sha:0<40}"),
            author_time: hours * 3600,
            commit_time: hours * 3600,
            summary: wants_summary(summary).then(|| summary.into()),
            reverts: None,
            release,
            relevant: true,
        }
    }

    /// A commit that reverts `target` (as `git revert` names it).
    fn reverting(sha: &str, hours: i64, summary: &str, release: usize, target: &str) -> HistoryCommit {
        HistoryCommit { reverts: Some(format!("{target:0<40}")), ..commit(sha, hours, summary, release) }
    }

    #[test]
    fn versions_tags_and_globs() {
        assert_eq!(version("v1.2.3"), Some((1, 2, 3)));
        assert_eq!(version("release-10.0.1"), Some((10, 0, 1)));
        assert_eq!(version("v1.2"), None);
        assert!(is_semver_tag("v1.2.3") && is_semver_tag("1.2.3"));
        assert!(!is_semver_tag("v1.2.3-rc.1") && !is_semver_tag("nightly"));
        assert!(glob("release-*", "release-2024.1") && glob("v?.*", "v1.0") && !glob("v?.*", "v10.0"));
    }

    #[test]
    fn release_lines_split_tags_by_what_they_release() {
        assert_eq!(release_line("tokio-1.2.3"), "tokio-");
        assert_eq!(release_line("tokio-macros-2.1.0"), "tokio-macros-");
        assert_eq!(release_line("v1.2.3"), "v");
        assert_eq!(release_line("1.2.3"), "");
        assert_eq!(release_line("foo2-1.0.0"), "foo2-");
        assert_eq!(release_line("nightly"), "nightly");
        let lines = release_lines(["tokio-1.0.0", "tokio-1.1.0", "tokio-macros-2.0.0", "tokio-util-0.7.0"]);
        assert_eq!(lines, [("tokio-", 2), ("tokio-macros-", 1), ("tokio-util-", 1)]);
        assert_eq!(release_lines(["v1.0.0", "v1.1.0"]).len(), 1);
    }

    #[test]
    fn short_windows_are_not_judged() {
        let day = 86_400_000;
        assert!(too_short_to_judge(0, 1000, 1).is_some_and(|w| w.contains("1 s long with 1 release")));
        assert!(too_short_to_judge(0, 3_600_000, 2).is_some_and(|w| w.contains("1.0 hours")));
        assert!(too_short_to_judge(0, 6 * day, 9).is_some());
        assert_eq!(too_short_to_judge(0, 7 * day, 2), None);
    }

    #[test]
    fn reads_failures_and_rework_from_history() {
        let releases =
            vec![rel("v1.0.0", 10), rel("v1.1.0", 20), rel("v1.1.1", 23), rel("v1.2.0", 40), rel("v1.3.0", 60)];
        let revert = reverting("e", 50, "Revert \"feat: risky\"", 4, "d");
        let commits = vec![
            commit("a", 5, "init", 0),
            commit("b", 15, "feat: cart", 1),
            commit("c", 22, "fix: cart total", 2),
            commit("d", 35, "feat: risky", 3),
            revert,
        ];
        let a = assess(&releases, &commits, Heuristics::default(), "shop");
        assert_eq!(a.deployments.len(), 5);
        assert!(a.deployments[0].commits.is_empty(), "the first release ships no attributed commits");
        let kinds: Vec<_> = a.deployments.iter().map(|d| d.kind).collect();
        assert_eq!(
            kinds,
            [
                DeploymentKind::Planned,
                DeploymentKind::Planned,
                DeploymentKind::Unplanned,
                DeploymentKind::Planned,
                DeploymentKind::Unplanned
            ]
        );
        let f: Vec<_> = a
            .findings
            .iter()
            .map(|f| (f.failed.as_str(), f.fixed_by.as_str(), f.heuristic, f.recovery_seconds))
            .collect();
        // v1.1.1 is both a patch release and fix-only; the first heuristic found is kept.
        assert_eq!(
            f,
            [("v1.1.0", "v1.1.1", "hotfix", Some(3 * 3600)), ("v1.2.0", "v1.3.0", "revert", Some(20 * 3600))]
        );
        assert_eq!(a.incidents[1].deployment.as_deref(), Some("v1.2.0"));
        assert_eq!(
            a.findings[1].detail,
            format!(
                "Revert \"feat: risky\" ({}) in v1.3.0 reverts {} shipped in v1.2.0",
                "e".to_owned() + &"0".repeat(9),
                "d".to_owned() + &"0".repeat(9)
            ),
            "the evidence names the revert by its subject, not as a Rust value"
        );

        let off = assess(
            &releases,
            &commits,
            Heuristics { reverts: false, hotfixes: false, ..Heuristics::default() },
            "shop",
        );
        let f: Vec<_> = off.findings.iter().map(|f| f.heuristic).collect();
        assert_eq!(f, ["fix-only"]);
        // A patch release outside the hotfix window is routine work.
        let narrow = Heuristics { hotfix_window_seconds: 3600, fix_commits: false, ..Heuristics::default() };
        let f: Vec<_> = assess(&releases, &commits, narrow, "shop").findings.iter().map(|f| f.heuristic).collect();
        assert_eq!(f, ["revert"]);
    }

    #[test]
    fn path_filter_skips_releases_that_ship_nothing_relevant() {
        let releases = vec![rel("v1.0.0", 10), rel("v1.1.0", 20), rel("v1.2.0", 30)];
        let mut other = commit("b", 15, "docs", 1);
        other.relevant = false;
        let commits = vec![commit("a", 5, "init", 0), other, commit("c", 25, "feat", 2)];
        let a = assess(&releases, &commits, Heuristics::default(), "svc");
        assert_eq!(a.deployments.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["v1.0.0", "v1.2.0"]);
        assert_eq!(a.skipped, 1);
        assert_eq!(a.changes.len(), 2);
    }

    #[test]
    fn a_release_fixed_twice_recovers_at_the_first_fix_and_both_fixes_are_listed() {
        // v1.1.0 is hotfixed by v1.1.1 (2 h later), then the feature is reverted in v1.2.0
        // (30 h later). One failure, restored at the hotfix; two rework releases.
        let releases = vec![rel("v1.0.0", 0), rel("v1.1.0", 10), rel("v1.1.1", 12), rel("v1.2.0", 40)];
        let revert = reverting("d", 39, "Revert \"feat: risky\"", 3, "b");
        let commits = vec![
            commit("a", 1, "init", 0),
            commit("b", 9, "feat: risky", 1),
            commit("c", 11, "fix: risky edge", 2),
            revert,
        ];
        let a = assess(&releases, &commits, Heuristics::default(), "shop");
        let f: Vec<_> =
            a.findings.iter().map(|f| (f.failed.as_str(), f.fixed_by.as_str(), f.recovery_seconds)).collect();
        assert_eq!(f, [("v1.1.0", "v1.1.1", Some(2 * 3600)), ("v1.1.0", "v1.2.0", None)]);
        assert!(a.findings[1].detail.contains("already restored by v1.1.1"), "{}", a.findings[1].detail);
        assert_eq!(a.incidents.len(), 1, "one failure");
        assert_eq!(a.incidents[0].resolved_at, Some(Timestamp(12 * 3600 * 1000)));

        // The report agrees: one failure, recovered in 2 h; both fixes are rework.
        let q = crate::Query {
            from: Timestamp(0),
            to: Timestamp(41 * 3600 * 1000),
            services: None,
            environments: ["production".to_owned()].into_iter().collect(),
            series: None,
            explain: false,
            explicit_commits: true,
            flag_owners: None,
        };
        let facts = crate::Facts {
            deployments: &a.deployments,
            incidents: &a.incidents,
            changes: &a.changes,
            flag_changes: &[],
        };
        let report = crate::compute(facts, &q, &crate::Benchmark::builtin("dora-2024").expect("table"));
        assert_eq!(report.totals.change_failure_rate.count, 1);
        assert_eq!(report.totals.recovery_time.time.median, Some(2.0 * 3600.0));
        assert_eq!(report.totals.rework_rate.count, 2);
    }

    #[test]
    fn every_rework_release_is_listed_with_its_reason() {
        // A hotfix chain and a late revert of an already-hotfixed release: each release the
        // report counts as rework is the fix of a listed failure, each failure is listed.
        let releases = vec![
            rel("v1.0.0", 0),
            rel("v1.1.0", 10),
            rel("v1.1.1", 11),
            rel("v1.1.2", 12),
            rel("v1.2.0", 100),
            rel("v1.3.0", 200),
        ];
        let revert = reverting("f", 150, "Revert \"feat: b\"", 5, "b");
        let commits = vec![
            commit("a", 1, "init", 0),
            commit("b", 9, "feat: b", 1),
            commit("c", 10, "chore: c", 2),
            commit("d", 11, "chore: d", 3),
            commit("e", 90, "feat: e", 4),
            revert,
        ];
        let a = assess(&releases, &commits, Heuristics::default(), "shop");
        let rework: std::collections::BTreeSet<&str> =
            a.deployments.iter().filter(|d| d.kind == DeploymentKind::Unplanned).map(|d| d.id.as_str()).collect();
        let fixes: std::collections::BTreeSet<&str> = a.findings.iter().map(|f| f.fixed_by.as_str()).collect();
        assert_eq!(rework, ["v1.1.1", "v1.1.2", "v1.3.0"].into_iter().collect());
        assert_eq!(fixes, rework, "{:?}", a.findings);
        let failed: std::collections::BTreeSet<&str> = a.findings.iter().map(|f| f.failed.as_str()).collect();
        let incidents: std::collections::BTreeSet<&str> =
            a.incidents.iter().filter_map(|i| i.deployment.as_deref()).collect();
        assert_eq!(failed, incidents);
    }
}
