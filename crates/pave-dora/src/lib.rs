//! DORA's five delivery metrics — deployment frequency, lead time for changes, change failure
//! rate, failed deployment recovery time, rework rate — plus time to detect and the
//! value-stream split, computed from delivery facts for any window. Pure: facts and a query
//! in, a report (with the ids behind every figure, on request) out.
//!
//! Definitions, as computed here:
//! - Only deployments to the query's environments (the production ones, unless asked) and
//!   services count; a deployment belongs to the window its `finishedAt` falls in
//!   (`[from, to)`).
//! - **Deployment frequency**: succeeded deployments per day and per week.
//! - **Lead time**: for each commit a succeeded deployment shipped, deployment finish minus
//!   the commit's `committedAt`; median and p90 over commits. The split: commit → merge
//!   (for merged changes), merge (or commit) → deployment start, deployment start → finish.
//! - **Shipped commits**: the deployment's explicit `commits` when reported; otherwise the
//!   service's changes committed after the previous *succeeded* deployment to that
//!   environment started and no later than this one started, plus its own `commit`. A first
//!   deployment ships only its own commit (older history is not attributed to it), and a
//!   failed deployment ships nothing (its commits reach production with the next success).
//! - **Change failure rate**: deployments that failed, were rolled back, or caused an
//!   incident (the incident names the deployment), over all deployments.
//! - **Failed deployment recovery time**: from the failure's start (the rollout's start for a
//!   failed or rolled-back deployment, its finish for one that caused an incident) to
//!   recovery, the moment service is restored: when every incident it caused is resolved
//!   (the latest resolution among them — an incident is resolved when its service is
//!   restored, which for a problem fixed several times is the first fix, as
//!   [`assess`] records it); else, if rolled back, the end of the rollback; else the finish
//!   of the next succeeded deployment of the service to that environment. A failure is counted in the window it began in, even when it recovered
//!   after the window ended; one not yet recovered is reported as open.
//! - **Time to detect**: `detectedAt - openedAt` of the incidents opened in the window.
//! - **Rework rate**: unplanned deployments (fixes for production problems) over all.
//! - **Flag changes** (beside the five, not one of them): feature-flag changes made in the
//!   window to the query's environments (archiving or reviving a flag counts for every
//!   environment), by flags whose owner is in scope. A flag switched off is a recovery that
//!   no deployment shows, so the report and its explanation list them with the deployments.

pub mod assess;
pub mod benchmark;
pub mod html;
pub mod scope;
pub mod stats;

use std::collections::{HashMap, HashSet};

use pave_model::Timestamp;
use pave_model::delivery::{Change, Deployment, DeploymentKind, DeploymentStatus, FlagChange, Incident};
use serde::Serialize;

pub use benchmark::{Benchmark, BenchmarkError};

const DAY_MS: f64 = 86_400_000.0;

/// The facts to compute from.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub deployments: &'a [Deployment],
    pub incidents: &'a [Incident],
    pub changes: &'a [Change],
    pub flag_changes: &'a [FlagChange],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Week,
    Month,
}

