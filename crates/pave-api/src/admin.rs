//! The event log, the audit trail, API tokens and who-am-I.

use pave_model::{Event, Role, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /api/v1/events`: a page of the log; pass `next` as `after` for the following one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<Event>,
    pub next: i64,
}

/// One entry of the audit trail: who tried what, and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: i64,
    pub time: Timestamp,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `METHOD /route/{template}`.
    pub action: String,
    /// The path as requested.
    pub target: String,
    /// `allowed`, `denied` or `failed`.
    pub outcome: String,
    pub status: u16,
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

/// `GET /api/v1/audit`: newest first; pass `next` as `before` for older entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next: Option<i64>,
}

/// Whom a token acts for: `scope` (`unscoped`, `user`, `team`) and, for the last two, the
/// user or team it names (`"scope": "team", "team": "web"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenScope {
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    pub id: String,
    pub name: String,
    pub role: Role,
    #[serde(flatten)]
    pub scope: TokenScope,
    /// For a live unscoped developer token: what it may do, and how to scope it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub created_at: Timestamp,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    /// The identity the token acts for, as teams list it in `spec.members` (an e-mail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The team the token acts for (a pipeline's token); it must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

/// The answer to `POST /api/v1/tokens`: the secret is in it and nowhere else, ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: Token,
    pub secret: String,
}

/// `GET /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenList {
    pub tokens: Vec<Token>,
}

/// `DELETE /api/v1/tokens/{id}`: the token as it is now, revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenOne {
    pub token: Token,
}

/// `GET /api/v1/whoami`: the caller's token, and the teams its scope puts it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmI {
    pub token_id: String,
    pub name: String,
    pub role: Role,
    #[serde(flatten)]
    pub scope: TokenScope,
    /// Teams whose services a scoped developer token may change.
    pub teams: Vec<String>,
    /// One of `teams` is a platform team, so every service may be changed.
    pub platform: bool,
    /// For an unscoped developer token: what it may do and how to scope it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
