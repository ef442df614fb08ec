//! Releases: immutable, versioned builds of a service.

use pave_model::release::Release;
use serde::{Deserialize, Serialize};

/// `GET /api/v1/services/{name}/releases`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseList {
    pub releases: Vec<Release>,
}

/// The answer to a release upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseUpload {
    pub release: Release,
    /// `false`: this version was already published with this artifact (nothing changed).
    pub created: bool,
    /// The artifact's content was not in the store before.
    pub artifact_new: bool,
}

/// The answer to attaching scans to a release, or to Pave scanning it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseScans {
    pub release: Release,
    pub scans: pave_model::policy::ReleaseScans,
    /// What Pave could not scan, and why (when Pave scanned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<String>>,
}

/// One gate of a release policy, judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateResult {
    /// The gate as the policy names it: `"secrets-clean"`, `"sbom"`, `{"no-vulns-above": "high"}`, …
    pub gate: serde_json::Value,
    pub passed: bool,
    /// Why, in words (what was found, or what is missing).
    pub reason: String,
}

/// Whether a release may be deployed to an environment with a release policy, gate by gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyResult {
    pub environment: String,
    /// The environment's place on the promotion path.
    pub order: u32,
    pub passed: bool,
    pub gates: Vec<GateResult>,
}

/// `GET /api/v1/services/{name}/releases/{version}`: the release, the scans it carries and,
/// for every environment with a release policy, whether it passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseDetail {
    #[serde(flatten)]
    pub release: Release,
    pub scans: pave_model::policy::ReleaseScans,
    pub policy: Vec<PolicyResult>,
}
