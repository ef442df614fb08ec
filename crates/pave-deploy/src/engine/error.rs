//! How a step fails: for a passing reason (try again) or for good (revert the rollout).

use super::*;

/// Why a step did not get done, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StepError {
    /// Worth trying again in a moment: the router did not answer (restarting, say). The
    /// rollout stays where it is.
    Transient(String),
    /// The step cannot succeed as things stand (a release that does not start, a port range
    /// that is full): the rollout reverts.
    Permanent(String),
}

impl StepError {
    pub(super) fn router(e: ControlError) -> StepError {
        if e.is_transient() { StepError::Transient(e.to_string()) } else { StepError::Permanent(e.to_string()) }
    }
}

impl From<String> for StepError {
    fn from(reason: String) -> Self {
        StepError::Permanent(reason)
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Transient(m) | StepError::Permanent(m) => f.write_str(m),
        }
    }
}
