//! Delivery facts in (`POST /api/v1/events`) and the change timeline out.

use pave_model::Timestamp;
use pave_model::delivery::{Incident, TimelineEntry};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /api/v1/events`: deployments, incidents and changes, all or nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// Each `{"type": "deployment" | "incident" | "change", …}`.
    pub events: Vec<Value>,
}

/// What reporting one fact did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedFact {
    /// `deployment`, `incident` or `change`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its id (a change's sha).
    pub id: String,
    /// `created`, `updated` or `unchanged`.
    pub action: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReportSummary {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// The answer to `POST /api/v1/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportResult {
    pub results: Vec<ReportedFact>,
    pub summary: ReportSummary,
}

/// The query of `GET /api/v1/timeline`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    /// Start: RFC 3339 or a span before `to` (`24h`, `7d`) [default: 24h].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// End (exclusive): RFC 3339 or `now` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Only this environment's deployments and flag changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The window around an incident: `before` (default 24h) before it opened, to its
    /// resolution (or now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Most entries (1..=5000, default 500); the newest are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// `GET /api/v1/timeline`: deployments, incidents and flag changes, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    pub from: Timestamp,
    pub to: Timestamp,
    /// The incident the window was drawn around, when asked for one.
    pub incident: Option<Incident>,
    /// Entries in the window before `limit` kept the newest.
    pub total: usize,
    pub truncated: bool,
    pub entries: Vec<TimelineEntry>,
}
