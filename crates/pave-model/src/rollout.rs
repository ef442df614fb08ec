//! Rollouts: taking a release into an environment, step by step. A rollout's plan is a list of
//! idempotent [`Step`]s computed when it is created; the engine runs them in order and records
//! the index of the next one, so after a crash it re-runs the step it was in and goes on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::AnalysisSpec;
use crate::runtime::parse_duration;
use crate::{FieldError, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Stop the old version, then start the new one (downtime; for what cannot run twice).
    Recreate,
    /// Replace replicas one at a time behind the router.
    #[default]
    Rolling,
    /// Start the new colour beside the old, switch all traffic at once, keep the old warm.
    BlueGreen,
    /// Start the new version beside the old and shift traffic to it by the service's canary
    /// `steps` (weights, pauses, analyses), then all of it.
    Canary,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

fn default_true() -> bool {
    true
}
fn default_keep_warm() -> String {
    "5m".into()
}

/// One step of a canary, as a service declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum CanaryStep {
    /// Send this percent of traffic to the canary (1–99).
    SetWeight(u8),
    /// Wait `duration`, or with none until `pave rollout promote`.
    Pause(PauseSpec),
    /// Judge the canary against the stable version; a failure rolls back.
    Analysis(AnalysisSpec),
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PauseSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// How a service's deployments run, unless `pave deploy` says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RolloutSpec {
    #[serde(default)]
    pub strategy: Strategy,
    /// Blue-green: switch as soon as the new colour is healthy; `false` waits for
    /// `pave rollout promote`.
    #[serde(default = "default_true")]
    pub auto_promote: bool,
    /// Blue-green: how long the old colour stays running after the switch, so an undo is
    /// instant. The rollout itself ends at the switch.
    #[serde(default = "default_keep_warm")]
    pub keep_warm: String,
    /// Canary: the steps between the first share of traffic and the full promotion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<CanaryStep>,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        RolloutSpec {
            strategy: Strategy::default(),
            auto_promote: true,
            keep_warm: default_keep_warm(),
            steps: Vec::new(),
        }
    }
}

impl RolloutSpec {
    pub fn validate(&self, prefix: &str) -> Vec<FieldError> {
        let mut e = Vec::new();
        if let Err(m) = parse_duration(&self.keep_warm) {
            e.push(FieldError::new(format!("{prefix}.keepWarm"), m));
        }
        for (i, step) in self.steps.iter().enumerate() {
            let p = format!("{prefix}.steps[{i}]");
            match step {
                CanaryStep::SetWeight(w) if !(1..=99).contains(w) => {
                    e.push(FieldError::new(format!("{p}.setWeight"), "a canary weight is 1 to 99 (percent)"))
                }
                CanaryStep::Pause(PauseSpec { duration: Some(d) }) => {
                    if let Err(m) = parse_duration(d) {
                        e.push(FieldError::new(format!("{p}.pause.duration"), m));
                    }
                }
                CanaryStep::Analysis(a) => e.extend(a.validate(&format!("{p}.analysis"))),
                _ => {}
            }
        }
        if self.strategy == Strategy::Canary && !self.steps.iter().any(|s| matches!(s, CanaryStep::SetWeight(_))) {
            e.push(FieldError::new(
                format!("{prefix}.steps"),
                "a canary needs steps with at least one setWeight (e.g. [{setWeight: 5}, {analysis: …}, {setWeight: 50}])",
            ));
        }
        e
    }
}

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutState {
    /// Waits for `pave rollout approve` (an environment that requires approval).
    AwaitingApproval,
    /// The engine is running its steps.
    Progressing,
    /// Paused before a switch until `pave rollout promote`.
    AwaitingPromotion,
    /// Held where it is by `pave rollout pause` until `resume` (or `promote`, which also
    /// skips the step it is in).
    Paused,
    /// Undoing a failed or aborted rollout: the old version is being restored.
    RollingBack,
    Succeeded,
    /// The new version did not become healthy (or failed otherwise); the old one serves.
    Failed,
    /// Stopped by `pave rollout abort`; the old one serves.
    Aborted,
    /// It had succeeded, then `pave rollout undo` (or an automatic rollback) replaced it.
    RolledBack,
}

impl RolloutState {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Aborted | Self::RolledBack)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingApproval => "awaiting-approval",
            Self::Progressing => "progressing",
            Self::AwaitingPromotion => "awaiting-promotion",
            Self::Paused => "paused",
            Self::RollingBack => "rolling-back",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
            Self::RolledBack => "rolled-back",
        }
    }
}

