//! Releases: immutable, versioned builds of a service.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    pub service: String,
    pub version: String,
    /// `sha256:<hex>` of the artifact in the content-addressed store.
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub files: u64,
    pub bytes: u64,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// Versions are 1-128 characters of letters, digits, `.`, `_`, `+`, `-`, starting with a
/// letter or digit (`1.4.0`, `v2.0.0-rc.1`, `2024.05.01+build.7`).
pub fn validate_version(v: &str) -> Result<(), String> {
    let ok_chars = v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'));
    let ok_start = v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if (1..=128).contains(&v.len()) && ok_chars && ok_start {
        Ok(())
    } else {
        Err(format!(
            "{v:?} is not a version: use 1-128 letters, digits, '.', '_', '+' or '-', starting with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions() {
        for ok in ["1.0.0", "v2.0.0-rc.1", "2024.05.01+build.7", "a"] {
            assert!(super::validate_version(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-1", "1.0 beta", "1/2", &"1".repeat(129)] {
            assert!(super::validate_version(bad).is_err(), "{bad}");
        }
    }
}
