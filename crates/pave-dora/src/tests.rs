//! Hand-computed cases. Times are hours after 2024-01-01T00:00Z (a Monday).

use super::*;
use pave_model::delivery::{DeploymentKind as K, DeploymentStatus as S};

fn t(hours: f64) -> Timestamp {
    Timestamp(1_704_067_200_000 + (hours * 3_600_000.0) as i64)
}

fn dep(id: &str, env: &str, start: f64, minutes: f64, status: S, kind: K, commit: Option<&str>) -> Deployment {
    Deployment {
        id: id.into(),
        service: "api".into(),
        environment: env.into(),
        version: format!("v-{id}"),
        commit: commit.map(Into::into),
        previous_commit: None,
        commits: vec![],
        started_at: t(start),
        finished_at: t(start + minutes / 60.0),
        status,
        kind,
    }
}

fn change(sha: &str, committed: f64, merged: Option<f64>) -> Change {
    Change {
        sha: sha.into(),
        service: "api".into(),
        author: "ana".into(),
        message: "work".into(),
        authored_at: t(committed),
        committed_at: t(committed),
        merged_at: merged.map(t),
    }
}

fn incident(id: &str, opened: f64, detected: f64, resolved: Option<f64>, deployment: Option<&str>) -> Incident {
    Incident {
        id: id.into(),
        service: "api".into(),
        opened_at: t(opened),
        detected_at: Some(t(detected)),
        resolved_at: resolved.map(t),
        severity: "sev2".into(),
        deployment: deployment.map(Into::into),
        title: None,
    }
}

fn query(from: f64, to: f64) -> Query {
    Query {
        from: t(from),
        to: t(to),
        services: None,
        environments: ["prod".to_string()].into_iter().collect(),
        series: None,
        explain: true,
        explicit_commits: false,
        flag_owners: None,
    }
}

fn b2024() -> Benchmark {
    Benchmark::builtin("dora-2024").expect("built in")
}

struct Story {
    deployments: Vec<Deployment>,
    incidents: Vec<Incident>,
    changes: Vec<Change>,
    flag_changes: Vec<FlagChange>,
}

impl Story {
    fn facts(&self) -> Facts<'_> {
        Facts {
            deployments: &self.deployments,
            incidents: &self.incidents,
            changes: &self.changes,
            flag_changes: &self.flag_changes,
        }
    }
}

/// Six production deployments in a week: two clean, one failed then fixed by an unplanned
/// deployment, one that caused an incident, one rolled back; plus one to staging.
fn week() -> Story {
    Story {
        flag_changes: vec![],
        changes: vec![change("c000001", 0.0, None), change("c000002", 10.0, Some(11.0)), change("c000003", 30.0, None)],
        deployments: vec![
            dep("d1", "prod", 1.0, 6.0, S::Succeeded, K::Planned, Some("c000001")),
            dep("d2", "prod", 12.0, 6.0, S::Succeeded, K::Planned, Some("c000002")),
            dep("d3", "prod", 31.0, 6.0, S::Failed, K::Planned, Some("c000003")),
            dep("d4", "prod", 33.0, 6.0, S::Succeeded, K::Unplanned, Some("c000003")),
            dep("d5", "prod", 50.0, 6.0, S::Succeeded, K::Planned, None),
            dep("d6", "staging", 52.0, 6.0, S::Succeeded, K::Planned, None),
            dep("d7", "prod", 60.0, 30.0, S::RolledBack, K::Planned, None),
        ],
        incidents: vec![incident("i1", 51.0, 51.5, Some(53.0), Some("d5"))],
    }
}