/// One idempotent step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum Step {
    /// Make exactly `replicas` healthy replicas of `version` run (starting the missing ones,
    /// draining and stopping the extra ones).
    Scale { version: String, replicas: u32 },
    /// Send traffic by these weights (percent; versions not named get none). Switched at once.
    Route { weights: BTreeMap<String, u8> },
    /// Wait until `pave rollout promote`.
    AwaitPromotion,
    /// Keep `version` running without traffic for `after_ms`, then stop it (the engine does,
    /// in the background): a blue-green rollout ends at the switch, and an undo within that
    /// time is instant because the old colour still runs.
    Retire { version: String, after_ms: u64 },
    /// Wait `ms` (re-waited from the start after a control-plane restart).
    Pause { ms: u64 },
    /// Judge `canary` against `stable` (restarted from scratch after a control-plane restart:
    /// the router's signals of the canary are not trusted across one).
    Analyze { canary: String, stable: String, analysis: AnalysisSpec },
}

impl Rollout {
    /// Whether the new version had taken traffic before the rollout began to revert: its
    /// failure was then seen by users, and the revert is a rollback DORA counts as recovery.
    pub fn failed_in_traffic(&self) -> bool {
        self.reverted_at_step.is_some_and(|at| {
            self.steps[..at.min(self.steps.len())].iter().any(|s| match s {
                Step::Route { weights } => weights.get(&self.version).is_some_and(|w| *w > 0),
                _ => false,
            })
        })
    }
}

impl Step {
    pub fn describe(&self) -> String {
        match self {
            Step::Scale { version, replicas } => format!("scale {version} to {replicas} replica(s)"),
            Step::Route { weights } if weights.is_empty() => "route no traffic".to_owned(),
            Step::Route { weights } => {
                let w: Vec<String> = weights.iter().map(|(v, w)| format!("{v} {w}%")).collect();
                format!("route {}", w.join(", "))
            }
            Step::AwaitPromotion => "wait for `pave rollout promote`".to_owned(),
            Step::Retire { version, after_ms } => format!("keep {version} warm for {}s, then stop it", after_ms / 1000),
            Step::Pause { ms } => format!("pause {}", crate::runtime::format_duration(*ms)),
            Step::Analyze { canary, stable, analysis } => {
                let names: Vec<&str> = analysis.metrics.iter().map(|m| m.name.as_str()).collect();
                format!("analyse {canary} against {stable}: {}", names.join(", "))
            }
        }
    }
}

/// Why a rollout exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutKind {
    #[default]
    Deploy,
    /// `pave rollout undo`: back to the release that ran before.
    Undo,
}

/// A rollout, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    pub id: i64,
    pub service: String,
    pub environment: String,
    pub version: String,
    /// The version serving when the rollout began, if any.
    pub from_version: Option<String>,
    pub strategy: Strategy,
    pub kind: RolloutKind,
    pub state: RolloutState,
    /// Index of the next step to run.
    pub step: usize,
    pub steps: Vec<Step>,
    /// Steps that restore `from_version`, run when the rollout fails or is aborted.
    pub revert: Vec<Step>,
    pub replicas: u32,
    pub requested_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// An admin who skipped the promotion path or the approval, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Set by `pave rollout abort`; the engine reverts.
    #[serde(default)]
    pub abort_requested: Option<String>,
    /// The plan step the rollout was at when it began to revert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverted_at_step: Option<usize>,
    /// The commit of the release, for DORA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
}

/// A version's place in a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionState {
    pub version: String,
    pub weight: u8,
    pub replicas: u32,
    /// When the engine stops this version's replicas, if it still takes no traffic then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire_at: Option<Timestamp>,
}

/// The desired state of a service in an environment: which versions run, with how many
/// replicas, taking what share of the traffic, behind which router port.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteState {
    pub port: u16,
    #[serde(default)]
    pub sticky: bool,
    pub versions: Vec<VersionState>,
}

impl RouteState {
    /// The version taking all traffic, if one does.
    pub fn serving(&self) -> Option<&str> {
        self.versions.iter().find(|v| v.weight == 100).map(|v| v.version.as_str())
    }

    /// The version with the largest share (the stable one during a partial rollout).
    pub fn primary(&self) -> Option<&str> {
        self.versions.iter().filter(|v| v.weight > 0).max_by_key(|v| v.weight).map(|v| v.version.as_str())
    }

    pub fn set_replicas(&mut self, version: &str, replicas: u32) {
        match self.versions.iter_mut().find(|v| v.version == version) {
            Some(v) => {
                v.replicas = replicas;
                v.retire_at = None;
            }
            None => {
                self.versions.push(VersionState { version: version.to_owned(), weight: 0, replicas, retire_at: None })
            }
        }
        self.versions.retain(|v| v.replicas > 0 || v.weight > 0);
    }

    pub fn set_weights(&mut self, weights: &BTreeMap<String, u8>) {
        for v in &mut self.versions {
            v.weight = weights.get(&v.version).copied().unwrap_or(0);
            if v.weight > 0 {
                v.retire_at = None;
            }
        }
        self.versions.retain(|v| v.replicas > 0 || v.weight > 0);
    }
}

