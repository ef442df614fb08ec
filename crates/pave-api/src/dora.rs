//! DORA metrics (`/api/v1/dora`): the query, and the report as it travels. The figures are
//! computed by `pave-dora`; these types read them back (a test in `pave-server` holds the
//! two to one shape).

use pave_model::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The query, as a query string (`GET`) or a JSON body (`POST`, which may also carry a whole
/// benchmark table).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DoraQuery {
    /// Start of the window: RFC 3339, or a span before `to` such as `30d`, `12w`, `6h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// End of the window (exclusive): RFC 3339 or `now` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The environment whose deployments count (default: every production environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// `week` or `month`: add a series of windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    /// Add the deployments, commits and incidents behind every figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<bool>,
    /// Built-in benchmark table name (`dora-2024`, the default, or `dora-2023`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<String>,
    /// A whole benchmark table, in the built-in tables' format (JSON body only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benchmark_table: Option<Value>,
}

/// A figure's level in the benchmark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    pub level: String,
    pub label: String,
}

/// Durations in seconds: how many, their median and 90th percentile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Durations {
    pub count: usize,
    pub median: Option<f64>,
    pub p90: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Frequency {
    pub deployments: usize,
    /// `null` over a window too short to judge.
    pub per_day: Option<f64>,
    pub per_week: Option<f64>,
    /// DORA's bucket: on-demand, daily-weekly, weekly-monthly, monthly-six-monthly, fewer.
    pub bucket: String,
    pub level: Option<Level>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadTime {
    pub commits: Durations,
    pub commit_to_merge: Durations,
    pub merge_to_deploy: Durations,
    pub deploy_duration: Durations,
    pub level: Option<Level>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub count: usize,
    pub total: usize,
    pub rate: Option<f64>,
    pub level: Option<Level>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    pub failures: usize,
    pub recovered: usize,
    pub open: usize,
    pub time: Durations,
    pub level: Option<Level>,
}

/// Flag changes to the environments in scope, beside the five metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagChanges {
    pub count: usize,
    pub per_day: f64,
    pub flags: usize,
    pub turned_off: usize,
}

/// The figures of one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// With `explain`: the ids behind each figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<Value>,
}

/// What the report covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoraScope {
    pub environments: Vec<String>,
    pub team: Option<String>,
    pub service: Option<String>,
}

/// The answer to `/api/v1/dora`: totals for the window, a series when asked, and the scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoraReport {
    pub benchmark: String,
    #[serde(flatten)]
    pub totals: Figures,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<Figures>,
    pub scope: DoraScope,
}
