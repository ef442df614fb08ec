//! Measuring a canary: the providers' I/O (the router's signals, a Prometheus query), judged
//! by `pave-canary-judge`.

use std::time::Duration;

use hyper::body::Bytes;
use pave_canary_judge::stats::{MIN_EFFECT, mann_whitney, two_proportion};
use pave_canary_judge::{Measurement, Outcome, judge_value};
use pave_model::analysis::{JudgeMetric, MetricSpec, PrometheusMetric, Provider, RouterMetric, Signal, Test};
use pave_percent::encode;
use pave_router::Summary;

/// What is being judged: the canary and stable versions of a service in an environment.
pub(crate) struct Target<'a> {
    pub service: &'a str,
    pub env: &'a str,
    pub canary: &'a str,
    pub stable: &'a str,
}

/// One measurement of `metric`. `signals` gives the router's summaries of (canary, stable)
/// over the analysis so far.
pub(crate) async fn measure(
    metric: &MetricSpec,
    target: &Target<'_>,
    signals: (Option<Summary>, Option<Summary>),
) -> Measurement {
    let m = |outcome, value, stable, p_value, message: String| Measurement {
        metric: metric.name.clone(),
        outcome,
        value,
        stable,
        p_value,
        message,
    };
    match &metric.provider {
        Provider::Router(RouterMetric { signal, min_samples }) => {
            let (canary, stable) = signals;
            let n = canary.as_ref().map_or(0, |s| s.requests);
            if n < *min_samples {
                return m(
                    Outcome::Waiting,
                    None,
                    None,
                    None,
                    format!("{n} of {min_samples} canary requests needed before judging"),
                );
            }
            let value = canary.as_ref().and_then(|s| router_value(*signal, s));
            let base = stable.as_ref().and_then(|s| router_value(*signal, s));
            match value {
                Some(v) => {
                    let (outcome, message) = judge_value(metric, v, base);
                    m(outcome, Some(v), base, None, message)
                }
                None => m(Outcome::Error, None, base, None, "the router has no such value for the canary".into()),
            }
        }
        Provider::Judge(j) => judge(j, signals, m),
        Provider::Prometheus(p) => {
            let canary = prometheus(p, target, target.canary).await;
            // A query per version compares the two; a stable version without data yet (not
            // scraped so far) is a provider error like a canary without data, not a verdict.
            let stable = if p.query.contains("{{version}}") {
                match prometheus(p, target, target.stable).await {
                    Ok(Some(v)) => Some(v),
                    Ok(None) => {
                        return m(Outcome::Error, None, None, None, "the query returned no sample for stable".into());
                    }
                    Err(e) => return m(Outcome::Error, None, None, None, e),
                }
            } else {
                None
            };
            match canary {
                Ok(Some(v)) => {
                    let (outcome, message) = judge_value(metric, v, stable);
                    m(outcome, Some(v), stable, None, message)
                }
                Ok(None) => m(Outcome::Error, None, stable, None, "the query returned no sample for the canary".into()),
                Err(e) => m(Outcome::Error, None, None, None, e),
            }
        }
    }
}

fn router_value(signal: Signal, s: &Summary) -> Option<f64> {
    match signal {
        Signal::ErrorRate => Some(s.error_rate),
        Signal::P50 => s.p50_ms,
        Signal::P95 => s.p95_ms,
        Signal::P99 => s.p99_ms,
        Signal::Requests => Some(s.requests as f64),
    }
}

fn judge(
    j: &JudgeMetric,
    (canary, stable): (Option<Summary>, Option<Summary>),
    m: impl Fn(Outcome, Option<f64>, Option<f64>, Option<f64>, String) -> Measurement,
) -> Measurement {
    let (nc, ns) = (canary.as_ref().map_or(0, |s| s.requests), stable.as_ref().map_or(0, |s| s.requests));
    let (Some(c), Some(s)) = (canary, stable) else {
        return m(Outcome::Waiting, None, None, None, format!("{nc}/{ns} requests (canary/stable) so far"));
    };
    if nc < j.min_samples || ns < j.min_samples {
        return m(
            Outcome::Waiting,
            None,
            None,
            None,
            format!("{nc}/{ns} requests (canary/stable); {} each needed before testing", j.min_samples),
        );
    }
    match j.test {
        Test::Latency => {
            // Compare with stable made slower by `tolerance`, or by `slack_ms` where that is
            // more: each of stable's log-spaced buckets moves to the bucket of its slowed value.
            let gamma = (1.0 + pave_router::sketch::ACCURACY) / (1.0 - pave_router::sketch::ACCURACY);
            let slack_us = j.slack_ms * 1000.0;
            let slowed = |b: u64| {
                let v = gamma.powf(b as f64);
                let target = (v * (1.0 + j.tolerance)).max(v + slack_us);
                ((target.ln() / gamma.ln()).round() as u64).max(b)
            };
            let stable: Vec<(u64, u64)> = s.latency.buckets().into_iter().map(|(b, n)| (slowed(b), n)).collect();
            let Some(r) = mann_whitney(&c.latency.buckets(), &stable) else {
                return m(Outcome::Waiting, None, None, None, "no latencies recorded yet".into());
            };
            let (cp, sp) = (c.p50_ms, s.p50_ms);
            let detail = format!(
                "Mann-Whitney U: p = {:.2e}, P(canary slower than stable +{:.0}% or +{} ms) = {:.2}; p50 {:.3} ms vs {:.3} ms over {nc}/{ns} requests",
                r.p_value,
                j.tolerance * 100.0,
                j.slack_ms,
                r.effect,
                cp.unwrap_or(0.0),
                sp.unwrap_or(0.0)
            );
            let outcome =
                if r.p_value < j.alpha && r.effect > MIN_EFFECT { Outcome::Failed } else { Outcome::Successful };
            m(outcome, cp, sp, Some(r.p_value), detail)
        }
        Test::Errors => {
            let Some(r) = two_proportion(c.errors, c.requests, s.errors, s.requests) else {
                return m(Outcome::Waiting, None, None, None, "no requests yet".into());
            };
            let detail = format!(
                "two-proportion z-test: p = {:.2e}; error rate {:.4} vs {:.4} over {nc}/{ns} requests",
                r.p_value, c.error_rate, s.error_rate
            );
            let outcome = if r.p_value < j.alpha { Outcome::Failed } else { Outcome::Successful };
            m(outcome, Some(c.error_rate), Some(s.error_rate), Some(r.p_value), detail)
        }
    }
}