fn weights(pairs: &[(&str, u8)]) -> BTreeMap<String, u8> {
    pairs.iter().filter(|(_, w)| *w > 0).map(|(v, w)| (v.to_string(), *w)).collect()
}

/// The steps that take `from` (serving, `replicas` of it) to `to` by `strategy` (a canary
/// by the spec's `steps`, which were validated with it).
pub fn plan(
    strategy: Strategy,
    from: Option<&str>,
    to: &str,
    replicas: u32,
    spec: &RolloutSpec,
    keep_warm_ms: u64,
) -> Vec<Step> {
    let auto_promote = spec.auto_promote;
    let n = replicas.max(1);
    let scale = |v: &str, r: u32| Step::Scale { version: v.to_owned(), replicas: r };
    let route = |pairs: &[(&str, u8)]| Step::Route { weights: weights(pairs) };
    let Some(from) = from.filter(|f| *f != to) else {
        // Nothing to replace (or a redeploy of what serves): bring it up and send it traffic.
        return vec![scale(to, n), route(&[(to, 100)])];
    };
    match strategy {
        Strategy::Recreate => vec![route(&[]), scale(from, 0), scale(to, n), route(&[(to, 100)])],
        Strategy::Rolling => {
            let mut steps = Vec::new();
            for i in 1..=n {
                let share = ((100 * i) / n) as u8;
                steps.push(scale(to, i));
                steps.push(route(&[(to, share), (from, 100 - share)]));
                steps.push(scale(from, n - i));
            }
            steps
        }
        Strategy::BlueGreen => {
            let mut steps = vec![scale(to, n)];
            if !auto_promote {
                steps.push(Step::AwaitPromotion);
            }
            steps.push(route(&[(to, 100)]));
            steps.push(if keep_warm_ms > 0 {
                Step::Retire { version: from.to_owned(), after_ms: keep_warm_ms }
            } else {
                scale(from, 0)
            });
            steps
        }
        Strategy::Canary => {
            // The canary runs at full size from the start, so any weight (and the promotion)
            // is only a route switch, and a rollback only a switch back.
            let mut steps = vec![scale(to, n)];
            for s in &spec.steps {
                steps.push(match s {
                    CanaryStep::SetWeight(w) => {
                        let w = (*w).min(99);
                        route(&[(to, w), (from, 100 - w)])
                    }
                    CanaryStep::Pause(PauseSpec { duration: None }) => Step::AwaitPromotion,
                    CanaryStep::Pause(PauseSpec { duration: Some(d) }) => {
                        Step::Pause { ms: parse_duration(d).unwrap_or(0) }
                    }
                    CanaryStep::Analysis(a) => {
                        Step::Analyze { canary: to.to_owned(), stable: from.to_owned(), analysis: a.clone() }
                    }
                });
            }
            steps.push(route(&[(to, 100)]));
            steps.push(scale(from, 0));
            steps
        }
    }
}