#[test]
fn a_week_of_deployments() {
    let s = week();
    let r = compute(s.facts(), &query(0.0, 7.0 * 24.0), &b2024());
    let f = &r.totals;
    assert_eq!(f.deployment_frequency.deployments, 4);
    assert!((f.deployment_frequency.per_day - 4.0 / 7.0).abs() < 1e-9);
    assert_eq!(f.deployment_frequency.bucket, "daily-weekly");
    assert_eq!(f.deployment_frequency.level.as_ref().map(|l| l.level.as_str()), Some("high"));

    // d1 ships c1 (1.1 h), d2 ships c2 (2.1 h), d4 ships c3 (3.1 h); d3 failed, d5 shipped none.
    assert_eq!(f.lead_time.commits.count, 3);
    assert_eq!(f.lead_time.commits.median, Some(7560.0));
    assert_eq!(f.lead_time.commits.p90, Some(11160.0));
    assert_eq!(f.lead_time.commit_to_merge.median, Some(3600.0));
    assert_eq!(f.lead_time.deploy_duration.median, Some(360.0));
    assert_eq!(f.lead_time.level.as_ref().map(|l| l.level.as_str()), Some("elite"));

    // Failures: d3 (failed), d5 (caused i1), d7 (rolled back) of six.
    assert_eq!((f.change_failure_rate.count, f.change_failure_rate.total), (3, 6));
    assert_eq!(f.change_failure_rate.rate, Some(0.5));
    assert_eq!(f.change_failure_rate.level.as_ref().map(|l| l.level.as_str()), Some("low"));

    // d3: 31 h -> d4 finished 33.1 h = 7560 s; d5: 50.1 h -> i1 resolved 53 h = 10440 s;
    // d7: 60 h -> rollback done 60.5 h = 1800 s.
    assert_eq!((f.recovery_time.failures, f.recovery_time.recovered, f.recovery_time.open), (3, 3, 0));
    assert_eq!(f.recovery_time.time.median, Some(7560.0));
    assert_eq!(f.recovery_time.time.p90, Some(10440.0));
    assert_eq!(f.recovery_time.level.as_ref().map(|l| l.level.as_str()), Some("high"));
    let ex = f.explain.as_ref().expect("explain");
    let by: Vec<_> = ex.recoveries.iter().map(|r| r.recovered_by.clone().unwrap_or_default()).collect();
    assert_eq!(by, ["deployment:d4", "incident:i1", "rollback"]);

    assert_eq!(f.time_to_detect.median, Some(1800.0));
    assert_eq!(f.time_to_restore.median, Some(7200.0));
    assert_eq!((f.rework_rate.count, f.rework_rate.total), (1, 6));
    assert_eq!(ex.rework, ["d4"]);
    assert_eq!(ex.deployments, ["d1", "d2", "d4", "d5"]);
    assert_eq!(ex.commits.iter().map(|c| c.commit.as_str()).collect::<Vec<_>>(), ["c000001", "c000002", "c000003"]);
}

#[test]
fn no_deployments() {
    let s = Story { deployments: vec![], incidents: vec![], changes: vec![], flag_changes: vec![] };
    let f = compute(s.facts(), &query(0.0, 24.0), &b2024()).totals;
    assert_eq!(f.deployment_frequency.deployments, 0);
    assert_eq!(f.deployment_frequency.bucket, "fewer");
    assert_eq!(f.lead_time.commits.median, None);
    assert!(f.lead_time.level.is_none());
    assert_eq!(f.change_failure_rate.rate, None);
    assert_eq!(f.recovery_time.failures, 0);
}

#[test]
fn one_deployment_ships_only_its_own_commit() {
    let s = Story {
        flag_changes: vec![],
        changes: vec![change("aaaaaaa", -100.0, None), change("bbbbbbb", 2.0, None)],
        deployments: vec![dep("d1", "prod", 3.0, 60.0, S::Succeeded, K::Planned, Some("bbbbbbb"))],
        incidents: vec![],
    };
    let f = compute(s.facts(), &query(0.0, 24.0), &b2024()).totals;
    assert_eq!(f.lead_time.commits.count, 1, "old history is not attributed to a first deployment");
    assert_eq!(f.lead_time.commits.median, Some(2.0 * 3600.0));
}

#[test]
fn all_failed_and_never_recovered() {
    let s = Story {
        flag_changes: vec![],
        changes: vec![],
        deployments: vec![
            dep("d1", "prod", 1.0, 5.0, S::Failed, K::Planned, None),
            dep("d2", "prod", 2.0, 5.0, S::Failed, K::Unplanned, None),
        ],
        incidents: vec![],
    };
    let f = compute(s.facts(), &query(0.0, 24.0), &b2024()).totals;
    assert_eq!(f.deployment_frequency.deployments, 0);
    assert_eq!(f.change_failure_rate.rate, Some(1.0));
    assert_eq!((f.recovery_time.failures, f.recovery_time.recovered, f.recovery_time.open), (2, 0, 2));
    assert_eq!(f.recovery_time.time.median, None);
    assert_eq!(f.rework_rate.rate, Some(0.5));
}

#[test]
fn incident_without_deployment_counts_for_detection_only() {
    let s = Story {
        flag_changes: vec![],
        changes: vec![],
        deployments: vec![dep("d1", "prod", 1.0, 5.0, S::Succeeded, K::Planned, None)],
        incidents: vec![incident("i1", 5.0, 5.25, Some(6.0), None)],
    };
    let f = compute(s.facts(), &query(0.0, 24.0), &b2024()).totals;
    assert_eq!(f.change_failure_rate.rate, Some(0.0));
    assert_eq!(f.time_to_detect.median, Some(900.0));
    assert_eq!(f.time_to_restore.median, Some(3600.0));
}

