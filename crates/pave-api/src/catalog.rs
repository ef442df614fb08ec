//! The catalog: teams, services and environments, one at a time or applied in a batch.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /api/v1/{teams|services|environments}`: documents as `pave apply` takes them, each
/// with its `status` (`createdAt`, `updatedAt`). They stay JSON: `pave get` prints them back
/// unchanged, whatever fields a newer server adds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResourceList {
    pub items: Vec<Value>,
}

/// `POST /api/v1/apply`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApplyRequest {
    /// Documents of any kind (`kind`, `metadata`, `spec`): teams, services, environments,
    /// flags and segments, applied in one transaction.
    pub documents: Vec<Value>,
    /// Plan and report, but change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Also delete existing resources that match `selector` and that `documents` omit.
    #[serde(default)]
    pub prune: bool,
    /// Label selector bounding `prune`; required with it (`""` selects everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// How many resources an apply created, updated, deleted or left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApplySummary {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
}

/// One field an update changes; `old` is absent for an added field, `new` for a removed one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// One resource of an apply: `kind` (`Team`, `Service`, `Environment`), its name, and
/// `action` (`create`, `update`, `delete`, `unchanged`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedChange {
    pub kind: String,
    pub name: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

/// The answer to `POST /api/v1/apply`: what was (or, for a dry run, would be) done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyResult {
    pub dry_run: bool,
    pub summary: ApplySummary,
    /// Events appended (none for a dry run).
    pub events: usize,
    pub changes: Vec<AppliedChange>,
    /// With flags among the documents: what their settings risk (as the flag apply says).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<crate::flags::FlagWarning>,
}