/// The steps that put `from` back in charge and remove `to` (a failed or aborted rollout).
pub fn revert(from: Option<&str>, to: &str, replicas: u32) -> Vec<Step> {
    let n = replicas.max(1);
    match from {
        Some(from) if from != to => vec![
            Step::Scale { version: from.to_owned(), replicas: n },
            Step::Route { weights: weights(&[(from, 100)]) },
            Step::Scale { version: to.to_owned(), replicas: 0 },
        ],
        _ => vec![Step::Route { weights: BTreeMap::new() }, Step::Scale { version: to.to_owned(), replicas: 0 }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a plan on a route state and checks that at every point some version serves
    /// (except during recreate, which is allowed a gap), and that weights add up.
    fn simulate(steps: &[Step], mut state: RouteState, gap_allowed: bool) -> RouteState {
        for s in steps {
            match s {
                Step::Scale { version, replicas } => state.set_replicas(version, *replicas),
                Step::Route { weights } => state.set_weights(weights),
                // The engine stops it later; for the end state it is gone.
                Step::Retire { version, .. } => state.set_replicas(version, 0),
                _ => {}
            }
            let total: u32 = state.versions.iter().map(|v| u32::from(v.weight)).sum();
            assert!(total == 100 || (gap_allowed && total == 0), "weights {total} after {s:?}");
            for v in &state.versions {
                assert!(v.weight == 0 || v.replicas > 0, "{} takes traffic with no replica after {s:?}", v.version);
            }
        }
        state
    }

    fn serving(v: &str, n: u32) -> RouteState {
        RouteState {
            port: 1,
            sticky: false,
            versions: vec![VersionState { version: v.into(), weight: 100, replicas: n, retire_at: None }],
        }
    }

    fn canary_spec() -> RolloutSpec {
        serde_json::from_value(serde_json::json!({"strategy": "canary", "steps": [
            {"setWeight": 5},
            {"analysis": {"metrics": [{"name": "errors", "provider": {"router": {"signal": "error-rate"}},
                                        "failureCondition": "result > stable + 0.01"}]}},
            {"pause": {"duration": "30s"}},
            {"setWeight": 50},
            {"pause": {}},
        ]}))
        .unwrap()
    }

    #[test]
    fn a_canary_shifts_traffic_by_its_steps_and_ends_on_the_new_version() {
        let spec = canary_spec();
        assert!(spec.validate("spec.rollout").is_empty(), "{:?}", spec.validate("spec.rollout"));
        let steps = plan(Strategy::Canary, Some("1"), "2", 2, &spec, 0);
        let kinds: Vec<String> = steps.iter().map(Step::describe).collect();
        assert_eq!(
            kinds,
            [
                "scale 2 to 2 replica(s)",
                "route 1 95%, 2 5%",
                "analyse 2 against 1: errors",
                "pause 30s",
                "route 1 50%, 2 50%",
                "wait for `pave rollout promote`",
                "route 2 100%",
                "scale 1 to 0 replica(s)",
            ]
        );
        let bad: RolloutSpec = serde_json::from_value(
            serde_json::json!({"strategy": "canary", "steps": [{"setWeight": 100}, {"pause": {"duration": "5 s"}}]}),
        )
        .unwrap();
        let fields: Vec<String> = bad.validate("r").into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["r.steps[0].setWeight", "r.steps[1].pause.duration"]);
        let none: RolloutSpec = serde_json::from_value(serde_json::json!({"strategy": "canary"})).unwrap();
        assert_eq!(none.validate("r")[0].field, "r.steps");
        assert!(serde_json::from_value::<RolloutSpec>(serde_json::json!({"steps": [{"setWieght": 5}]})).is_err());
    }

    #[test]
    fn every_strategy_ends_with_only_the_new_version_and_never_routes_to_nothing() {
        for strategy in [Strategy::Rolling, Strategy::BlueGreen, Strategy::Recreate, Strategy::Canary] {
            for n in 1..=4 {
                let steps = plan(strategy, Some("1"), "2", n, &canary_spec(), 1000);
                let end = simulate(&steps, serving("1", n), strategy == Strategy::Recreate);
                assert_eq!(end, serving("2", n), "{strategy:?} n={n}");
                let back = simulate(&revert(Some("1"), "2", n), end, false);
                assert_eq!(back, serving("1", n));
            }
        }
    }

    #[test]
    fn rolling_replaces_one_replica_at_a_time() {
        let steps = plan(Strategy::Rolling, Some("1"), "2", 3, &RolloutSpec::default(), 0);
        let mut state = serving("1", 3);
        for s in &steps {
            if let Step::Scale { version, replicas } = s {
                state.set_replicas(version, *replicas);
                let total: u32 = state.versions.iter().map(|v| v.replicas).sum();
                assert!((3..=4).contains(&total), "at most one extra replica: {state:?}");
            }
        }
        assert!(steps.contains(&Step::Route { weights: weights(&[("2", 33), ("1", 67)]) }));
    }

    #[test]
    fn blue_green_waits_for_promotion_when_told_and_keeps_the_old_colour_warm() {
        let manual = RolloutSpec { auto_promote: false, ..RolloutSpec::default() };
        let steps = plan(Strategy::BlueGreen, Some("1"), "2", 2, &manual, 60_000);
        assert_eq!(steps[1], Step::AwaitPromotion);
        assert_eq!(steps[3], Step::Retire { version: "1".into(), after_ms: 60_000 });
        assert_eq!(
            plan(Strategy::BlueGreen, Some("1"), "2", 2, &RolloutSpec::default(), 0).last(),
            Some(&Step::Scale { version: "1".into(), replicas: 0 })
        );
        // A first deployment has nothing to replace.
        assert_eq!(plan(Strategy::BlueGreen, None, "1", 2, &manual, 0).len(), 2);
    }

    #[test]
    fn states_and_specs_read_as_documented() {
        assert_eq!(Strategy::parse("blue-green"), Some(Strategy::BlueGreen));
        assert_eq!(Strategy::parse("canary-ish"), None);
        assert!(RolloutState::RolledBack.is_terminal());
        assert!(!RolloutState::AwaitingPromotion.is_terminal());
        let spec: RolloutSpec = serde_json::from_str(r#"{"strategy":"blue-green","keepWarm":"2x"}"#).unwrap();
        assert_eq!(spec.validate("spec.rollout")[0].field, "spec.rollout.keepWarm");
        assert!(serde_json::from_str::<RolloutSpec>(r#"{"strategy":"rolling","surge":2}"#).is_err());
    }
}
