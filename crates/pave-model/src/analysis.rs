//! Canary analysis as a service declares it: named metrics, each with a provider, how often
//! and how many times it is measured, and when a measurement passes or fails. The judging
//! itself (statistics, limits) is `pave-canary-judge`; running providers is the delivery engine's.
//!
//! Limits, per metric (as in Argo Rollouts, whose users know them):
//! - `failureLimit` (default 0): failed measurements tolerated; one more fails the analysis,
//!   and the rollout is rolled back at once.
//! - `inconclusiveLimit` (default 0): inconclusive measurements tolerated (neither condition
//!   held, too few samples, or a statistical test without a verdict); one more makes the
//!   analysis inconclusive, and the rollout waits for a person (`promote` or `abort`).
//! - `consecutiveErrorLimit` (default 4): provider errors in a row tolerated (Prometheus
//!   unreachable, a query without a result); one more means the analysis cannot be trusted,
//!   and the rollout is rolled back.
//!
//! A metric passes after `count` measurements that were successful or within those limits.

use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::runtime::parse_duration;

/// An analysis step: every metric is measured side by side; the first to fail decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnalysisSpec {
    pub metrics: Vec<MetricSpec>,
}

fn default_interval() -> String {
    "10s".into()
}
fn default_count() -> u32 {
    3
}
fn default_error_limit() -> u32 {
    4
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricSpec {
    pub name: String,
    pub provider: Provider,
    #[serde(default = "default_interval")]
    pub interval: String,
    #[serde(default = "default_count")]
    pub count: u32,
    #[serde(default)]
    pub failure_limit: u32,
    #[serde(default)]
    pub inconclusive_limit: u32,
    #[serde(default = "default_error_limit")]
    pub consecutive_error_limit: u32,
    /// `result OP BOUND`, e.g. `result < 0.01` or `result <= stable * 1.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
}

/// Where a metric's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Provider {
    /// The router's golden signals for the canary (`result`) and the stable version
    /// (`stable`), over the analysis so far.
    Router(RouterMetric),
    /// A PromQL instant query; `{{service}}`, `{{environment}}` and `{{version}}` are
    /// replaced (the canary's version gives `result`, the stable one's gives `stable`).
    Prometheus(PrometheusMetric),
    /// A statistical test of canary against stable that says pass, fail or inconclusive
    /// itself, with its p-value: no thresholds to set.
    Judge(JudgeMetric),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signal {
    /// Share of responses that were 5xx, 0–1.
    ErrorRate,
    P50,
    P95,
    P99,
    /// Requests the canary answered.
    Requests,
}

fn default_min_samples() -> u64 {
    50
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouterMetric {
    pub signal: Signal,
    /// Canary requests needed before a measurement judges anything (below: inconclusive).
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrometheusMetric {
    /// Base URL, e.g. `http://127.0.0.1:9090`.
    pub address: String,
    pub query: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Test {
    /// Mann–Whitney U on the latency distributions: is the canary slower?
    Latency,
    /// Two-proportion z-test on the error rates: does the canary fail more?
    Errors,
}

fn default_alpha() -> f64 {
    0.01
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JudgeMetric {
    pub test: Test,
    /// Significance: a p-value below it fails the canary.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Requests needed from each version before the test is run (below: inconclusive).
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
    /// Latency: how much slower than stable (0.05 = 5 %) a canary may be before it counts as
    /// slower at all — a freshly started process on a busy machine is a little slower, and
    /// that is not a regression.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Latency: the least slowdown, in milliseconds, that counts whatever the tolerance says.
    /// At sub-millisecond latencies a fresh process is slower by a large fraction of very
    /// little (0.15 ms -> 0.22 ms), which is warm-up, not a regression.
    #[serde(default = "default_slack_ms")]
    pub slack_ms: f64,
}

fn default_tolerance() -> f64 {
    0.05
}

fn default_slack_ms() -> f64 {
    0.25
}

// Documents compare whole (the apply planner diffs them); an alpha is never NaN once validated.
impl Eq for JudgeMetric {}

/// A parsed `result OP BOUND` condition, where BOUND is a number, `stable`, `stable * k` or
/// `stable + k`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    pub op: Op,
    pub bound: Bound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Number(f64),
    StableTimes(f64),
    StablePlus(f64),
}

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, String> {
        let err = || {
            format!(
                "{text:?} is not a condition: write `result OP BOUND`, OP one of < <= > >=, BOUND a number, \
                 `stable`, `stable * K` or `stable + K`"
            )
        };
        let t: Vec<&str> = text.split_whitespace().collect();
        let (op, rest) = match t.as_slice() {
            ["result", op, rest @ ..] if !rest.is_empty() => (*op, rest),
            _ => return Err(err()),
        };
        let op = match op {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            _ => return Err(err()),
        };
        let num = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(err);
        let bound = match rest {
            [n] if *n != "stable" => Bound::Number(num(n)?),
            ["stable"] => Bound::StableTimes(1.0),
            ["stable", "*", k] => Bound::StableTimes(num(k)?),
            ["stable", "+", k] => Bound::StablePlus(num(k)?),
            _ => return Err(err()),
        };
        Ok(Condition { op, bound })
    }

    /// Whether the condition holds; `None` when it needs the stable value and there is none.
    pub fn holds(&self, result: f64, stable: Option<f64>) -> Option<bool> {
        let bound = match self.bound {
            Bound::Number(n) => n,
            Bound::StableTimes(k) => stable? * k,
            Bound::StablePlus(k) => stable? + k,
        };
        Some(match self.op {
            Op::Lt => result < bound,
            Op::Le => result <= bound,
            Op::Gt => result > bound,
            Op::Ge => result >= bound,
        })
    }
}

impl AnalysisSpec {
    pub fn validate(&self, prefix: &str) -> Vec<FieldError> {
        let mut e = Vec::new();
        if self.metrics.is_empty() {
            e.push(FieldError::new(format!("{prefix}.metrics"), "an analysis needs at least one metric"));
        }
        for (i, m) in self.metrics.iter().enumerate() {
            let p = format!("{prefix}.metrics[{i}]");
            if m.name.trim().is_empty() || self.metrics[..i].iter().any(|o| o.name == m.name) {
                e.push(FieldError::new(format!("{p}.name"), "each metric needs a name of its own"));
            }
            match parse_duration(&m.interval) {
                Ok(ms) if ms >= 100 => {}
                Ok(_) => e.push(FieldError::new(format!("{p}.interval"), "at least 100ms")),
                Err(msg) => e.push(FieldError::new(format!("{p}.interval"), msg)),
            }
            if m.count == 0 {
                e.push(FieldError::new(format!("{p}.count"), "at least 1 measurement"));
            }
            for (field, c) in [("successCondition", &m.success_condition), ("failureCondition", &m.failure_condition)] {
                if let Some(c) = c
                    && let Err(msg) = Condition::parse(c)
                {
                    e.push(FieldError::new(format!("{p}.{field}"), msg));
                }
            }
            match &m.provider {
                Provider::Judge(j) => {
                    if !(j.alpha > 0.0 && j.alpha < 0.5) {
                        e.push(FieldError::new(format!("{p}.provider.judge.alpha"), "between 0 and 0.5, e.g. 0.01"));
                    }
                    if !(0.0..=1.0).contains(&j.tolerance) {
                        e.push(FieldError::new(format!("{p}.provider.judge.tolerance"), "between 0 and 1, e.g. 0.05"));
                    }
                    if !(0.0..=1000.0).contains(&j.slack_ms) {
                        e.push(FieldError::new(
                            format!("{p}.provider.judge.slackMs"),
                            "between 0 and 1000 (milliseconds), e.g. 0.25",
                        ));
                    }
                    if m.success_condition.is_some() || m.failure_condition.is_some() {
                        e.push(FieldError::new(
                            format!("{p}.successCondition"),
                            "a judge decides by its test; conditions do not apply",
                        ));
                    }
                }
                Provider::Router(_) | Provider::Prometheus(_) => {
                    if m.success_condition.is_none() && m.failure_condition.is_none() {
                        e.push(FieldError::new(
                            format!("{p}.failureCondition"),
                            "say when a measurement passes or fails (successCondition and/or failureCondition)",
                        ));
                    }
                }
            }
            if let Provider::Prometheus(pm) = &m.provider {
                if !(pm.address.starts_with("http://") || pm.address.starts_with("https://")) {
                    e.push(FieldError::new(format!("{p}.provider.prometheus.address"), "an http:// or https:// URL"));
                }
                if pm.query.trim().is_empty() {
                    e.push(FieldError::new(format!("{p}.provider.prometheus.query"), "a PromQL query"));
                }
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_and_hold_as_written() {
        let c = Condition::parse("result <= stable * 1.2").unwrap();
        assert_eq!(c.holds(1.1, Some(1.0)), Some(true));
        assert_eq!(c.holds(1.3, Some(1.0)), Some(false));
        assert_eq!(c.holds(1.0, None), None, "needs the stable value");
        assert_eq!(Condition::parse("result > 0.05").unwrap().holds(0.2, None), Some(true));
        assert_eq!(Condition::parse("result < stable + 0.01").unwrap().holds(0.015, Some(0.01)), Some(true));
        assert_eq!(Condition::parse("result >= stable").unwrap().holds(1.0, Some(1.0)), Some(true));
        for bad in ["", "result", "result < ", "x < 1", "result << 1", "result < stable * x", "result < NaN"] {
            assert!(Condition::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn analysis_specs_are_validated_with_field_paths() {
        let spec: AnalysisSpec = serde_json::from_value(serde_json::json!({"metrics": [
            {"name": "errors", "provider": {"router": {"signal": "error-rate"}}, "interval": "1s",
             "failureCondition": "result > stable + 0.05"},
            {"name": "slow", "provider": {"judge": {"test": "latency"}}},
        ]}))
        .unwrap();
        assert!(spec.validate("steps[1].analysis").is_empty());
        let bad: AnalysisSpec = serde_json::from_value(serde_json::json!({"metrics": [
            {"name": "errors", "provider": {"router": {"signal": "error-rate"}}, "interval": "1ms", "count": 0},
            {"name": "errors", "provider": {"judge": {"test": "errors", "alpha": 2}}, "successCondition": "result > 1"},
            {"name": "prom", "provider": {"prometheus": {"address": "localhost:9090", "query": ""}},
             "failureCondition": "result >> 1"},
        ]}))
        .unwrap();
        let fields: Vec<String> = bad.validate("a").into_iter().map(|e| e.field).collect();
        for f in [
            "a.metrics[0].interval",
            "a.metrics[0].count",
            "a.metrics[0].failureCondition",
            "a.metrics[1].name",
            "a.metrics[1].provider.judge.alpha",
            "a.metrics[1].successCondition",
            "a.metrics[2].failureCondition",
            "a.metrics[2].provider.prometheus.address",
            "a.metrics[2].provider.prometheus.query",
        ] {
            assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
        }
        assert!(
            serde_json::from_value::<MetricSpec>(
                serde_json::json!({"name": "x", "provider": {"router": {"signal": "p99"}}, "treshold": 1})
            )
            .is_err(),
            "unknown fields are refused"
        );
    }
}
