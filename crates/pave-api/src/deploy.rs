//! Deployments and rollouts.

use pave_model::rollout::Rollout;
use serde::{Deserialize, Serialize};

/// `POST /api/v1/deployments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeployRequest {
    pub service: String,
    pub environment: String,
    pub version: String,
    /// `recreate`, `rolling`, `blue-green` or `canary`; the service's own by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// An admin's reason to skip the promotion path, the approval or failed policy gates.
    #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
}

/// One rollout: the answer to a deployment, an undo, a steering action and `GET
/// /api/v1/rollouts/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutOne {
    pub rollout: Rollout,
}

/// `GET /api/v1/rollouts`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutList {
    pub rollouts: Vec<Rollout>,
}

/// One version's share of what the router does now, with its healthy backends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutedVersion {
    pub version: String,
    /// Percent of the traffic not pinned by header or cookie.
    pub weight: u8,
    /// `host:port` of each healthy replica.
    pub backends: Vec<String>,
}

/// The router's table for one service and environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterTable {
    pub versions: Vec<RoutedVersion>,
    pub sticky: bool,
}

/// A running replica, as the runtime records it. The wire keeps the runtime's own field
/// names (`proc_start`, `config_rev`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    pub id: String,
    pub service: String,
    pub env: String,
    pub version: String,
    pub replica: u32,
    /// Where the router sends its traffic.
    pub endpoint: String,
    #[serde(default)]
    pub config_rev: i64,
    /// The runtime's own record of it (the process runtime: `pid`, `proc_start`, `port`, `log`).
    #[serde(flatten)]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

/// One version's golden signals over the window asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionSignals {
    pub version: String,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// `GET /api/v1/services/{name}/environments/{env}/status`. `router`, `replicas` and
/// `signals` are this control plane's view: empty or null where it runs no engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployStatus {
    pub service: String,
    pub environment: String,
    /// The router's address for this service and environment.
    pub url: String,
    /// The route state the engine works towards.
    pub desired: pave_model::rollout::RouteState,
    pub router: Option<RouterTable>,
    pub replicas: Vec<Replica>,
    pub active_rollout: Option<Rollout>,
    pub signals: Option<Vec<VersionSignals>>,
    /// This control plane holds the delivery engine's lease.
    pub served_here: bool,
}
