//! Judging a canary against its stable version, without I/O: the delivery engine measures
//! (router signals, Prometheus) and hands the numbers here.
//!
//! - [`judge_value`] turns a metric's value into a measurement outcome by its conditions.
//! - [`stats`] holds the statistical judge: a Mann–Whitney U test on latency distributions and
//!   a two-proportion z-test on error rates, each one-sided (is the canary worse?).
//! - [`MetricRun`] counts a metric's measurements against its limits and says when the metric
//!   has passed, failed, is inconclusive, or cannot be trusted (see `pave_model::analysis`
//!   for the limits' meaning).

pub mod stats;

use pave_model::analysis::{Condition, MetricSpec};
use serde::{Deserialize, Serialize};

/// What one measurement says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Successful,
    Failed,
    /// Neither condition held, a needed value was missing, or a test had no verdict.
    Inconclusive,
    /// Too few samples to judge yet: not counted; the analysis measures again later.
    Waiting,
    /// The provider failed (unreachable, no data).
    Error,
}

/// The end of a metric's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Successful,
    Failed,
    Inconclusive,
    /// More provider errors in a row than `consecutiveErrorLimit`: the analysis cannot be
    /// trusted, which rolls back like a failure.
    Error,
}

/// One measurement, as recorded in the rollout's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    pub metric: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    pub message: String,
}

/// Outcome of a value by the metric's conditions: a failure condition that holds fails; a
/// success condition that holds passes, one that does not fails (or is inconclusive when a
/// failure condition exists and did not hold either); with only a failure condition, not
/// holding passes.
pub fn judge_value(spec: &MetricSpec, value: f64, stable: Option<f64>) -> (Outcome, String) {
    let parse = |c: &Option<String>| c.as_deref().map(Condition::parse);
    let (success, failure) = match (parse(&spec.success_condition), parse(&spec.failure_condition)) {
        (Some(Err(e)), _) | (_, Some(Err(e))) => return (Outcome::Error, e),
        (s, f) => (s.and_then(Result::ok), f.and_then(Result::ok)),
    };
    let shown = |c: &Option<String>| c.clone().unwrap_or_default();
    if let Some(f) = failure {
        match f.holds(value, stable) {
            Some(true) => return (Outcome::Failed, format!("{} held", shown(&spec.failure_condition))),
            Some(false) => {}
            None => return (Outcome::Inconclusive, "no stable value to compare with".into()),
        }
    }
    match success.map(|s| s.holds(value, stable)) {
        None => (Outcome::Successful, format!("{} did not hold", shown(&spec.failure_condition))),
        Some(Some(true)) => (Outcome::Successful, format!("{} held", shown(&spec.success_condition))),
        Some(Some(false)) if failure.is_some() => {
            (Outcome::Inconclusive, "neither the success nor the failure condition held".into())
        }
        Some(Some(false)) => (Outcome::Failed, format!("{} did not hold", shown(&spec.success_condition))),
        Some(None) => (Outcome::Inconclusive, "no stable value to compare with".into()),
    }
}

/// A metric's measurements so far, against its count and limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricRun {
    pub successful: u32,
    pub failed: u32,
    pub inconclusive: u32,
    pub errors: u32,
    pub consecutive_errors: u32,
    pub waiting: u32,
}

impl MetricRun {
    /// Counts one outcome; returns the verdict once there is one.
    pub fn record(&mut self, spec: &MetricSpec, outcome: Outcome) -> Option<Verdict> {
        match outcome {
            Outcome::Successful => self.successful += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Inconclusive => self.inconclusive += 1,
            Outcome::Waiting => self.waiting += 1,
            Outcome::Error => self.errors += 1,
        }
        if outcome == Outcome::Error {
            self.consecutive_errors += 1;
        } else if outcome != Outcome::Waiting {
            self.consecutive_errors = 0;
        }
        if self.failed > spec.failure_limit {
            return Some(Verdict::Failed);
        }
        if self.consecutive_errors > spec.consecutive_error_limit {
            return Some(Verdict::Error);
        }
        if self.inconclusive > spec.inconclusive_limit {
            return Some(Verdict::Inconclusive);
        }
        (self.successful + self.failed + self.inconclusive >= spec.count).then_some(Verdict::Successful)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pave_model::analysis::{Provider, RouterMetric, Signal};

    fn metric(success: Option<&str>, failure: Option<&str>) -> MetricSpec {
        MetricSpec {
            name: "m".into(),
            provider: Provider::Router(RouterMetric { signal: Signal::ErrorRate, min_samples: 10 }),
            interval: "1s".into(),
            count: 3,
            failure_limit: 1,
            inconclusive_limit: 1,
            consecutive_error_limit: 2,
            success_condition: success.map(str::to_owned),
            failure_condition: failure.map(str::to_owned),
        }
    }

    #[test]
    fn values_are_judged_by_the_conditions_given() {
        let both = metric(Some("result < 0.01"), Some("result > 0.05"));
        assert_eq!(judge_value(&both, 0.0, None).0, Outcome::Successful);
        assert_eq!(judge_value(&both, 0.1, None).0, Outcome::Failed);
        assert_eq!(judge_value(&both, 0.03, None).0, Outcome::Inconclusive);
        let only_success = metric(Some("result <= stable * 1.5"), None);
        assert_eq!(judge_value(&only_success, 1.4, Some(1.0)).0, Outcome::Successful);
        assert_eq!(judge_value(&only_success, 1.6, Some(1.0)).0, Outcome::Failed);
        assert_eq!(judge_value(&only_success, 1.6, None).0, Outcome::Inconclusive);
        let only_failure = metric(None, Some("result > stable + 0.02"));
        assert_eq!(judge_value(&only_failure, 0.01, Some(0.0)).0, Outcome::Successful);
        assert_eq!(judge_value(&only_failure, 0.2, Some(0.0)).0, Outcome::Failed);
    }

    #[test]
    fn limits_decide_each_outcome_of_a_run() {
        let spec = metric(None, Some("result > 1"));
        // Passes: count reached within the limits (one failure and one inconclusive allowed).
        let mut run = MetricRun::default();
        assert_eq!(run.record(&spec, Outcome::Failed), None);
        assert_eq!(run.record(&spec, Outcome::Waiting), None, "waiting is not counted");
        assert_eq!(run.record(&spec, Outcome::Inconclusive), None);
        assert_eq!(run.record(&spec, Outcome::Successful), Some(Verdict::Successful));
        // Fails: a second failure is over failureLimit 1.
        let mut run = MetricRun::default();
        run.record(&spec, Outcome::Failed);
        assert_eq!(run.record(&spec, Outcome::Failed), Some(Verdict::Failed));
        // Inconclusive: a second inconclusive is over inconclusiveLimit 1.
        let mut run = MetricRun::default();
        run.record(&spec, Outcome::Inconclusive);
        assert_eq!(run.record(&spec, Outcome::Inconclusive), Some(Verdict::Inconclusive));
        // Error: three errors in a row are over consecutiveErrorLimit 2; one success between
        // resets the streak.
        let mut run = MetricRun::default();
        run.record(&spec, Outcome::Error);
        run.record(&spec, Outcome::Error);
        assert_eq!(run.record(&spec, Outcome::Successful), None);
        run.record(&spec, Outcome::Error);
        run.record(&spec, Outcome::Error);
        assert_eq!(run.record(&spec, Outcome::Error), Some(Verdict::Error));
        // Waiting forever never passes.
        let mut run = MetricRun::default();
        for _ in 0..100 {
            assert_eq!(run.record(&spec, Outcome::Waiting), None);
        }
    }
}
