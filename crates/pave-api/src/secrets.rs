//! Secrets: names, versions and who set them; never values.

use pave_model::secrets::SecretInfo;
use serde::{Deserialize, Serialize};

/// `GET /api/v1/services/{name}/secrets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretList {
    pub secrets: Vec<SecretInfo>,
}

/// The answer to setting (`PUT`) or removing (`DELETE`) a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretWrite {
    /// The secret's new version, or for a removal its last one.
    pub secret: SecretInfo,
    /// `true` for a removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<bool>,
    /// Running replicas are being restarted with the change, one at a time.
    pub rolling: bool,
}
