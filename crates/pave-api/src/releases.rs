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