/// Runs the metric's PromQL instant query for `version`: the first sample's value, `None`
/// for an empty result.
async fn prometheus(p: &PrometheusMetric, t: &Target<'_>, version: &str) -> Result<Option<f64>, String> {
    let query =
        p.query.replace("{{service}}", t.service).replace("{{environment}}", t.env).replace("{{version}}", version);
    let base = p.address.trim_end_matches('/');
    let url = format!("{base}/api/v1/query?query={}", encode(&query));
    let (status, body) = crate::http::send(hyper::Method::GET, &url, &[], Bytes::new(), Duration::from_secs(5))
        .await
        .map_err(|e| format!("Prometheus: {e}"))?;
    let doc: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("Prometheus answered {status} with a body that is not JSON: {e}"))?;
    if doc["status"] != "success" {
        return Err(format!(
            "Prometheus refused the query {query:?}: {}",
            doc["error"].as_str().unwrap_or("no reason given")
        ));
    }
    let data = &doc["data"];
    let value = match data["resultType"].as_str() {
        Some("vector") => data["result"].get(0).map(|r| &r["value"][1]),
        Some("scalar") => Some(&data["result"][1]),
        other => {
            return Err(format!("the query {query:?} gave a {other:?} result; an instant vector or scalar is needed"));
        }
    };
    match value.and_then(|v| v.as_str()) {
        None => Ok(None),
        Some(v) => match v.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Some(x)),
            // NaN (a rate over nothing) or ±Inf: no usable sample.
            Ok(_) => Ok(None),
            Err(_) => Err(format!("Prometheus gave {v:?}, not a number")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(version: &str, micros: &[u64]) -> Summary {
        let mut latency = pave_router::sketch::Sketch::default();
        for &m in micros {
            latency.add(m);
        }
        Summary {
            version: version.into(),
            requests: micros.len() as u64,
            errors: 0,
            error_rate: 0.0,
            p50_ms: latency.quantile(0.5).map(|v| v / 1000.0),
            p95_ms: None,
            p99_ms: None,
            latency,
        }
    }

    fn latency_judge(tolerance: f64, slack_ms: f64) -> JudgeMetric {
        JudgeMetric { test: Test::Latency, alpha: 0.01, min_samples: 30, tolerance, slack_ms }
    }

    fn outcome(j: &JudgeMetric, canary: &[u64], stable: &[u64]) -> Outcome {
        let m = |outcome, value, stable, p_value, message: String| Measurement {
            metric: "latency".into(),
            outcome,
            value,
            stable,
            p_value,
            message,
        };
        judge(j, (Some(summary("2", canary)), Some(summary("1", stable))), m).outcome
    }

    #[test]
    fn sub_millisecond_warm_up_is_not_a_regression_but_a_real_slowdown_is() {
        // A fresh process: 0.15 ms -> 0.22 ms, 47 % slower, 0.07 ms in absolute terms.
        let stable: Vec<u64> = (0..300).map(|i| 140 + i % 20).collect();
        let warm_up: Vec<u64> = (0..300).map(|i| 210 + i % 20).collect();
        assert_eq!(outcome(&latency_judge(0.2, 0.25), &warm_up, &stable), Outcome::Successful);
        assert_eq!(outcome(&latency_judge(0.2, 0.0), &warm_up, &stable), Outcome::Failed, "no slack: caught");
        // 6.4 ms -> 7.4 ms (15 %, 1 ms) is past both the 5 % tolerance and the slack.
        let stable: Vec<u64> = (0..300).map(|i| 6300 + i % 200).collect();
        let slower: Vec<u64> = (0..300).map(|i| 7300 + i % 200).collect();
        assert_eq!(outcome(&latency_judge(0.05, 0.25), &slower, &stable), Outcome::Failed);
        assert_eq!(outcome(&latency_judge(0.05, 0.25), &stable, &stable), Outcome::Successful);
    }
}
