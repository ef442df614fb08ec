//! Feature flags as the management API shows them, stale flags, and SDK tokens.

use std::collections::BTreeMap;

use pave_model::Timestamp;
use pave_model::flags::{FlagMetadata, FlagSpec, OperatorWarning};
use serde::{Deserialize, Serialize};

/// A flag document (`kind: Flag`, as `pave apply` takes it) with what Pave knows of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagDocument {
    pub kind: String,
    pub metadata: FlagMetadata,
    pub spec: FlagSpec,
    pub status: FlagStatus,
}

/// How much of an environment's traffic a flag is on for (`off`, `partial`, `on`), since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exposure {
    pub exposure: String,
    pub since: Timestamp,
}

/// What an SDK reported evaluating, in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagUsage {
    pub environment: String,
    pub yes: i64,
    pub no: i64,
    #[serde(default)]
    pub variants: BTreeMap<String, i64>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// A flag's `status`. Lists carry `lastSeen`; one flag carries `usage` and `warnings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagStatus {
    pub created_at: Timestamp,
    pub created_by: String,
    pub updated_at: Timestamp,
    pub updated_by: String,
    pub archived_at: Option<Timestamp>,
    #[serde(default)]
    pub environments: BTreeMap<String, Exposure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<FlagUsage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<OperatorWarning>,
}

/// `GET /api/v1/flags`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagList {
    pub flags: Vec<FlagDocument>,
}

/// A flag that has been fully on or off everywhere (or unevaluated) for longer than its
/// type's expected lifetime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaleFlag {
    pub name: String,
    pub project: String,
    #[serde(rename = "type")]
    pub flag_type: String,
    pub owner: Option<String>,
    pub reason: String,
    pub since: Timestamp,
    pub days: i64,
    pub last_seen: Option<Timestamp>,
}

/// `GET /api/v1/flags/stale`: the stale flags, and each type's expected lifetime in days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleFlags {
    pub stale: Vec<StaleFlag>,
    pub lifetimes: BTreeMap<String, i64>,
}

/// `POST /api/v1/sdk-tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSdkToken {
    pub name: String,
    /// `client` (server SDKs) or `frontend`.
    pub kind: String,
    /// A project or `*`; `default` unless given.
    #[serde(default = "default_project")]
    pub project: String,
    pub environment: String,
}

fn default_project() -> String {
    "default".into()
}

/// An SDK token, never with its secret except in the answer that created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SdkToken {
    pub id: String,
    pub name: String,
    /// `client` or `frontend`.
    pub kind: String,
    pub project: String,
    pub environment: String,
    pub created_at: Timestamp,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    /// `project:environment.secret`, in the creating answer only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `GET /api/v1/sdk-tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdkTokenList {
    pub tokens: Vec<SdkToken>,
}

/// What one write did to one flag or segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagWrite {
    /// `flag` or `segment`.
    pub kind: String,
    pub name: String,
    /// `create`, `update` or `unchanged`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<crate::catalog::FieldChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FlagApplySummary {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// An operator a flag uses where registered SDKs may not evaluate it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagWarning {
    pub flag: String,
    pub environment: String,
    pub message: String,
}

/// The answer to `POST /api/v1/flags/apply`: what was (or, for a dry run, would be) done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagApplyResult {
    pub dry_run: bool,
    pub changes: Vec<FlagWrite>,
    pub summary: FlagApplySummary,
    #[serde(default)]
    pub warnings: Vec<FlagWarning>,
}

/// A segment's status: its id on the Unleash wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentStatus {
    pub id: u32,
}

/// A segment document (`kind: Segment`) with its wire id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentDocument {
    pub kind: String,
    pub metadata: FlagMetadata,
    pub spec: pave_model::flags::SegmentSpec,
    pub status: SegmentStatus,
}

/// `GET /api/v1/segments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentList {
    pub segments: Vec<SegmentDocument>,
}

/// An SDK instance that registered or reported metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SdkClient {
    pub app_name: String,
    pub instance_id: String,
    pub environment: String,
    /// `name:version`, as the SDK said.
    pub sdk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<i64>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// `GET /api/v1/sdk-clients`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdkClientList {
    pub clients: Vec<SdkClient>,
}