/// What to compute.
#[derive(Debug, Clone)]
pub struct Query {
    pub from: Timestamp,
    pub to: Timestamp,
    /// Services in scope (`None`: all).
    pub services: Option<HashSet<String>>,
    /// Environments whose deployments count.
    pub environments: HashSet<String>,
    pub series: Option<Granularity>,
    pub explain: bool,
    /// Deployments ship exactly their `commits` list, even when it is empty (history-based
    /// assessments know every deployment's commits); otherwise an empty list falls back to
    /// attribution by time.
    pub explicit_commits: bool,
    /// Teams whose flags' changes count (`None`: every flag).
    pub flag_owners: Option<HashSet<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LevelRef {
    pub level: String,
    pub label: String,
}

fn level(table: &Option<benchmark::MetricLevels>, value: Option<f64>) -> Option<LevelRef> {
    let l = table.as_ref()?.classify(value?)?;
    Some(LevelRef { level: l.level.clone(), label: l.label.clone() })
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Frequency {
    pub deployments: usize,
    pub per_day: f64,
    pub per_week: f64,
    /// DORA's bucket: on-demand, daily-weekly, weekly-monthly, monthly-six-monthly, fewer.
    pub bucket: &'static str,
    pub level: Option<LevelRef>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Durations {
    pub count: usize,
    /// Seconds.
    pub median: Option<f64>,
    pub p90: Option<f64>,
}

impl Durations {
    fn of(mut values: Vec<f64>) -> Durations {
        let count = values.len();
        let mp = stats::median_p90(&mut values);
        Durations { count, median: mp.map(|m| m.0), p90: mp.map(|m| m.1) }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadTime {
    pub commits: Durations,
    pub commit_to_merge: Durations,
    pub merge_to_deploy: Durations,
    pub deploy_duration: Durations,
    pub level: Option<LevelRef>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rate {
    pub count: usize,
    pub total: usize,
    pub rate: Option<f64>,
    pub level: Option<LevelRef>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    pub failures: usize,
    pub recovered: usize,
    pub open: usize,
    pub time: Durations,
    pub level: Option<LevelRef>,
}

/// The figures of one window.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    pub from: Timestamp,
    pub to: Timestamp,
    pub deployment_frequency: Frequency,
    pub lead_time: LeadTime,
    pub change_failure_rate: Rate,
    pub recovery_time: Recovery,
    pub time_to_detect: Durations,
    pub time_to_restore: Durations,
    pub rework_rate: Rate,
    pub flag_changes: FlagChanges,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explain>,
}

/// Flag changes in the window: how many, how often, and to how many flags.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagChanges {
    pub count: usize,
    pub per_day: f64,
    pub flags: usize,
    /// Changes that turned a flag off somewhere (kill switches pulled, rollouts stopped).
    pub turned_off: usize,
}

/// The facts behind each figure.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explain {
    /// Succeeded deployments counted for frequency.
    pub deployments: Vec<String>,
    /// Each commit shipped and its lead time.
    pub commits: Vec<CommitLead>,
    /// Deployments counted as failures.
    pub failed: Vec<String>,
    pub recoveries: Vec<RecoveryFact>,
    /// Unplanned deployments.
    pub rework: Vec<String>,
    pub incidents: Vec<String>,
    /// Flag changes counted, as `flag@environment action` (`*` for every environment).
    pub flag_changes: Vec<String>,
}

/// One commit behind the lead time: which deployment shipped it, and how long after it was
/// committed that deployment finished.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitLead {
    pub deployment: String,
    pub commit: String,
    pub lead_time_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryFact {
    pub deployment: String,
    pub failed_at: Timestamp,
    pub recovered_at: Option<Timestamp>,
    /// `incident:<id>`, `rollback`, or `deployment:<id>`.
    pub recovered_by: Option<String>,
    /// From the failure to its recovery; absent while it is not recovered.
    pub recovery_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub benchmark: String,
    #[serde(flatten)]
    pub totals: Figures,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<Figures>,
}

/// The bucket of a window too short to judge (see [`Report::withhold_levels`]).
pub const TOO_SHORT: &str = "too-short-to-judge";

impl Report {
    /// Drops every level and frequency bucket, in the totals and the series: over a window
    /// too short to judge ([`assess::too_short_to_judge`]) they would be verdicts the facts
    /// cannot carry. The counts stay.
    pub fn withhold_levels(&mut self) {
        for f in std::iter::once(&mut self.totals).chain(self.series.iter_mut()) {
            f.deployment_frequency.level = None;
            f.deployment_frequency.bucket = TOO_SHORT;
            f.lead_time.level = None;
            f.change_failure_rate.level = None;
            f.recovery_time.level = None;
            f.rework_rate.level = None;
        }
    }
}

/// Facts indexed once per computation.
struct Index<'a> {
    facts: Facts<'a>,
    /// In-scope deployments, by (service, environment), in rollout order.
    streams: Vec<Vec<usize>>,
    /// For each deployment (by index in the facts): its stream and position in it, if in scope.
    position: Vec<Option<(u32, u32)>>,
    /// Changes of each service, by commit time.
    changes_by_service: HashMap<&'a str, Vec<usize>>,
    change_by_sha: HashMap<&'a str, usize>,
    incidents_by_deployment: HashMap<&'a str, Vec<usize>>,
    services: Option<&'a HashSet<String>>,
    environments: &'a HashSet<String>,
    flag_owners: Option<&'a HashSet<String>>,
    explicit_commits: bool,
}

impl<'a> Index<'a> {
    fn new(facts: Facts<'a>, q: &'a Query) -> Self {
        let in_scope = |d: &Deployment| {
            q.environments.contains(&d.environment) && q.services.as_ref().is_none_or(|s| s.contains(&d.service))
        };
        // Streams are numbered once, so sorting compares integers, not strings.
        let mut stream_ids: HashMap<(&str, &str), u32> = HashMap::new();
        let mut keyed: Vec<(u32, i64, i64, usize)> = Vec::with_capacity(facts.deployments.len());
        for (i, d) in facts.deployments.iter().enumerate() {
            if in_scope(d) {
                let next = stream_ids.len() as u32;
                let s = *stream_ids.entry((d.service.as_str(), d.environment.as_str())).or_insert(next);
                keyed.push((s, d.started_at.0, d.finished_at.0, i));
            }
        }
        keyed.sort_unstable_by(|a, b| {
            (a.0, a.1, a.2)
                .cmp(&(b.0, b.1, b.2))
                .then_with(|| facts.deployments[a.3].id.cmp(&facts.deployments[b.3].id))
        });
        let mut streams: Vec<Vec<usize>> = vec![Vec::new(); stream_ids.len()];
        let mut position = vec![None; facts.deployments.len()];
        for (s, _, _, i) in keyed {
            let stream = &mut streams[s as usize];
            position[i] = Some((s, stream.len() as u32));
            stream.push(i);
        }
        let mut changes_by_service: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut change_by_sha = HashMap::with_capacity(facts.changes.len());
        for (i, c) in facts.changes.iter().enumerate() {
            changes_by_service.entry(c.service.as_str()).or_default().push(i);
            change_by_sha.insert(c.sha.as_str(), i);
        }
        for v in changes_by_service.values_mut() {
            v.sort_unstable_by_key(|&i| facts.changes[i].committed_at);
        }
        let mut incidents_by_deployment: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, inc) in facts.incidents.iter().enumerate() {
            if let Some(d) = &inc.deployment {
                incidents_by_deployment.entry(d.as_str()).or_default().push(i);
            }
        }
        Index {
            facts,
            streams,
            position,
            changes_by_service,
            change_by_sha,
            incidents_by_deployment,
            services: q.services.as_ref(),
            environments: &q.environments,
            flag_owners: q.flag_owners.as_ref(),
            explicit_commits: q.explicit_commits,
        }
    }

    fn dep(&self, i: usize) -> &'a Deployment {
        &self.facts.deployments[i]
    }

