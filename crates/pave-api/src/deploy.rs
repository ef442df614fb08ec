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
