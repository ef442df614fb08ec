//! Performance levels: tables of DORA's published clusters kept as data
//! (`benchmarks/*.json`), and the rule that places a figure in one of them.
//!
//! A level is a range (`min`/`max`) or, where the report gives one figure per cluster (change
//! failure rate), a `typical` value. A figure gets: the best level whose range contains it;
//! the worst level if it is worse than every range; otherwise the level of the nearest range
//! (by ratio). With typical values, the level whose typical value is nearest (ties go to the
//! better level).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    pub level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typical: Option<f64>,
    #[serde(default)]
    pub label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricLevels {
    pub unit: String,
    pub better: Better,
    /// Best first.
    pub levels: Vec<Level>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_frequency: Option<MetricLevels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_time: Option<MetricLevels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_failure_rate: Option<MetricLevels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_time: Option<MetricLevels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rework_rate: Option<MetricLevels>,
}

/// A benchmark table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Benchmark {
    pub name: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub note: String,
    pub metrics: Metrics,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchmarkError {
    #[error("benchmark table is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("benchmark table {name:?}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("unknown benchmark {0:?}; built in: dora-2023, dora-2024")]
    Unknown(String),
}

const DORA_2023: &str = include_str!("../benchmarks/dora-2023.json");
const DORA_2024: &str = include_str!("../benchmarks/dora-2024.json");

impl Benchmark {
    /// A built-in table: `dora-2023` or `dora-2024` (also `2023`, `2024`).
    pub fn builtin(name: &str) -> Result<Benchmark, BenchmarkError> {
        match name {
            "dora-2024" | "2024" => Benchmark::parse(DORA_2024),
            "dora-2023" | "2023" => Benchmark::parse(DORA_2023),
            other => Err(BenchmarkError::Unknown(other.to_owned())),
        }
    }

    /// Reads a user-supplied table in the same format as the built-in ones.
    pub fn parse(json: &str) -> Result<Benchmark, BenchmarkError> {
        let b: Benchmark = serde_json::from_str(json)?;
        let all = [
            &b.metrics.deployment_frequency,
            &b.metrics.lead_time,
            &b.metrics.change_failure_rate,
            &b.metrics.recovery_time,
            &b.metrics.rework_rate,
        ];
        for m in all.into_iter().flatten() {
            if m.levels.is_empty() {
                return Err(BenchmarkError::Invalid { name: b.name.clone(), reason: "a metric has no levels".into() });
            }
            for l in &m.levels {
                let ranged = l.min.is_some() || l.max.is_some();
                if ranged == l.typical.is_some() {
                    return Err(BenchmarkError::Invalid {
                        name: b.name.clone(),
                        reason: format!("level {:?} needs either min/max or typical, not both or neither", l.level),
                    });
                }
                if let (Some(lo), Some(hi)) = (l.min, l.max)
                    && lo > hi
                {
                    return Err(BenchmarkError::Invalid {
                        name: b.name.clone(),
                        reason: format!("level {:?} has min > max", l.level),
                    });
                }
            }
        }
        Ok(b)
    }
}

/// Distance between two positive figures as a ratio (0 when equal).
fn ratio_distance(a: f64, b: f64) -> f64 {
    let (a, b) = (a.max(1e-12), b.max(1e-12));
    (a / b).ln().abs()
}

