//! Releases: immutable, versioned builds of a service.

use pave_model::release::Release;
use serde::{Deserialize, Serialize};

/// `GET /api/v1/services/{name}/releases`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseList {
    pub releases: Vec<Release>,
}
