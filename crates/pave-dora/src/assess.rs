//! A DORA baseline from git history alone: release tags (or merges to a release branch) are
//! the deployments, and failures and rework are read from the history. Every heuristic is
//! named in the report and can be switched off:
//!
//! - **revert**: a commit that reverts (`This reverts commit <sha>`) a commit shipped by an
//!   earlier release marks that release failed; the release shipping the revert recovered it
//!   and is rework.
//! - **hotfix**: a release that only bumps the patch number of the release before it (same
//!   major and minor, higher patch) and comes within the hotfix window (7 days unless set),
//!   or whose name says `hotfix`, marks the release before it failed and is itself rework;
//!   recovery is the time between the two. (A patch release weeks later is routine work.)
//! - **fix-only**: a release whose commits are all conventional `fix:` commits marks the
//!   release before it failed and is rework.
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

/// One failure the history shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub failed: String,
    pub fixed_by: String,
    /// `revert`, `hotfix` or `fix-only`.
    pub heuristic: &'static str,
    pub detail: String,
    pub recovery_seconds: i64,
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

    let mut findings = Vec::new();
    let mut rework = vec![false; releases.len()];
    // failed release -> (earliest fix release, heuristic, detail)
    let mut failures: HashMap<usize, (usize, &'static str, String)> = HashMap::new();
    let mut note = |failed: usize, fix: usize, heuristic: &'static str, detail: String, rework: &mut Vec<bool>| {
        rework[fix] = true;
        let e = failures.entry(failed).or_insert((fix, heuristic, detail.clone()));
        if releases[fix].time < releases[e.0].time {
            *e = (fix, heuristic, detail);
        }
    };
    let by_sha: HashMap<&str, usize> = commits.iter().enumerate().map(|(i, c)| (c.sha.as_str(), i)).collect();
    for r in (0..releases.len()).filter(|r| counted[*r]) {
        if h.reverts {
            for &ci in &shipped[r] {
                let Some(target) = commits[ci].reverts.as_deref() else { continue };
                let Some(&ti) = by_sha.get(target) else { continue };
                let q = commits[ti].release;
                if q < r && counted[q] {
                    let detail = format!(
                        "{:?} in {} reverts {} shipped in {}",
                        commits[ci].summary,
                        releases[r].name,
                        &target[..target.len().min(10)],
                        releases[q].name
                    );
                    note(q, r, "revert", detail, &mut rework);
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
                note(p, r, "hotfix", detail, &mut rework);
            }
        }
        if h.fix_commits
            && !shipped[r].is_empty()
            && shipped[r].iter().all(|&ci| commits[ci].summary.as_deref().is_some_and(is_fix))
        {
            let detail = format!("{} ships only fix: commits ({})", releases[r].name, shipped[r].len());
            note(p, r, "fix-only", detail, &mut rework);
        }
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
    let mut failed: Vec<_> = failures.into_iter().collect();
    failed.sort_by_key(|(q, _)| releases[*q].time);
    for (q, (fix, heuristic, detail)) in failed {
        let recovery = (releases[fix].time - releases[q].time).max(0);
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
        findings.push(Finding {
            failed: releases[q].name.clone(),
            fixed_by: releases[fix].name.clone(),
            heuristic,
            detail,
            recovery_seconds: recovery,
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
            sha: format!("{sha:0>40}"),
            author_time: hours * 3600,
            commit_time: hours * 3600,
            summary: wants_summary(summary).then(|| summary.into()),
            reverts: None,
            release,
            relevant: true,
        }
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
    fn reads_failures_and_rework_from_history() {
        let releases =
            vec![rel("v1.0.0", 10), rel("v1.1.0", 20), rel("v1.1.1", 23), rel("v1.2.0", 40), rel("v1.3.0", 60)];
        let mut revert = commit("e", 50, "Revert \"feat: risky\"", 4);
        revert.reverts = Some(format!("{:0>40}", "d"));
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
        assert_eq!(f, [("v1.1.0", "v1.1.1", "hotfix", 3 * 3600), ("v1.2.0", "v1.3.0", "revert", 20 * 3600)]);
        assert_eq!(a.incidents[1].deployment.as_deref(), Some("v1.2.0"));

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
}