impl MetricLevels {
    /// The level of `value`, or `None` if the table is empty.
    pub fn classify(&self, value: f64) -> Option<&Level> {
        if self.levels.iter().all(|l| l.typical.is_some()) {
            return self.levels.iter().min_by(|a, b| {
                let da = (a.typical.unwrap_or(0.0) - value).abs();
                let db = (b.typical.unwrap_or(0.0) - value).abs();
                da.partial_cmp(&db).unwrap_or(std::cmp::Ordering::Equal)
            });
        }
        let contains = |l: &Level| l.min.is_none_or(|lo| value >= lo) && l.max.is_none_or(|hi| value < hi);
        if let Some(l) = self.levels.iter().find(|l| contains(l)) {
            return Some(l);
        }
        let worse_than = |l: &Level| match self.better {
            Better::Higher => l.min.is_some_and(|lo| value < lo),
            Better::Lower => l.max.is_some_and(|hi| value >= hi),
        };
        if self.levels.iter().all(worse_than) {
            return self.levels.last();
        }
        self.levels.iter().min_by(|a, b| {
            let d = |l: &Level| {
                let lo = l.min.map_or(f64::INFINITY, |lo| ratio_distance(value, lo));
                let hi = l.max.map_or(f64::INFINITY, |hi| ratio_distance(value, hi));
                lo.min(hi)
            };
            d(a).partial_cmp(&d(b)).unwrap_or(std::cmp::Ordering::Equal)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(b: &Benchmark, metric: &str, v: f64) -> String {
        let m = match metric {
            "df" => &b.metrics.deployment_frequency,
            "lt" => &b.metrics.lead_time,
            "cfr" => &b.metrics.change_failure_rate,
            _ => &b.metrics.recovery_time,
        };
        m.as_ref().expect("metric").classify(v).expect("level").level.clone()
    }

    #[test]
    fn builtin_tables_load_and_classify() {
        let b24 = Benchmark::builtin("dora-2024").expect("2024");
        let b23 = Benchmark::builtin("2023").expect("2023");
        assert_eq!(level(&b24, "df", 3.0), "elite");
        assert_eq!(level(&b24, "df", 0.5), "high");
        assert_eq!(level(&b24, "df", 1.0 / 14.0), "medium");
        assert_eq!(level(&b24, "df", 1.0 / 60.0), "low");
        assert_eq!(level(&b24, "df", 1.0 / 365.0), "low", "worse than every range: the worst level");
        assert_eq!(level(&b23, "df", 1.0 / 365.0), "low");
        assert_eq!(level(&b23, "df", 1.0 / 14.0), "medium", "overlapping ranges: the better level");
        assert_eq!(level(&b24, "lt", 3600.0), "elite");
        assert_eq!(level(&b24, "lt", 3.0 * 86400.0), "high");
        assert_eq!(level(&b24, "lt", 400.0 * 86400.0), "low");
        // 2024's change failure rates are not monotonic: 12% is nearest medium's 10%.
        assert_eq!(level(&b24, "cfr", 0.12), "medium");
        assert_eq!(level(&b24, "cfr", 0.17), "high");
        assert_eq!(level(&b24, "cfr", 0.0), "elite");
        assert_eq!(level(&b23, "cfr", 0.30), "medium");
        assert_eq!(level(&b24, "rt", 1800.0), "elite");
        assert_eq!(level(&b24, "rt", 7200.0), "high");
        assert_eq!(level(&b24, "rt", 5.0 * 86400.0), "low", "a gap goes to the nearest range");
        assert_eq!(level(&b23, "rt", 3.0 * 86400.0), "medium");
        assert!(matches!(Benchmark::builtin("2019"), Err(BenchmarkError::Unknown(_))));
    }

    #[test]
    fn user_tables_are_checked() {
        let bad = r#"{"name": "mine", "metrics": {"leadTime": {"unit": "s", "better": "lower", "levels": [{"level": "ok"}]}}}"#;
        assert!(matches!(Benchmark::parse(bad), Err(BenchmarkError::Invalid { .. })));
        let good = r#"{"name": "mine", "metrics": {"reworkRate": {"unit": "ratio", "better": "lower",
            "levels": [{"level": "good", "max": 0.1}, {"level": "poor", "min": 0.1}]}}}"#;
        let b = Benchmark::parse(good).expect("valid");
        assert_eq!(b.metrics.rework_rate.expect("rework").classify(0.2).expect("level").level, "poor");
    }
}