#[test]
fn recovery_spanning_the_window_edge_counts_where_the_failure_began() {
    let s = week();
    // The window ends at 32 h: d3 failed inside it, d4 (its fix, 33.1 h) lands outside.
    let f = compute(s.facts(), &query(0.0, 32.0), &b2024()).totals;
    assert_eq!((f.change_failure_rate.count, f.change_failure_rate.total), (1, 3));
    assert_eq!(f.recovery_time.time.median, Some(7560.0));
    // The next window does not count d3's failure again.
    let f = compute(s.facts(), &query(32.0, 7.0 * 24.0), &b2024()).totals;
    assert_eq!(f.change_failure_rate.count, 2);
}

#[test]
fn open_incident_keeps_the_failure_open() {
    let mut s = week();
    s.incidents[0].resolved_at = None;
    let f = compute(s.facts(), &query(0.0, 7.0 * 24.0), &b2024()).totals;
    assert_eq!(f.recovery_time.open, 1);
    assert_eq!(f.recovery_time.recovered, 2);
}

#[test]
fn explicit_commit_lists_win_over_time_attribution() {
    let mut s = week();
    s.deployments[1].commits = vec!["c000001".into(), "c000002".into()];
    let f = compute(s.facts(), &query(0.0, 7.0 * 24.0), &b2024()).totals;
    assert_eq!(f.lead_time.commits.count, 4);
}

#[test]
fn service_filter_and_series() {
    let mut s = week();
    s.deployments
        .push(Deployment { service: "web".into(), ..dep("w1", "prod", 100.0, 5.0, S::Succeeded, K::Planned, None) });
    let mut q = query(0.0, 14.0 * 24.0);
    q.series = Some(Granularity::Week);
    let r = compute(s.facts(), &q, &b2024());
    assert_eq!(r.totals.deployment_frequency.deployments, 5);
    assert_eq!(r.series.len(), 2);
    assert_eq!(r.series[0].deployment_frequency.deployments, 5);
    assert_eq!(r.series[1].deployment_frequency.deployments, 0);
    q.services = Some(["web".to_string()].into_iter().collect());
    let r = compute(s.facts(), &q, &b2024());
    assert_eq!(r.totals.deployment_frequency.deployments, 1);
    assert_eq!(r.totals.change_failure_rate.total, 1);
}

fn flag_change(flag: &str, owner: &str, action: &str, at: f64, envs: &[(&str, &str, &str)]) -> FlagChange {
    FlagChange {
        event: 1,
        flag: flag.into(),
        project: "default".into(),
        owner: Some(owner.into()),
        action: action.into(),
        at: t(at),
        actor: "ana".into(),
        environments: envs
            .iter()
            .map(|(env, before, after)| pave_model::delivery::FlagEnvironmentChange {
                environment: (*env).into(),
                enabled: *after != "off",
                enabled_before: Some(*before != "off"),
                exposure: (*after).into(),
                exposure_before: Some((*before).into()),
            })
            .collect(),
    }
}

#[test]
fn flag_changes_count_beside_deployments_in_scope() {
    let mut s = week();
    s.flag_changes = vec![
        // A kill switch pulled in prod during the incident, and put back.
        flag_change("checkout.kill", "payments", "updated", 51.0, &[("prod", "on", "off")]),
        flag_change("checkout.kill", "payments", "updated", 53.0, &[("prod", "off", "on"), ("staging", "on", "on")]),
        // Staging only: not production.
        flag_change("search.v2", "search", "updated", 20.0, &[("staging", "off", "partial")]),
        // Archived: every environment.
        flag_change("old.banner", "search", "archived", 70.0, &[]),
        // A new description: no environment changed.
        flag_change("old.banner", "search", "updated", 69.0, &[]),
        // Outside the window.
        flag_change("checkout.kill", "payments", "updated", 24.0 * 8.0, &[("prod", "on", "off")]),
    ];
    let r = compute(s.facts(), &query(0.0, 7.0 * 24.0), &b2024());
    let f = &r.totals.flag_changes;
    assert_eq!((f.count, f.flags, f.turned_off), (3, 2, 2));
    assert!((f.per_day - 3.0 / 7.0).abs() < 1e-9);
    let ex = r.totals.explain.as_ref().expect("explain");
    assert_eq!(ex.flag_changes, ["checkout.kill@prod updated", "checkout.kill@prod updated", "old.banner@* archived"]);

    let mut q = query(0.0, 7.0 * 24.0);
    q.flag_owners = Some(["search".to_owned()].into_iter().collect());
    let f = compute(s.facts(), &q, &b2024()).totals.flag_changes;
    assert_eq!((f.count, f.flags), (1, 1), "only the search team's archived flag");
}