    /// The changes deployment `i` shipped (see the crate docs for the rule).
    fn shipped(&self, i: usize) -> Vec<&'a Change> {
        let d = self.dep(i);
        if d.status != DeploymentStatus::Succeeded {
            return Vec::new();
        }
        if !d.commits.is_empty() || self.explicit_commits {
            return d
                .commits
                .iter()
                .filter_map(|s| self.change_by_sha.get(s.as_str()).map(|&c| &self.facts.changes[c]))
                .collect();
        }
        let mut out: Vec<&Change> = Vec::new();
        let (s, pos) = self.position[i].expect("only in-scope deployments are looked up");
        let previous = self.streams[s as usize][..pos as usize]
            .iter()
            .rev()
            .map(|&j| self.dep(j))
            .find(|p| p.status == DeploymentStatus::Succeeded);
        if let (Some(prev), Some(list)) = (previous, self.changes_by_service.get(d.service.as_str())) {
            let start = list.partition_point(|&c| self.facts.changes[c].committed_at <= prev.started_at);
            let end = list.partition_point(|&c| self.facts.changes[c].committed_at <= d.started_at);
            out.extend(list[start..end.max(start)].iter().map(|&c| &self.facts.changes[c]));
        }
        if let Some(own) = d.commit.as_deref().and_then(|s| self.change_by_sha.get(s)) {
            let own = &self.facts.changes[*own];
            if !out.iter().any(|c| c.sha == own.sha) {
                out.push(own);
            }
        }
        out
    }

    /// When deployment `i`'s failure began, and when (and by what) it recovered.
    fn recovery(&self, i: usize) -> (Timestamp, Option<(Timestamp, String)>) {
        let d = self.dep(i);
        let started = if d.status == DeploymentStatus::Succeeded { d.finished_at } else { d.started_at };
        if let Some(incidents) = self.incidents_by_deployment.get(d.id.as_str()) {
            let mut last: Option<(Timestamp, &str)> = None;
            for &k in incidents {
                let inc = &self.facts.incidents[k];
                match inc.resolved_at {
                    None => return (started, None),
                    Some(r) if last.is_none_or(|(t, _)| r > t) => last = Some((r, inc.id.as_str())),
                    Some(_) => {}
                }
            }
            return (started, last.map(|(t, id)| (t, format!("incident:{id}"))));
        }
        if d.status == DeploymentStatus::RolledBack {
            return (started, Some((d.finished_at, "rollback".to_owned())));
        }
        let (s, pos) = self.position[i].expect("only in-scope deployments are looked up");
        let next = self.streams[s as usize][pos as usize + 1..]
            .iter()
            .map(|&j| self.dep(j))
            .find(|n| n.status == DeploymentStatus::Succeeded);
        (started, next.map(|n| (n.finished_at, format!("deployment:{}", n.id))))
    }

    fn failed(&self, i: usize) -> bool {
        let d = self.dep(i);
        d.status != DeploymentStatus::Succeeded || self.incidents_by_deployment.contains_key(d.id.as_str())
    }

    fn flag_changes(
        &self,
        from: Timestamp,
        to: Timestamp,
        days: f64,
        mut explain: Option<&mut Vec<String>>,
    ) -> FlagChanges {
        let (mut count, mut turned_off) = (0, 0);
        let mut flags = HashSet::new();
        for c in self.facts.flag_changes {
            if c.at < from || c.at >= to {
                continue;
            }
            if let Some(owners) = self.flag_owners
                && !c.owner.as_ref().is_some_and(|o| owners.contains(o))
            {
                continue;
            }
            let mut touched = false;
            if c.touches_all() {
                touched = true;
                count += 1;
                turned_off += usize::from(c.action == "archived");
                if let Some(ex) = explain.as_deref_mut() {
                    ex.push(format!("{}@* {}", c.flag, c.action));
                }
            }
            for e in c.environments.iter().filter(|e| self.environments.contains(&e.environment)) {
                touched = true;
                count += 1;
                turned_off +=
                    usize::from(e.exposure == "off" && e.exposure_before.as_deref().is_some_and(|b| b != "off"));
                if let Some(ex) = explain.as_deref_mut() {
                    ex.push(format!("{}@{} {}", c.flag, e.environment, c.action));
                }
            }
            if touched {
                flags.insert(c.flag.as_str());
            }
        }
        FlagChanges { count, per_day: count as f64 / days, flags: flags.len(), turned_off }
    }

    fn figures(&self, from: Timestamp, to: Timestamp, bench: &Benchmark, explain: bool) -> Figures {
        let in_window: Vec<usize> = self
            .streams
            .iter()
            .flatten()
            .copied()
            .filter(|&i| {
                let f = self.dep(i).finished_at;
                f >= from && f < to
            })
            .collect();
        let mut ex = Explain::default();
        let days = ((to.0 - from.0) as f64 / DAY_MS).max(1e-9);

        let succeeded: Vec<usize> =
            in_window.iter().copied().filter(|&i| self.dep(i).status == DeploymentStatus::Succeeded).collect();
        let per_day = succeeded.len() as f64 / days;
        let bucket = match per_day {
            r if r >= 1.0 => "on-demand",
            r if r >= 1.0 / 7.0 => "daily-weekly",
            r if r >= 1.0 / 30.0 => "weekly-monthly",
            r if r >= 1.0 / 182.5 => "monthly-six-monthly",
            _ => "fewer",
        };
        let frequency = Frequency {
            deployments: succeeded.len(),
            per_day,
            per_week: per_day * 7.0,
            bucket,
            level: level(&bench.metrics.deployment_frequency, Some(per_day)),
        };

        let (mut lead, mut to_merge, mut to_deploy, mut duration) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for &i in &succeeded {
            let d = self.dep(i);
            for c in self.shipped(i) {
                let secs = (d.finished_at.0 - c.committed_at.0) as f64 / 1000.0;
                if secs < 0.0 {
                    continue; // committed after the deployment finished: clock skew or a wrong link
                }
                lead.push(secs);
                if let Some(m) = c.merged_at {
                    to_merge.push((m.0 - c.committed_at.0) as f64 / 1000.0);
                }
                to_deploy.push(((d.started_at.0 - c.merged_at.unwrap_or(c.committed_at).0) as f64 / 1000.0).max(0.0));
                duration.push((d.finished_at.0 - d.started_at.0) as f64 / 1000.0);
                if explain {
                    ex.commits.push(CommitLead {
                        deployment: d.id.clone(),
                        commit: c.sha.clone(),
                        lead_time_seconds: secs,
                    });
                }
            }
            if explain {
                ex.deployments.push(d.id.clone());
            }
        }
        let commits = Durations::of(lead);
        let lead_level = level(&bench.metrics.lead_time, commits.median);
        let lead_time = LeadTime {
            commits,
            commit_to_merge: Durations::of(to_merge),
            merge_to_deploy: Durations::of(to_deploy),
            deploy_duration: Durations::of(duration),
            level: lead_level,
        };

        let failed: Vec<usize> = in_window.iter().copied().filter(|&i| self.failed(i)).collect();
        let total = in_window.len();
        let cfr = (total > 0).then(|| failed.len() as f64 / total as f64);
        let change_failure_rate =
            Rate { count: failed.len(), total, rate: cfr, level: level(&bench.metrics.change_failure_rate, cfr) };

        let mut times = Vec::new();
        let mut open = 0;
        for &i in &failed {
            let (began, recovered) = self.recovery(i);
            let secs = recovered.as_ref().map(|(t, _)| ((t.0 - began.0) as f64 / 1000.0).max(0.0));
            match secs {
                Some(s) => times.push(s),
                None => open += 1,
            }
            if explain {
                ex.failed.push(self.dep(i).id.clone());
                ex.recoveries.push(RecoveryFact {
                    deployment: self.dep(i).id.clone(),
                    failed_at: began,
                    recovered_at: recovered.as_ref().map(|r| r.0),
                    recovered_by: recovered.map(|r| r.1),
                    recovery_seconds: secs,
                });
            }
        }
        let time = Durations::of(times);
        let recovery_level = level(&bench.metrics.recovery_time, time.median);
        let recovery_time =
            Recovery { failures: failed.len(), recovered: time.count, open, time, level: recovery_level };

        let (mut detect, mut restore) = (Vec::new(), Vec::new());
        for inc in self.facts.incidents {
            if inc.opened_at < from || inc.opened_at >= to || self.services.is_some_and(|s| !s.contains(&inc.service)) {
                continue;
            }
            if let Some(d) = inc.detected_at {
                detect.push((d.0 - inc.opened_at.0) as f64 / 1000.0);
            }
            if let Some(r) = inc.resolved_at {
                restore.push((r.0 - inc.opened_at.0) as f64 / 1000.0);
            }
            if explain {
                ex.incidents.push(inc.id.clone());
            }
        }

        let rework: Vec<usize> =
            in_window.iter().copied().filter(|&i| self.dep(i).kind == DeploymentKind::Unplanned).collect();
        let rework_rate_value = (total > 0).then(|| rework.len() as f64 / total as f64);
        if explain {
            ex.rework = rework.iter().map(|&i| self.dep(i).id.clone()).collect();
        }
        let rework_rate = Rate {
            count: rework.len(),
            total,
            rate: rework_rate_value,
            level: level(&bench.metrics.rework_rate, rework_rate_value),
        };

        let flag_changes = self.flag_changes(from, to, days, explain.then_some(&mut ex.flag_changes));

        Figures {
            from,
            to,
            flag_changes,
            deployment_frequency: frequency,
            lead_time,
            change_failure_rate,
            recovery_time,
            time_to_detect: Durations::of(detect),
            time_to_restore: Durations::of(restore),
            rework_rate,
            explain: explain.then_some(ex),
        }
    }
}

/// Computes the report for `query` against `bench`.
pub fn compute(facts: Facts<'_>, query: &Query, bench: &Benchmark) -> Report {
    let index = Index::new(facts, query);
    let totals = index.figures(query.from, query.to, bench, query.explain);
    let mut series = Vec::new();
    if let Some(g) = query.series {
        let mut start = match g {
            Granularity::Week => query.from.start_of_week(),
            Granularity::Month => query.from.start_of_month(),
        };
        while start < query.to {
            let end = match g {
                Granularity::Week => Timestamp(start.0 + 7 * 86_400_000),
                Granularity::Month => start.next_month(),
            };
            series.push(index.figures(start.max(query.from), end.min(query.to), bench, false));
            start = end;
        }
    }
    Report { benchmark: bench.name.clone(), totals, series }
}

#[cfg(test)]
mod tests;
